"""Never reuse ids on SQLite, and key audit events so each is stored once

Revision ID: 9c0d5a7e2b41
Revises: 56e09f7ea7f3
Create Date: 2026-12-02 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c0d5a7e2b41'
down_revision = '56e09f7ea7f3'
branch_labels = None
depends_on = None

# Tables with integer ids. SQLite gives a deleted row's id to the next insert
# unless the table was created with AUTOINCREMENT, which only rebuilding the
# table can add; PostgreSQL's sequences never reuse an id, so it needs nothing.
INTEGER_ID_TABLES = ('product', 'user', 'audit_event')


def rebuild_on_sqlite(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in INTEGER_ID_TABLES:
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass


def upgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_key'), ['key'])
    rebuild_on_sqlite(autoincrement=True)


def downgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_key'), type_='unique')
        batch_op.drop_column('key')
    rebuild_on_sqlite(autoincrement=False)
