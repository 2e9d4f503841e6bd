"""Sage Accounting: push clients and invoices (see provider.py)."""
