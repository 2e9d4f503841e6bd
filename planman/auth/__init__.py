from flask import Blueprint

bp = Blueprint("auth", __name__)

from planman.auth import routes  # noqa: E402,F401
