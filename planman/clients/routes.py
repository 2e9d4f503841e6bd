from planman.clients import bp  # noqa: F401  (routes arrive with the core issue)
