"""Flask CLI commands (``flask --app wsgi <command>``)."""
import click
from flask import Flask

from planman.auth import services as accounts


def register_cli(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo firm with clients and invoices (safe to run again)."""
        from planman.main.seed import seed_demo

        _, message = seed_demo()
        click.echo(message)

    @app.cli.command("seed-bulk")
    @click.option("--clients", "client_count", type=click.IntRange(min=0), default=1000, show_default=True)
    @click.option("--invoices", "invoice_count", type=click.IntRange(min=0), default=5000, show_default=True)
    @click.option("--email", required=True, help="Login of the new firm's admin.")
    @click.option("--password", default="bulk-password", show_default=True)
    def seed_bulk_command(client_count, invoice_count, email, password):
        """Create a new firm with many clients and invoices, for benchmarks."""
        from planman.main.seed import seed_bulk

        if accounts.email_taken(email):
            raise click.ClickException(f"{email} is already in use; choose another --email.")
        firm = seed_bulk(client_count, invoice_count, email, password)
        click.echo(f"Created {firm.name}: {client_count} clients, {invoice_count} invoices. "
                   f"Log in as {email.lower()} with password: {password}")
