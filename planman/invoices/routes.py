from planman.invoices import bp  # noqa: F401  (routes arrive with the core issue)
