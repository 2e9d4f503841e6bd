"""Accounts: creating a firm with its first admin, finding users, invitations."""
from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa

from planman import timezones
from planman.extensions import db
from planman.models import Firm, TaxRate, User

DEFAULT_TAX_RATES = (
    ("VAT 20%", Decimal("20")),
    ("Reduced 5%", Decimal("5")),
    ("Zero rated", Decimal("0")),
)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> Optional[User]:
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == normalise_email(email)))


def email_taken(email: str) -> bool:
    return find_user_by_email(email) is not None


def create_firm(firm_name: str, currency: str, name: str, email: str, password: str,
                browser_time_zone: str | None = None) -> User:
    """A new firm, its first user (an admin) and the default tax rates; not committed."""
    firm = Firm(name=firm_name, currency=currency, time_zone=timezones.sign_up_zone(browser_time_zone, currency))
    user = User(firm=firm, name=name, email=normalise_email(email), is_admin=True)
    user.set_password(password)
    db.session.add_all([firm, user])
    db.session.flush()
    db.session.add_all(
        TaxRate(firm_id=firm.id, name=rate_name, percent=percent) for rate_name, percent in DEFAULT_TAX_RATES
    )
    return user


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_invite(user: User) -> str:
    """A one-time token for ``user``; only its hash is kept, so it is shown once."""
    token = secrets.token_urlsafe(32)
    user.invite_token_hash = _hash_token(token)
    return token


def find_invited_user(token: str) -> Optional[User]:
    if not token:
        return None
    return db.session.scalar(sa.select(User).where(User.invite_token_hash == _hash_token(token)))


def accept_invite(user: User, password: str) -> None:
    user.set_password(password)
    user.invite_token_hash = None
