"""What PlanMan reads back from providers: when events last arrived and how far the
catch-up got per connection; a linked record's name and last-modified time there

Revision ID: i17a0e1b2c3d4
Revises: 59f846732eb6
Create Date: 2026-12-02 10:20:00
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'i17a0e1b2c3d4'
down_revision = '59f846732eb6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connection') as batch:
        batch.add_column(sa.Column('last_event_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('caught_up_to', sa.DateTime(), nullable=True))
    with op.batch_alter_table('external_link') as batch:
        batch.add_column(sa.Column('remote_name', sa.String(length=255), nullable=False, server_default=''))
        batch.add_column(sa.Column('remote_updated_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('external_link') as batch:
        batch.drop_column('remote_updated_at')
        batch.drop_column('remote_name')
    with op.batch_alter_table('connection') as batch:
        batch.drop_column('caught_up_to')
        batch.drop_column('last_event_at')
