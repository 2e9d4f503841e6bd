"""Flask CLI commands (``flask --app wsgi <command>``)."""
from flask import Flask


def register_cli(app: Flask) -> None:
    pass
