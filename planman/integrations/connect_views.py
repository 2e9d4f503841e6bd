"""Connect flow views (Setup > Integrations)."""
from planman.integrations.views import bp  # noqa: F401
