"""A real HTTP receiver for the stand-ins' webhook deliveries: records each request
(headers and raw body) and answers the statuses a test queues (200 when none)."""
from __future__ import annotations

import threading

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class Receiver:
    def __init__(self):
        self.received: list[dict] = []
        self.answers: list[int] = []
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _app(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.received.append({"headers": dict(request.headers), "body": request.get_data()})
            status = self.answers.pop(0) if self.answers else 200
        return Response("ok" if status < 300 else "no", status=status)(environ, start_response)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
