from flask import Blueprint

bp = Blueprint("invoices", __name__)

from planman.invoices import routes, totals  # noqa: E402,F401  (totals: registers the hook that keeps them)
