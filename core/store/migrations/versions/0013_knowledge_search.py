"""Knowledge search (issue 14): article sections and the articles' FTS5 table, kept in sync by triggers.

The same pattern as 0003 for runbooks: ``article_sections`` holds the embeddable parts of each article (the
FAISS index is keyed by their ids), and ``article_fts`` stores ``rd_fts_terms()`` of an article's title, body
and attachment text (the attachments are searchable by words only, not embedded), keyed by the article id
and filled by triggers on ``knowledge_articles``.

A later migration that rebuilds ``knowledge_articles`` (``batch_alter_table`` with a column change SQLite
cannot do in place) drops these triggers with the old table: it must recreate them (``FTS_UP[1:4]``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 11:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TOKENIZE = "unicode61 remove_diacritics 2 tokenchars '-._@'"
_FTS_ROW = (
    "INSERT INTO article_fts(rowid, title, body, attachments, tenant_id) VALUES (new.id, "
    "rd_fts_terms(new.title), rd_fts_terms(new.body), rd_fts_terms(new.attachment_text), new.tenant_id)"
)
FTS_UP = [
    "CREATE VIRTUAL TABLE article_fts USING "
    f'fts5(title, body, attachments, tenant_id UNINDEXED, tokenize="{TOKENIZE}")',
    f"""CREATE TRIGGER knowledge_articles_fts_insert AFTER INSERT ON knowledge_articles BEGIN
        {_FTS_ROW}; END""",
    f"""CREATE TRIGGER knowledge_articles_fts_update
        AFTER UPDATE OF title, body, attachment_text ON knowledge_articles BEGIN
        DELETE FROM article_fts WHERE rowid = old.id;
        {_FTS_ROW}; END""",
    """CREATE TRIGGER knowledge_articles_fts_delete AFTER DELETE ON knowledge_articles BEGIN
        DELETE FROM article_fts WHERE rowid = old.id; END""",
    """INSERT INTO article_fts(rowid, title, body, attachments, tenant_id)
        SELECT id, rd_fts_terms(title), rd_fts_terms(body), rd_fts_terms(attachment_text), tenant_id
        FROM knowledge_articles""",
]
FTS_DOWN = [
    *(f"DROP TRIGGER knowledge_articles_fts_{op_}" for op_ in ("insert", "update", "delete")),
    "DROP TABLE article_fts",
]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "article_sections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("article_content_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["knowledge_articles.id"],
            name=op.f("fk_article_sections_article_id_knowledge_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_article_sections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_sections")),
        sa.UniqueConstraint("article_id", "ordinal", name=op.f("uq_article_sections_article_id_ordinal")),
    )
    with op.batch_alter_table("article_sections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_sections_article_id"), ["article_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_sections_tenant_id"), ["tenant_id"], unique=False)
    if op.get_bind().dialect.name == "sqlite":  # PostgreSQL's search tables are 0014's
        for statement in FTS_UP:
            op.execute(statement)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS_DOWN:
            op.execute(statement)
    with op.batch_alter_table("article_sections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_sections_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_article_sections_article_id"))
    op.drop_table("article_sections")
