"""What every stand-in shares, as moto/core is for moto's services: the app
that serves each provider under its path prefix, the SQLite store shared by
processes, injected faults, rate-limit windows, the OAuth server, the control
API plumbing and the browse pages. Nothing here names a provider."""
