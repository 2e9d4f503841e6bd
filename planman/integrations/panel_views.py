"""Record panel and failed-push views."""
from planman.integrations.views import bp  # noqa: F401
