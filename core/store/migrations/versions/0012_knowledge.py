"""Knowledge articles (issue 14): the columns an article needs, and the link of a runbook to its article.

``knowledge_articles`` (unused until now) gets the article's number, space / knowledge base, category,
author, attachment names and their text. ``runbooks`` gets ``source_article_id`` and
``source_article_hash`` (an adopted article, and its content when adopted); added columns only, no table
rebuild (the runbooks' search triggers of 0003 stay as they are), hence no foreign key.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("space", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("author", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("attachments", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("attachment_text", sa.Text(), nullable=True))

    with op.batch_alter_table("runbooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_article_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source_article_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_runbooks_source_article_id"), ["source_article_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("runbooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runbooks_source_article_id"))
        batch_op.drop_column("source_article_hash")
        batch_op.drop_column("source_article_id")

    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        for column in ("attachment_text", "attachments", "author", "category", "space", "number"):
            batch_op.drop_column(column)
