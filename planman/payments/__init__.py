"""PlanMan's own payments: money received for an invoice, the firm-side actions
(record, reverse, share the payment link) and the client payment page.

``bp`` is the firm side (log-in required); ``public_bp`` is the client payment
page behind an unguessable link (no log-in)."""
from flask import Blueprint

bp = Blueprint("payments", __name__)
public_bp = Blueprint("pay", __name__)

from planman.payments import public, routes  # noqa: E402,F401
