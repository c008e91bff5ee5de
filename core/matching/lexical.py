"""Lexical search: SQLite FTS5 with BM25, over terms our own tokeniser produced.

FTS5's tokenisers either split ``ORA-12541`` and ``lnx-app-07.corp.example.com`` into meaningless pieces
(unicode61) or, with ``tokenchars '-.'``, glue a sentence's final full stop to its last word. So the indexed
text is :func:`fts_terms` output: :func:`core.matching.text.lexical_terms` (error codes, hostnames and
versions kept
whole, stop words dropped) plus the parts of each compound term, so ``vpn-gw-01`` also matches ``vpn``. The
FTS tables are filled by triggers that call ``rd_fts_terms()``, a function every connection registers
(:mod:`core.store.db`); the tables use ``tokenchars '-._@'`` so FTS keeps our terms as they are.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from core.matching.text import lexical_terms

FTS_TOKENIZE = "unicode61 remove_diacritics 2 tokenchars '-._@'"
_PARTS = re.compile(r"[-._@]+")
MAX_QUERY_TERMS = 64


def term_parts(term: str) -> list[str]:
    parts = [p for p in _PARTS.split(term) if p]
    return parts if len(parts) > 1 else []


def fts_terms(text: str | None) -> str:
    """What the FTS index stores for ``text``: whole terms and their parts, space separated."""
    if not text:
        return ""
    out: list[str] = []
    for term in lexical_terms(text):
        out.append(term)
        out.extend(term_parts(term))
    return " ".join(out)


def fts_query_terms(text: str) -> list[str]:
    """The query's distinct terms and compound parts, first seen first, at most ``MAX_QUERY_TERMS``: one
    phrase each of :func:`fts_query`, and of the PostgreSQL search (:mod:`core.matching.pg_search`)."""
    terms: list[str] = []
    for term in lexical_terms(text):
        terms.append(term)
        terms.extend(term_parts(term))
    return list(dict.fromkeys(terms))[:MAX_QUERY_TERMS]


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression that ORs the query's terms (BM25 ranks by how many and how rare)."""
    unique = fts_query_terms(text)
    if not unique:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in unique)


def shared_terms(left_terms: Iterable[str], right_terms: Collection[str], limit: int = 12) -> list[str]:
    """Terms on both sides, in the order they appear on the left: the review screen's explanation.

    Takes terms (:func:`core.matching.text.lexical_terms` output), not text, so a caller ranking many runbooks
    tokenises each one once.
    """
    return list(dict.fromkeys(t for t in left_terms if t in right_terms))[:limit]
