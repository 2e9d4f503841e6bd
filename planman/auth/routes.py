from planman.auth import bp  # noqa: F401  (routes arrive with the core issue)
