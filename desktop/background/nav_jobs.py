"""What the navigation rail runs on a worker thread: its attention counts, read in their own session."""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from core.analytics.attention import AttentionCounts, attention_counts
from core.store.tenancy import TenantSession


def load_attention_counts(sessions: sessionmaker[TenantSession]) -> AttentionCounts:
    with sessions() as session:
        return attention_counts(session)
