from flask import Blueprint

bp = Blueprint("clients", __name__)

from planman.clients import routes  # noqa: E402,F401
