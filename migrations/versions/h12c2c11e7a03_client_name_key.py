"""client.name_key: client names unique per firm ignoring case in every script
(as Xero compares contact names), on SQLite and PostgreSQL alike

Existing rows get their key here. Where a firm already has names that clash
(only possible for non-ASCII letters, which lower() left alone on SQLite), the
oldest keeps the plain key and the others get theirs suffixed with their id, so
nothing is lost; editing such a client asks for a different name, as Xero
would refuse it anyway.

Revision ID: h12c2c11e7a03
Revises: h12b1a7e11a02
Create Date: 2026-12-01 22:50:00
"""
import unicodedata

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'h12c2c11e7a03'
down_revision = 'h12b1a7e11a02'
branch_labels = None
depends_on = None

client = sa.table("client", sa.column("id", sa.Integer), sa.column("firm_id", sa.Integer),
                  sa.column("name", sa.String), sa.column("name_key", sa.String))


def _key(name):
    # planman.models.client_name_key as of this revision (a migration never imports the app).
    return unicodedata.normalize("NFC", (name or "").strip()).casefold()


def upgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', sa.String(length=1024), nullable=True))

    connection = op.get_bind()
    seen = set()
    updates = []
    for client_id, firm_id, name in connection.execute(
            sa.select(client.c.id, client.c.firm_id, client.c.name).order_by(client.c.id)):
        key = _key(name)
        if (firm_id, key) in seen:
            key = f"{key}#{client_id}"
        seen.add((firm_id, key))
        updates.append({"client_id": client_id, "key": key})
    for start in range(0, len(updates), 1000):
        connection.execute(
            client.update().where(client.c.id == sa.bindparam("client_id")).values(name_key=sa.bindparam("key")),
            updates[start:start + 1000],
        )

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.alter_column('name_key', existing_type=sa.String(length=1024), nullable=False)
        batch_op.create_unique_constraint('uq_client_firm_name_key', ['firm_id', 'name_key'])
    _restore_sort_index()


def downgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_constraint('uq_client_firm_name_key', type_='unique')
        batch_op.drop_column('name_key')
    _restore_sort_index()


def _restore_sort_index():
    # On SQLite the batch rebuilt the table, and an index on an expression
    # (lower(name), the list's sort order) does not survive the copy.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE INDEX IF NOT EXISTS ix_client_firm_lower_name ON client (firm_id, lower(name), id)")
