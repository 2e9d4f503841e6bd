"""Configuration classes. Every setting comes from an environment variable with a
development default; tests subclass ``Config``."""
import importlib.util
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("PLANMAN_INSTANCE_DIR") or BASE_DIR / "instance")


def _instance_secret(filename: str, make) -> str:
    """Read a development secret from instance/, creating it on first use.

    Only used when the matching environment variable is unset, so production
    never depends on a file that might be lost; instance/ is git-ignored."""
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _provider_configs() -> list:
    """Each provider package's own configuration module
    (planman/integrations/<provider>/config.py: ``settings(environ)`` and
    ``TEST_SETTINGS``), loaded by path: importing it through the ``planman``
    package would import the app, which imports this file."""
    modules = []
    for path in sorted((BASE_DIR / "planman" / "integrations").glob("*/config.py")):
        spec = importlib.util.spec_from_file_location(f"_planman_provider_config_{path.parent.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


PROVIDER_CONFIGS = _provider_configs()


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or _instance_secret("secret_key", lambda: secrets.token_hex(32))
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'planman.db'}"
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}  # create_app drops it for SQLite
    REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    # Two queues, taken in this order by every worker (`rq worker planman planman-bulk`):
    # a person's Send, status checks and connect-time loading on RQ_QUEUE, bulk
    # sends' batches on RQ_BULK_QUEUE, so a click never waits behind a bulk send.
    RQ_QUEUE = os.environ.get("RQ_QUEUE") or "planman"
    RQ_BULK_QUEUE = os.environ.get("RQ_BULK_QUEUE") or f"{RQ_QUEUE}-bulk"
    # Share of each tenant's (and the app's) call budget that bulk sends leave
    # unused, so a single Send is not throttled behind a bulk send of the same firm.
    THROTTLE_INTERACTIVE_RESERVE = float(os.environ.get("THROTTLE_INTERACTIVE_RESERVE") or 0.1)
    # Operators who may open the job queue dashboard (/setup/rq), every firm's jobs:
    # "name:werkzeug-password-hash,..." checked by HTTP basic auth; empty: no dashboard.
    RQ_DASHBOARD_USERS = os.environ.get("RQ_DASHBOARD_USERS") or ""

    # Comma-separated Fernet keys, newest first: MultiFernet encrypts with the
    # first and decrypts with any, which is how keys are rotated.
    TOKEN_ENCRYPTION_KEY = os.environ.get("TOKEN_ENCRYPTION_KEY") or _instance_secret("token_key", _fernet_key)

    # The address people reach PlanMan at; used in links that leave a request
    # (the link back to PlanMan a ledger shows on a pushed invoice).
    PUBLIC_BASE_URL = (os.environ.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/")

    # How many reverse proxies sit in front of PlanMan (0: none). Set it behind a
    # proxy so log-in throttling sees each person's address, not the proxy's.
    TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT") or 0)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session

    # How long a worker holds a webhook event it is processing; one that dies
    # mid-event leaves it to be picked up again once this has passed.
    WEBHOOK_LEASE_SECONDS = float(os.environ.get("WEBHOOK_LEASE_SECONDS") or 60)
    # Extra provider classes to register ("module:Class", comma-separated): for
    # tests (a test-only provider that worker processes must know) and plug-ins.
    EXTRA_PROVIDERS = os.environ.get("PLANMAN_EXTRA_PROVIDERS") or ""

    # Request size. The largest legitimate post is an invoice: 200 lines of
    # 4,000 accented characters each measure 4.8 MB as a form (500 lines of
    # plain text, the most an invoice takes, 2.1 MB); a bulk selection of
    # 10,000 ids is 0.15 MB. Anything larger is refused (413) before it is
    # read. The form-part limits only apply to multipart posts (no PlanMan
    # form uploads files): a field at most 100 kB (a client's notes in any
    # script fit), 4,000 fields (an invoice of 500 lines has 3,510).
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH") or 5 * 1024 * 1024)
    MAX_FORM_MEMORY_SIZE = int(os.environ.get("MAX_FORM_MEMORY_SIZE") or 100_000)
    MAX_FORM_PARTS = int(os.environ.get("MAX_FORM_PARTS") or 4_000)

    # How long an invite link works.
    INVITE_LINK_DAYS = int(os.environ.get("INVITE_LINK_DAYS") or 7)

    CLIENTS_PER_PAGE = 25
    INVOICES_PER_PAGE = 25
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES") or 5)
    LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS") or 300)


for _module in PROVIDER_CONFIGS:  # each provider's settings, e.g. its client id and rate limits
    for _key, _value in _module.settings(os.environ).items():
        setattr(Config, _key, _value)


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    TOKEN_ENCRYPTION_KEY = "q5e1q7Qy6mMChQ0f1c8gRj0pH4jT0m0b2yXHcVYb8aY="
    PUBLIC_BASE_URL = "http://planman.test"


for _module in PROVIDER_CONFIGS:
    for _key, _value in getattr(_module, "TEST_SETTINGS", {}).items():
        setattr(TestConfig, _key, _value)
