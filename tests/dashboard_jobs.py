"""A job for the dashboard's tests, run by real workers (importable from the repository root).

It fails the way the issue describes: a database error whose message quotes
the statement's parameters, so a client's name reaches the job's exc_info."""
from __future__ import annotations

OPERATOR, OPERATOR_PASSWORD = "ops", "operator-password-1"


def operator_users() -> str:
    """RQ_DASHBOARD_USERS naming the test operator (a cheap hash: tests only)."""
    from werkzeug.security import generate_password_hash

    return f"{OPERATOR}:{generate_password_hash(OPERATOR_PASSWORD, method='pbkdf2:sha256:1000')}"


def save_client_copy(client_id: int) -> None:
    """Insert a copy of the client with the same reference: the unique index refuses it."""
    from planman.extensions import db
    from planman.jobs import _app
    from planman.models import Client

    with _app().app_context():
        original = db.session.get(Client, client_id)
        db.session.add(Client(firm_id=original.firm_id, name=original.name, reference=original.reference))
        try:
            db.session.commit()  # raises IntegrityError, "[parameters: (..., '<the name>', ...)]"
        finally:
            db.session.rollback()
