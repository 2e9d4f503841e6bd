"""Entry point for gunicorn (``gunicorn wsgi:app``) and ``flask --app wsgi``."""
import gc

from planman import create_app

app = create_app()
# Everything built so far (modules, the app, SQLAlchemy's mappers) lives as
# long as the process: move it out of the garbage collector's sight, so its
# periodic full collections stop walking it in the middle of requests.
gc.freeze()
