"""FreshBooks: push clients and invoices (see provider.py)."""
