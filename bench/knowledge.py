"""Knowledge benchmark: sync, convert and index 10,000 Confluence-shaped pages into a temporary workspace.

Run: ``.venv/bin/python bench/knowledge.py [--pages 10000] [--page-size 100] [--seed 14] [--direct]
[--no-index]``; start with ``--pages 500`` (about a minute), the full 10,000 pages take several minutes, most
of them embedding the article chunks on the CPU.

The pages are generated (seeded ``random.Random``) in Confluence's storage format, as the Cloud v2 API returns
them with ``body-format=storage``: XHTML with headings, numbered steps, ``ac:structured-macro`` code blocks
(language parameter, CDATA ``ac:plain-text-body``), info / note / warning panels, tables, ``ac:link`` to
``ri:page`` and ``ac:emoticon``; 1-6 KB each, like a team's runbook space.

Phases, each timed once (the model is loaded and warmed first, outside the clocks):

- **fetch only**: the Confluence connector's ``fetch()`` against the local fake (``tests/connectors/
  fake_confluence.py``; HTTP through ``httpx.MockTransport``, the fake rendering its pages, the connector
  normalising: that includes converting storage XHTML to Markdown), nothing stored: the raw fetch rate.
- **convert only**: :func:`core.knowledge.markdown.confluence_storage_to_markdown` over every body, to show
  how much of the fetch is the conversion.
- **sync**: :func:`connectors.sync.run_sync` of a fresh workspace: the same pages plus the per-page
  transaction (:func:`core.knowledge.store.upsert_articles`, the cursor, the run's counts).
- **index**: the engine's ``refresh()`` right after the sync: article chunks embedded (all-MiniLM-L6-v2,
  through the embedding cache) and added to FAISS and FTS5.

``--direct`` skips the connector and its fake: the pages are converted and stored with
``upsert_articles`` in pages of ``--page-size`` (what the sync does per page, without HTTP), then indexed.
It was the fallback while the connector was being written; it still shows what HTTP and paging cost.

The result ends with the rates, the ratio of the full sync (sync + index) to the fetch-only time and the peak
RSS (``ru_maxrss``). The connector's secret goes to the tests' in-memory keyring; nothing leaves the machine.

Measured on the 2-core dev VM (shared with other jobs), 10,000 pages: fetch only 210 pages/s, sync 201 pages/s
(1.05x the fetch time), index 1,132 s for 47,477 sections, full sync + index 8.5 pages/s, peak RSS 2.0 GB
(docs/knowledge.md has the table).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # the fake Confluence and the memory keyring live under tests/

from core.knowledge import markdown  # noqa: E402
from core.knowledge.records import ArticleState, ArticleValues  # noqa: E402
from core.knowledge.store import upsert_articles  # noqa: E402
from core.matching.embedding import SentenceTransformerEmbedder  # noqa: E402
from core.matching.engine import open_engine  # noqa: E402
from core.store.workspace import Workspace  # noqa: E402

T = TypeVar("T")
SPACES = (("OPS", "Operations"), ("EUC", "End User Computing"), ("NET", "Network"), ("DEVOPS", "DevOps"))
SYSTEMS = (
    ("nginx", "reverse proxy", "sudo systemctl reload nginx", "bash"),
    (
        "PostgreSQL",
        "database",
        "SELECT pid, state, query FROM pg_stat_activity WHERE state <> 'idle';",
        "sql",
    ),
    ("Citrix VDA", "virtual desktop", "Get-BrokerMachine -RegistrationState Unregistered", "powershell"),
    ("Jenkins agent", "build agent", "sudo systemctl restart jenkins-agent", "bash"),
    ("Kafka broker", "message broker", "kafka-consumer-groups.sh --describe --group billing", "bash"),
    ("Exchange Online", "mailbox", "Get-EXOMailboxStatistics alice@corp.example.com", "powershell"),
    ("RabbitMQ", "message queue", "rabbitmqctl list_queues name messages consumers", "bash"),
    ("Redis", "cache", "redis-cli -h cache-01 info memory", "bash"),
    ("Zoom Rooms", "meeting room", "Restart-Computer -ComputerName ZR-PC-04", "powershell"),
    ("SAP GUI", "ERP client", 'Test-Path "$env:APPDATA\\SAP\\Common\\SAPUILandscape.xml"', "powershell"),
    ("Elasticsearch", "search cluster", "curl -s localhost:9200/_cluster/health?pretty", "bash"),
    ("HAProxy", "load balancer", "echo 'show stat' | socat stdio /run/haproxy/admin.sock", "bash"),
)
PROBLEMS = (
    "is down after patching",
    "answers slowly",
    "fills its disk",
    "rejects connections",
    "loses its configuration",
    "runs out of memory",
    "stops syncing",
    "shows a certificate error",
)
VERBS = ("Check", "Restart", "Drain", "Verify", "Compare", "Clear", "Reload", "Escalate")


def storage_page(rng: random.Random, number: int) -> tuple[str, str, str]:
    """(space key, title, storage-format XHTML) of one generated page."""
    space_key, _ = rng.choice(SPACES)
    system, kind, command, language = rng.choice(SYSTEMS)
    problem = rng.choice(PROBLEMS)
    host = f"{system.split()[0].lower()}-{rng.randint(1, 40):02d}"
    title = f"{system} {problem} ({host}) - runbook {number}"
    parts = [
        f"<p>This page explains what to do when the {kind} <strong>{system}</strong> on <code>{host}</code> "
        f"{problem}. Owner: the {space_key} team &ndash; page {number}.</p>",
        '<ac:structured-macro ac:name="info" ac:schema-version="1"><ac:rich-text-body>'
        f"<p>Before you start, open a change for {host} if the service is customer facing.</p>"
        "</ac:rich-text-body></ac:structured-macro>",
    ]
    for section in range(rng.randint(1, 4)):
        parts.append(
            f"<h2>{rng.choice(('Diagnosis', 'Resolution', 'Rollback', 'Checks'))} {section + 1}</h2>"
        )
        steps = "".join(
            f"<li><p>{rng.choice(VERBS)} the {kind} on <code>{host}</code> "
            f"({rng.choice(('step', 'check', 'action'))} {step + 1}) and note the result.</p></li>"
            for step in range(rng.randint(3, 8))
        )
        parts.append(f"<ol>{steps}</ol>")
        parts.append(
            '<ac:structured-macro ac:name="code" ac:schema-version="1">'
            f'<ac:parameter ac:name="language">{language}</ac:parameter>'
            '<ac:parameter ac:name="linenumbers">true</ac:parameter>'
            f"<ac:plain-text-body><![CDATA[{command}\n# expected: no errors on {host} <ok> & done]]>"
            "</ac:plain-text-body></ac:structured-macro>"
        )
        if rng.random() < 0.5:
            rows = "".join(
                f"<tr><td><p>{host}-{row}</p></td><td><p>{rng.choice(('ok', 'degraded', 'down'))}</p></td>"
                f"<td><p>{rng.randint(1, 99)} %</p></td></tr>"
                for row in range(rng.randint(2, 6))
            )
            parts.append(
                '<table data-layout="default"><colgroup><col /><col /><col /></colgroup><tbody>'
                f"<tr><th><p>Host</p></th><th><p>State</p></th><th><p>Load</p></th></tr>{rows}</tbody></table>"
            )
    if rng.random() < 0.4:
        parts.append(
            '<ac:structured-macro ac:name="warning" ac:schema-version="1"><ac:rich-text-body>'
            '<p><ac:emoticon ac:name="warning" ac:emoji-shortname=":warning:" ac:emoji-fallback="⚠️" /> '
            f"Never restart {system} during month-end.</p></ac:rich-text-body></ac:structured-macro>"
        )
    parts.append(
        '<p>See also <ac:link><ri:page ri:content-title="On-call handbook" ri:space-key="OPS" />'
        "<ac:plain-text-link-body><![CDATA[the on-call handbook]]></ac:plain-text-link-body></ac:link>.</p>"
    )
    return space_key, title, "".join(parts)


def generate(count: int, seed: int) -> list[tuple[str, str, str, datetime]]:
    """(space key, title, XHTML, last modified) of ``count`` pages, oldest first."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pages = []
    for number in range(1, count + 1):
        space_key, title, body = storage_page(rng, number)
        pages.append((space_key, title, body, start + timedelta(minutes=7 * number)))
    return pages


def to_markdown(xhtml: str) -> str:
    return markdown.confluence_storage_to_markdown(xhtml)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


# --- through the connector and its fake -----------------------------------------------------------------


def fake_confluence(pages: list[tuple[str, str, str, datetime]], page_size: int) -> Any:
    from tests.connectors.fake_confluence import FakeConfluence

    fake = FakeConfluence()
    fake.page_size = max(fake.page_size, page_size)
    for number, (_space_key, title, body, modified) in enumerate(pages, start=1):
        page = fake.new_ticket(number, modified)  # in the fake's one space, which the settings ask for
        page.title = title
        page.description = body
        fake.add_ticket(page)
    return fake


async def fetch_only(fake: Any, page_size: int) -> tuple[int, int]:
    from connectors.registry import connector_class

    connector = connector_class("confluence").create(fake.settings(), transport=fake.transport())
    articles = requests = 0
    try:
        async for page in connector.fetch(None, page_size=page_size):
            articles += len(page.articles)
            requests += 1
    finally:
        await connector.close()
    return articles, requests


def sync_through_connector(workspace: Workspace, fake: Any, page_size: int) -> str:
    from connectors.configs import create_config
    from connectors.sync import run_sync

    sessions = workspace.session_factory()
    settings = fake.settings()
    config = create_config(
        sessions,
        connector_type="confluence",
        name=settings.name,
        base_url=settings.base_url,
        auth_mode=settings.auth_mode,
        options=dict(settings.options) | {"page_size": page_size},
        secrets=dict(settings.secrets),
        actor="bench",
    )
    report = asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), page_size=page_size))
    if not report.ok:
        raise SystemExit(f"sync failed: {report.error}")
    return str(report.headline())


# --- direct: convert and store without HTTP ---------------------------------------------------------------


def store_directly(workspace: Workspace, pages: list[tuple[str, str, str, datetime]], page_size: int) -> str:
    sessions = workspace.session_factory()
    new = 0
    for offset in range(0, len(pages), page_size):
        batch = [
            ArticleValues(
                external_id=str(100_000 + offset + index),
                source_system="confluence",
                title=title,
                body=to_markdown(body),
                state=ArticleState.PUBLISHED,
                updated_at=modified,
                number=str(100_000 + offset + index),
                url=f"https://wiki.example.com/wiki/spaces/{space_key}/pages/{100_000 + offset + index}",
                space=space_key,
                raw_payload={"body": {"storage": {"value": body, "representation": "storage"}}},
            )
            for index, (space_key, title, body, modified) in enumerate(pages[offset : offset + page_size])
        ]
        with sessions.begin() as session:
            new += upsert_articles(session, batch, instance="bench", connector_config_id=None).new
    return f"{new} new articles stored directly"


def rate(label: str, seconds: float, count: int, note: str = "") -> None:
    print(f"{label:<26}{seconds:8.2f} s  {count / seconds:8.1f} pages/s  {note}".rstrip(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100, help="pages per request (the connector's max)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--direct", action="store_true", help="convert + store without the connector")
    parser.add_argument("--no-index", action="store_true", help="skip the engine refresh")
    args = parser.parse_args()
    count = args.pages

    pages = generate(count, args.seed)
    raw_mb = sum(len(body) for _, _, body, _ in pages) / 2**20
    print(
        f"{count} Confluence pages ({raw_mb * 1024 / count:.1f} KB of XHTML each), seed {args.seed}",
        flush=True,
    )
    embedder = SentenceTransformerEmbedder()
    if not args.no_index:
        embedder.load()
        embedder.encode(["warm up the model"] * 8)

    convert_s, converted = timed(lambda: [to_markdown(body) for _, _, body, _ in pages])
    markdown_mb = sum(len(text) for text in converted) / 2**20
    rate("convert only", convert_s, count, f"({raw_mb:.1f} MB XHTML -> {markdown_mb:.1f} MB Markdown)")
    fetch_s = float("nan")
    index_s = 0.0
    with (
        tempfile.TemporaryDirectory(prefix="runbook-desk-knowledge-bench-") as tmp,
        Workspace.open(Path(tmp) / "ws") as workspace,
    ):
        if args.direct:
            sync_s, headline = timed(lambda: store_directly(workspace, pages, args.page_size))
            rate("convert + store (direct)", sync_s, count, headline)
        else:
            import keyring

            from tests.helpers.memory_keyring import MemoryKeyring

            keyring.set_keyring(MemoryKeyring())
            fake = fake_confluence(pages, args.page_size)
            fetch_s, (fetched, requests) = timed(lambda: asyncio.run(fetch_only(fake, args.page_size)))
            assert fetched == count, fetched
            rate("fetch only (no store)", fetch_s, count, f"({requests} requests)")
            sync_s, headline = timed(lambda: sync_through_connector(workspace, fake, args.page_size))
            rate("sync into the store", sync_s, count, headline)
        print(f"peak RSS so far {peak_rss_mb():.0f} MB", flush=True)
        if not args.no_index:
            engine = open_engine(workspace, "default", embedder)
            index_s, refresh = timed(engine.refresh)
            engine.save()
            rate("index (engine refresh)", index_s, count, f"{refresh.article_index} sections")

    full_s = sync_s + index_s
    rate("full sync + index", full_s, count)
    if not args.direct:
        print(f"ratio to fetch only: sync {sync_s / fetch_s:.2f}x, sync + index {full_s / fetch_s:.2f}x")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    print(
        f"knowledge pages={count} mode={'direct' if args.direct else 'connector'} "
        f"fetch_pps={count / fetch_s:.1f} sync_pps={count / sync_s:.1f} full_pps={count / full_s:.1f} "
        f"index_s={index_s:.1f} peak_rss_mb={peak_rss_mb():.0f}"
    )


if __name__ == "__main__":
    main()
