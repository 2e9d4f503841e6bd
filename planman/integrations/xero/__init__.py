"""Xero: the first provider of the integration layer."""
