"""The integrations blueprint: Setup > Integrations, the connect flow, record
panels and failed pushes. Routes live in the modules imported below."""
from flask import Blueprint

bp = Blueprint("integrations", __name__)

from planman.integrations import bulk_views, connect_views, panel_views  # noqa: E402,F401
