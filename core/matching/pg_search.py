"""Lexical search on PostgreSQL (team mode) that ranks exactly as the SQLite path's FTS5 ``bm25()`` does.

Why not PostgreSQL's own full-text search: its parser and dictionaries would index other tokens than
SQLite's (it splits ``lnx-app-07.corp.example.com`` and stems words), and ``ts_rank`` is not BM25, so the
same tickets would rank differently on a team's database than on an analyst's laptop. Here PostgreSQL only
stores and finds; what is indexed and how it ranks is SQLite's:

* **Tokens.** An FTS5 column holds :func:`core.matching.lexical.fts_terms` of the source text, split by
  FTS5's ``unicode61`` tokeniser (``remove_diacritics 2``, ``tokenchars '-._@'``): :func:`fts_tokens` does
  the same. ASCII (almost all of it) is split here; for any other character SQLite itself is asked, once per
  character (:class:`_Unicode61`), because its Unicode tables are the definition and are older than
  Python's ``unicodedata`` (about 50,000 code points, mostly unassigned then, classify differently).
* **Storage** (migration 0014): per source row, ``tf`` = ``{token: [count per column]}``, ``n_tokens`` =
  the row's tokens over all columns (FTS5's document length), and ``lexemes`` = ``tf``'s keys as a tsvector
  built with ``array_to_tsvector`` (PostgreSQL's parser never sees them), under a GIN index. A tsvector
  refuses lexemes of 2 KB or more: such a token (a pasted blob) is counted but cannot be searched for.
* **Freshness.** Triggers on the source tables mark a row ``stale`` (a Python tokeniser cannot run inside
  the server); :func:`search` first refreshes the tenant's stale rows (:func:`refresh_stale`), in the
  caller's transaction, so it sees the caller's own uncommitted writes and commits with them. Rows another
  transaction holds (it is refreshing them, or its trigger is marking them stale again) are skipped and left
  out of the search until they are fresh.
* **Ranking** is ``fts5Bm25Function`` of ``ext/fts5/fts5_aux.c``, operation for operation: k1 = 1.2,
  b = 0.75; per query phrase ``idf = log((N - n + 0.5) / (n + 0.5))``, 1e-6 when not positive; per row and
  phrase ``freq`` = the sum over columns of the column's weight times the phrase's count there;
  ``score = sum over phrases of idf * freq * (k1 + 1) / (freq + k1 * (1 - b + b * D / avgdl))`` with D the
  row's tokens and avgdl the mean D. FTS5 returns the score negated; :func:`search` returns it positive, as
  the SQLite queries' ``-bm25(...)`` does. The phrases are :func:`core.matching.lexical.fts_query_terms`,
  the ones ``fts_query`` ORs together, each tokenised; a term that becomes two tokens (``o'brien``: the
  apostrophe is no token character) is a phrase matching only where its tokens are adjacent, which counts
  cannot tell, so those rows are found by their tokens and checked against their text.
* **Scores are computed in SQL**: the candidates (``lexemes @@ 'a' | 'b'``, on the GIN index) can be most
  of 100k tickets for a runbook's 64 terms, and only the best ``limit`` rows need to leave the server. The
  per-term document counts are GIN lookups; the per-phrase sum runs in phrase order, as FTS5's loop does,
  so equal inputs give bit-equal scores on both engines.
* **Statistics per tenant.** FTS5's N, avgdl and n are over the whole table, every tenant of the SQLite
  file; here they are the tenant's own (one tenant's tickets should not move another's ranking, and a login
  cannot see the other tenants' rows anyway). With one tenant the two are equal.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from core.matching.lexical import FTS_TOKENIZE, fts_query_terms, fts_terms

__all__ = ["FTS_TABLES", "FtsTable", "fts_tokens", "refresh_stale", "search", "tsquery_literal"]

K1 = 1.2  # fts5_aux.c, fts5Bm25Function
B = 0.75
IDF_FLOOR = 1e-6  # an idf <= 0 (a term in more than half the rows) becomes this
MAX_LEXEME_BYTES = 2046  # PostgreSQL: "word is too long" from 2 KB (2,047 bytes) on
REFRESH_BATCH = 2000  # rows tokenised and written per statement

Database = Session | Connection


@dataclass(frozen=True)
class FtsTable:
    """A search table of migration 0014 and the source columns it indexes, in FTS5's column order."""

    name: str
    source: str
    columns: tuple[str, ...]


# As migration 0014 creates them (and 0003/0013 on SQLite: the same columns in the same order).
FTS_TABLES: dict[str, FtsTable] = {
    table.name: table
    for table in (
        FtsTable("runbook_fts", "runbooks", ("title", "body")),
        FtsTable("ticket_fts", "tickets", ("title", "description")),
        FtsTable("article_fts", "knowledge_articles", ("title", "body", "attachment_text")),
    )
}

# --- Tokens: FTS5's unicode61 -----------------------------------------------------------------------------

_ASCII_TOKEN = re.compile(r"[0-9a-z\-._@]+")  # unicode61 on ASCII: letters, digits and the tokenchars


@dataclass(frozen=True)
class _CharRule:
    """What unicode61 does with one character: start a token, continue one, and what it is folded to."""

    starts: bool
    continues: bool
    folded: str


_SEPARATOR = _CharRule(False, False, "")


class _Unicode61:
    """SQLite's unicode61 tokeniser, asked once per non-ASCII character through an in-memory FTS5 table.

    A letter (categories L*, N*, Co in SQLite's tables) starts and continues a token; a combining mark
    SQLite counts as a diacritic only continues one (and is folded away); anything else separates. Probing
    ``x?y`` and ``?`` tells which, and what ``?`` folds to (lower case, diacritics removed).
    """

    def __init__(self) -> None:
        self._rules: dict[str, _CharRule] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def rules(self, chars: Iterable[str]) -> Mapping[str, _CharRule]:
        unknown = {char for char in chars if char not in self._rules}
        if unknown:
            with self._lock:
                self._probe(unknown - self._rules.keys())
        return self._rules

    def _probe(self, chars: set[str]) -> None:
        if self._db is None:
            self._db = sqlite3.connect(":memory:", check_same_thread=False)
            self._db.execute(f'CREATE VIRTUAL TABLE probe USING fts5(c, tokenize="{FTS_TOKENIZE}")')
            self._db.execute("CREATE VIRTUAL TABLE probe_tokens USING fts5vocab(probe, 'instance')")
        probed = sorted(char for char in chars if not 0xD800 <= ord(char) <= 0xDFFF)  # no UTF-8 for those
        self._db.execute("DELETE FROM probe")
        self._db.executemany(
            "INSERT INTO probe(rowid, c) VALUES (?, ?)",
            [
                (2 * i + offset, form)
                for i, char in enumerate(probed)
                for offset, form in ((1, f"x{char}y"), (2, char))
            ],
        )
        tokens: dict[int, list[str]] = {}
        for doc, term in self._db.execute("SELECT doc, term FROM probe_tokens ORDER BY doc, col, offset"):
            tokens.setdefault(int(doc), []).append(str(term))
        for char in chars:
            self._rules[char] = _SEPARATOR
        for i, char in enumerate(probed):
            inside, alone = tokens.get(2 * i + 1, []), tokens.get(2 * i + 2, [])
            if len(inside) == 1:  # x?y stayed one token: ? continues a token
                folded = inside[0][1:-1]
                self._rules[char] = _CharRule(starts=len(alone) == 1, continues=True, folded=folded)


_UNICODE61 = _Unicode61()  # a memo of SQLite's fixed tables, shared by every session and thread


def fts_tokens(indexed_text: str) -> list[str]:
    """The tokens FTS5 makes of ``indexed_text`` (an FTS column's content, or one phrase of a query)."""
    if indexed_text.isascii():  # almost always: one regular expression does it
        return _ASCII_TOKEN.findall(indexed_text.lower())
    tokens: list[str] = []
    for piece in indexed_text.split():  # whitespace never belongs to a token
        if piece.isascii():
            tokens.extend(_ASCII_TOKEN.findall(piece.lower()))
        else:
            tokens.extend(_unicode_tokens(piece))
    return tokens


def _unicode_tokens(piece: str) -> list[str]:
    rules = _UNICODE61.rules(char for char in piece if not char.isascii())
    tokens: list[str] = []
    current: list[str] | None = None
    for char in piece:
        if char.isascii():
            is_token_char = _ASCII_TOKEN.fullmatch(char.lower()) is not None
            rule = _CharRule(is_token_char, is_token_char, char.lower()) if is_token_char else _SEPARATOR
        else:
            rule = rules[char]
        if current is not None and rule.continues:
            current.append(rule.folded)
            continue
        if current is not None:
            tokens.append("".join(current))
            current = None
        if rule.starts:
            current = [rule.folded]
    if current is not None:
        tokens.append("".join(current))
    return [token for token in tokens if token]


def column_tokens(source_text: str | None) -> list[str]:
    """What an FTS column holds for a source column's text: the tokens of its :func:`fts_terms`."""
    return fts_tokens(fts_terms(source_text))


# --- Refreshing the stale rows -----------------------------------------------------------------------------


def refresh_stale(db: Database, table: str, tenant_id: int | None = None) -> int:
    """Tokenise the source text of the stale rows of ``table`` (the tenant's, or all) and store ``tf``,
    ``n_tokens`` and ``lexemes``; returns how many rows were refreshed.

    The rows are locked first (``FOR UPDATE SKIP LOCKED``) and their text read after: a writer that changes
    a source row meanwhile waits for this transaction in its trigger, then marks the row stale again, so an
    old text is never left marked fresh. Rows another transaction holds are skipped.
    """
    fts = FTS_TABLES[table]
    tenant_clause = "" if tenant_id is None else " AND tenant_id = :tenant"
    stale_ids = [
        int(rowid)
        for (rowid,) in db.execute(
            text(
                f"SELECT rowid FROM {fts.name} WHERE stale{tenant_clause} "
                "ORDER BY rowid FOR UPDATE SKIP LOCKED"
            ),
            {"tenant": tenant_id},
        )
    ]
    columns = ", ".join(fts.columns)
    for batch in _batches(stale_ids, REFRESH_BATCH):
        refreshed: list[dict[str, Any]] = []
        for rowid, *texts in db.execute(
            text(f"SELECT id, {columns} FROM {fts.source} WHERE id = ANY(:ids)"), {"ids": batch}
        ):
            tf: dict[str, list[int]] = {}
            n_tokens = 0
            for column, source_text in enumerate(texts):
                tokens = column_tokens(source_text)
                n_tokens += len(tokens)
                for token, count in Counter(tokens).items():
                    tf.setdefault(token, [0] * len(texts))[column] = count
            refreshed.append({"rowid": rowid, "tf": tf, "n_tokens": n_tokens})
        # One JSON document per batch: the server parses it far faster than the driver binds 2,000 values.
        db.execute(
            text(
                f"UPDATE {fts.name} AS f SET tf = u.tf, n_tokens = u.n_tokens, stale = false, "
                "lexemes = array_to_tsvector(ARRAY(SELECT token FROM jsonb_object_keys(u.tf) AS token "
                "WHERE octet_length(token) <= :max_bytes)) "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
                "AS u(rowid integer, tf jsonb, n_tokens integer) WHERE f.rowid = u.rowid"
            ),
            {"rows": json.dumps(refreshed, ensure_ascii=False), "max_bytes": MAX_LEXEME_BYTES},
        )
    return len(stale_ids)


def _refresh_for_search(session: Session, table: str, tenant_id: int) -> None:
    """Refresh before a search, in two steps. First on a connection of its own, committed at once: the
    rows others made stale are refreshed for every desktop, and a search session that only reads (and
    never commits) does not redo it each time nor hold their row locks while it works. Then in the
    search's own transaction: the rows its own uncommitted writes made stale (which the other connection
    cannot see, and skips while locked), as SQLite's triggers show a transaction its own changes."""
    bind = session.get_bind()
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            if refresh_stale(connection, table, tenant_id):
                connection.commit()
    refresh_stale(session, table, tenant_id)


def _batches(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


# --- Searching ---------------------------------------------------------------------------------------------


def tsquery_literal(lexemes: Iterable[str], operator: str = "|") -> str:
    """A tsquery of quoted lexemes taken as they are (``CAST(... AS tsquery)``, never ``to_tsquery``, which
    would parse and stem them again); quotes and backslashes escaped."""
    quoted = ("'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes)
    return f" {operator} ".join(quoted)


def _searchable(token: str) -> bool:
    return len(token.encode("utf-8")) <= MAX_LEXEME_BYTES


def search(
    session: Session,
    table: str,
    query_text: str,
    *,
    tenant_id: int,
    limit: int,
    weights: Sequence[float] = (),
    where: str = "",
    params: Mapping[str, Any] | None = None,
) -> list[tuple[int, float]]:
    """The rows of ``table`` matching any of the query's terms, best first, as ``(rowid, score)`` with
    FTS5's BM25 score made positive (what ``-bm25(table, *weights)`` gives on SQLite); at most ``limit``.

    ``weights`` are the columns' (missing ones are 1.0, as in ``bm25()``). ``where`` narrows the rows by
    their source row, aliased ``src`` (``"src.status = 'approved'"``), with its own ``params``; it does not
    change the statistics, as a condition beside ``MATCH`` does not on SQLite.
    """
    fts = FTS_TABLES[table]
    _refresh_for_search(session, table, tenant_id)
    phrases = [
        tokens
        for tokens in (fts_tokens(term) for term in fts_query_terms(query_text))
        if tokens and all(_searchable(token) for token in tokens)
    ]
    if not phrases:
        return []
    n_rows, n_tokens = session.execute(
        text(
            f"SELECT count(*), coalesce(sum(n_tokens), 0) FROM {fts.name} "
            "WHERE tenant_id = :tenant AND NOT stale"
        ),
        {"tenant": tenant_id},
    ).one()
    if not n_rows:
        return []
    avgdl = float(n_tokens) / float(n_rows)
    column_weights = [float(w) for w in weights[: len(fts.columns)]]
    column_weights += [1.0] * (len(fts.columns) - len(column_weights))

    single = {i: tokens[0] for i, tokens in enumerate(phrases) if len(tokens) == 1}
    extra_rowids: list[int] = []  # multi-token phrases: (row, phrase, idf, freq) computed here
    extra_phrases: list[int] = []
    extra_idfs: list[float] = []
    extra_freqs: list[float] = []
    for i, tokens in enumerate(phrases):
        if i in single:
            continue
        hits = _phrase_hits(session, fts, tenant_id, tokens)
        idf = _idf(n_rows, len(hits))
        for rowid, per_column in hits.items():
            extra_rowids.append(rowid)
            extra_phrases.append(i)
            extra_idfs.append(idf)
            extra_freqs.append(_weighted(per_column, column_weights))
    hit_sql: list[str] = []
    if single:
        # The candidates hold every row with any of the tokens, so a token's n is its count among them.
        # ``tf || '{}'`` reads a row's (often compressed) tf once, not once per token.
        freq = " + ".join(
            f"CAST(:w{c} AS float8) * CAST(x.counts ->> {c} AS float8)" for c in range(len(fts.columns))
        )
        n_hits = "count(*) OVER (PARTITION BY x.phrase)"
        ratio = (
            f"(CAST(:n_rows AS float8) - {n_hits} + CAST(0.5 AS float8)) / ({n_hits} + CAST(0.5 AS float8))"
        )
        hit_sql.append(
            f"SELECT x.rowid, x.phrase, CASE WHEN ln({ratio}) > 0 THEN ln({ratio}) "
            f"ELSE CAST(:idf_floor AS float8) END AS idf, {freq} AS freq "
            "FROM (SELECT c.rowid, p.phrase, c.tf -> p.token AS counts "
            f"FROM (SELECT f.rowid, f.tf || '{{}}' AS tf FROM {fts.name} AS f "
            "WHERE f.tenant_id = :tenant AND NOT f.stale "
            "AND f.lexemes @@ CAST(:tsquery AS tsquery) OFFSET 0) AS c "
            "CROSS JOIN unnest(CAST(:tokens AS text[]), CAST(:phrases AS integer[])) AS p(token, phrase)) "
            "AS x WHERE x.counts IS NOT NULL"
        )
    if extra_rowids:
        hit_sql.append(
            "SELECT x.rowid, x.phrase, x.idf, x.freq FROM unnest(CAST(:x_rowids AS integer[]), "
            "CAST(:x_phrases AS integer[]), CAST(:x_idfs AS float8[]), CAST(:x_freqs AS float8[])) "
            "AS x(rowid, phrase, idf, freq)"
        )
    if not hit_sql:
        return []
    condition = f" AND ({where})" if where else ""
    statement = text(
        f"WITH hit AS ({' UNION ALL '.join(hit_sql)}) "
        "SELECT h.rowid, sum(h.idf * ((h.freq * CAST(:k1_plus_1 AS float8)) "
        "/ (h.freq + CAST(:k1 AS float8) * (CAST(:one_minus_b AS float8) "
        "+ CAST(:b AS float8) * f.n_tokens / CAST(:avgdl AS float8)))) ORDER BY h.phrase) AS score "
        f"FROM hit AS h JOIN {fts.name} AS f ON f.rowid = h.rowid "
        f"JOIN {fts.source} AS src ON src.id = h.rowid "
        f"WHERE src.tenant_id = :tenant{condition} "
        "GROUP BY h.rowid ORDER BY score DESC, h.rowid LIMIT :limit"
    )
    values: dict[str, Any] = {
        **(params or {}),
        "tenant": tenant_id,
        "limit": limit,
        "tokens": list(single.values()),
        "phrases": list(single),
        "n_rows": n_rows,
        "idf_floor": IDF_FLOOR,
        "tsquery": tsquery_literal(dict.fromkeys(single.values())),
        "x_rowids": extra_rowids,
        "x_phrases": extra_phrases,
        "x_idfs": extra_idfs,
        "x_freqs": extra_freqs,
        "k1_plus_1": K1 + 1.0,
        "k1": K1,
        "one_minus_b": 1 - B,
        "b": B,
        "avgdl": avgdl,
        **{f"w{c}": weight for c, weight in enumerate(column_weights)},
    }
    return [(int(rowid), float(score)) for rowid, score in session.execute(statement, values)]


def _idf(n_rows: int, n_hits: int) -> float:
    idf = math.log((n_rows - n_hits + 0.5) / (n_hits + 0.5))
    return idf if idf > 0.0 else IDF_FLOOR


def _weighted(per_column: Sequence[int], weights: Sequence[float]) -> float:
    """FTS5 adds a column's weight once per instance; in column order here (exact for counts times the
    weights the app uses: 3.0, 1.0, 0.5)."""
    freq = 0.0
    for count, weight in zip(per_column, weights, strict=True):
        freq += weight * count
    return freq


def _phrase_hits(
    session: Session, fts: FtsTable, tenant_id: int, phrase: Sequence[str]
) -> dict[int, list[int]]:
    """Per row where ``phrase``'s tokens stand side by side in a column, how often in each column.

    The rows holding all its tokens come from the GIN index; their text is tokenised again to see where
    the tokens stand (FTS5 counts each start position, overlapping ones included).
    """
    columns = ", ".join(f"src.{column}" for column in fts.columns)
    rows = session.execute(
        text(
            f"SELECT src.id, {columns} FROM {fts.name} AS f JOIN {fts.source} AS src ON src.id = f.rowid "
            "WHERE f.tenant_id = :tenant AND NOT f.stale AND f.lexemes @@ CAST(:query AS tsquery)"
        ),
        {"tenant": tenant_id, "query": tsquery_literal(dict.fromkeys(phrase), "&")},
    )
    width = len(phrase)
    target = list(phrase)
    hits: dict[int, list[int]] = {}
    for rowid, *texts in rows:
        per_column = []
        for source_text in texts:
            tokens = column_tokens(source_text)
            per_column.append(
                sum(1 for i in range(len(tokens) - width + 1) if tokens[i : i + width] == target)
            )
        if any(per_column):
            hits[int(rowid)] = per_column
    return hits
