"""GoCardless as a payment provider (partner app): firms connect their own
GoCardless accounts, clients set up a Direct Debit mandate on GoCardless's
hosted pages, and invoices are collected against it; webhooks say the rest."""
