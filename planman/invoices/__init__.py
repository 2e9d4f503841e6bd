from flask import Blueprint

bp = Blueprint("invoices", __name__)

from planman.invoices import routes  # noqa: E402,F401
