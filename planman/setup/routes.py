from planman.setup import bp  # noqa: F401  (routes arrive with the core issue)
