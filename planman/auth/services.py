"""Accounts: creating a firm with its first admin, finding users, invitations."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from flask import current_app, session

from planman import timezones
from planman.extensions import db
from werkzeug.security import generate_password_hash

from planman.models import Firm, TaxRate, User, password_matches, utcnow

DEFAULT_TAX_RATES = (
    ("VAT 20%", Decimal("20")),
    ("Reduced 5%", Decimal("5")),
    ("Zero rated", Decimal("0")),
)


# Where a session keeps its user's session epoch as it was when it started.
SESSION_EPOCH = "session_epoch"


def session_is_current(user: User) -> bool:
    return session.get(SESSION_EPOCH) == user.session_epoch


def keep_this_session(user: User) -> None:
    """After ``user.end_sessions()``: every session ends but the current one."""
    session[SESSION_EPOCH] = user.session_epoch


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> Optional[User]:
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == normalise_email(email)))


def authenticate(email: str, password: str) -> Optional[User]:
    """The user with this e-mail and password, or None. An unknown e-mail costs
    a password check too (against a dummy hash), so timing reveals nothing."""
    user = find_user_by_email(email)
    return user if password_matches(user.password_hash if user else None, password) else None


def hash_as_if_creating(password: str) -> None:
    """Spend the time creating an account would (hashing its password), so a
    refused sign-up answers no faster than an accepted one."""
    generate_password_hash(password)


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
    """A one-time token for ``user``, good for INVITE_LINK_DAYS; only its hash
    is kept, so it is shown once."""
    token = secrets.token_urlsafe(32)
    user.invite_token_hash = _hash_token(token)
    user.invite_expires_at = utcnow() + timedelta(days=current_app.config["INVITE_LINK_DAYS"])
    return token


def invite_expired(user: User) -> bool:
    return user.invite_expires_at is None or user.invite_expires_at <= utcnow()


def find_invited_user(token: str) -> Optional[User]:
    if not token:
        return None
    return db.session.scalar(sa.select(User).where(User.invite_token_hash == _hash_token(token)))


def accept_invite(user: User, password: str) -> None:
    user.set_password(password)
    user.invite_token_hash = None
    user.invite_expires_at = None
