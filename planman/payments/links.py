"""The client payment page's unguessable link, one per invoice.

The token is an HMAC (SECRET_KEY) of the invoice id and a random per-invoice
nonce, so the firm's page can show the link again at any time, while the
database keeps only the nonce and a SHA-256 of the token: a copy of the
database opens no payment page. Replacing the link draws a new nonce, which
revokes the old one. Rotating SECRET_KEY revokes every link."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Optional

import sqlalchemy as sa
from flask import current_app

from planman.extensions import db
from planman.models import Invoice, PaymentLink


def _token(invoice_id: int, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"payment-link:{invoice_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_for(invoice: Invoice) -> Optional[PaymentLink]:
    return db.session.scalar(sa.select(PaymentLink).where(PaymentLink.invoice_id == invoice.id))


def token_of(link: PaymentLink) -> str:
    return _token(link.invoice_id, link.nonce)


def url_of(link: PaymentLink) -> str:
    from planman.security import public_url

    return public_url("pay.page", token=token_of(link))  # it leaves the request: e-mailed to a client


def create_or_replace(invoice: Invoice, user_id: int) -> PaymentLink:
    """A new link for the invoice; any older one stops working. Commits."""
    link = link_for(invoice) or PaymentLink(firm_id=invoice.firm_id, invoice_id=invoice.id)
    link.nonce = secrets.token_urlsafe(24)
    link.token_hash = _hash(_token(invoice.id, link.nonce))
    link.created_by_id = user_id
    db.session.add(link)
    db.session.commit()
    return link


def invoice_for_token(token: str) -> Optional[Invoice]:
    """The one invoice this token opens, or None (never valid, or replaced)."""
    if not token or len(token) > 100:
        return None
    link = db.session.scalar(sa.select(PaymentLink).where(PaymentLink.token_hash == _hash(token)))
    if link is None or not hmac.compare_digest(token_of(link), token):
        return None
    return db.session.get(Invoice, link.invoice_id)
