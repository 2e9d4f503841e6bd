"""Stripe Connect as a payment provider: firms connect their Standard accounts,
clients pay invoices by card on Checkout, webhooks record the payments."""
