"""The layout every provider's pages extend (templates/core/base.html), as a blueprint each provider app registers."""
from flask import Blueprint

bp = Blueprint("core_pages", __name__, template_folder="templates")
