"""``runbook-desk knowledge ...``: the knowledge articles the connectors synced, headless (issue 14).

::

    knowledge list [--state published|draft|review|retired|all] [--limit N]
    knowledge show NUMBER            one article: its fields and its Markdown body
    knowledge adopt NUMBER           make it a draft runbook (the same runbook when adopted before)
    knowledge changed                adopted runbooks whose article changed since, with the diff
    knowledge acknowledge RUNBOOK_ID [--keep-mine]
                                     take the article's new text as a new revision (or keep the runbook's
                                     text and only mark the change seen)

NUMBER is what people quote (KB0012345, a Confluence page id), or the article's external id. Adoption and
acknowledgement are audited in the name of the OS user (:func:`core.store.repository.current_actor`); the
rules are :mod:`core.knowledge.adopt`'s.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.knowledge.adopt import SourceChange
    from core.store.models import KnowledgeArticle
    from core.store.workspace import Workspace

STATE_CHOICES = ("published", "draft", "review", "retired", "all")


def add_knowledge_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    knowledge = commands.add_parser("knowledge", help="knowledge articles: list, show, adopt as runbooks")
    actions = knowledge.add_subparsers(dest="action", metavar="ACTION", required=True)
    lister = actions.add_parser("list", parents=[common], help="articles, by number")
    lister.add_argument(
        "--state", choices=STATE_CHOICES, default="published", help="only this state (default: %(default)s)"
    )
    lister.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    show = actions.add_parser("show", parents=[common], help="one article with its body")
    show.add_argument("number", metavar="NUMBER", help="KB0012345, a page id, or the external id")
    adopt = actions.add_parser("adopt", parents=[common], help="turn an article into a draft runbook")
    adopt.add_argument("number", metavar="NUMBER", help="KB0012345, a page id, or the external id")
    actions.add_parser(
        "changed", parents=[common], help="adopted runbooks whose article changed, with the diff"
    )
    acknowledge = actions.add_parser(
        "acknowledge", parents=[common], help="re-base an adopted runbook on its article's current text"
    )
    acknowledge.add_argument("runbook_id", type=int, metavar="RUNBOOK_ID")
    acknowledge.add_argument(
        "--keep-mine", action="store_true", help="keep the runbook's text; only mark the change seen"
    )


def run_knowledge_command(args: argparse.Namespace, workspace: Workspace) -> int:
    from sqlalchemy import select

    from core.knowledge.adopt import (
        acknowledge_source_change,
        adopt_article,
        adopted_runbook_id,
        find_article,
        source_changes,
    )
    from core.store.models import KnowledgeArticle
    from core.store.repository import current_actor
    from desktop.cli.common import EXIT_OK, print_result

    sessions = workspace.session_factory(args.tenant)
    if args.action == "list":
        query = select(KnowledgeArticle).order_by(KnowledgeArticle.number, KnowledgeArticle.id)
        if args.state != "all":
            query = query.where(KnowledgeArticle.status == args.state)
        with sessions() as session:
            rows = [
                article_json(article, adopted_runbook_id(session, article.id))
                for article in session.scalars(query.limit(max(args.limit, 0)))
            ]
        print_result(args, rows, "\n".join(list_line(row) for row in rows) or "no articles")
        return EXIT_OK
    if args.action == "show":
        with sessions() as session:
            article = find_article(session, args.number)
            row = article_json(article, adopted_runbook_id(session, article.id), body=True)
        print_result(args, row, show_text(row))
        return EXIT_OK
    if args.action == "adopt":
        with sessions.begin() as session:
            article = find_article(session, args.number)
            before = adopted_runbook_id(session, article.id)
            runbook_id = adopt_article(session, article.id, current_actor())
            label = article.number or article.external_id
        verb = "already adopted as" if before is not None else "adopted as draft"
        payload = {"article": label, "runbook_id": runbook_id, "new": before is None}
        print_result(args, payload, f"{label} {verb} runbook {runbook_id}")
        return EXIT_OK
    if args.action == "changed":
        with sessions() as session:
            changes = source_changes(session)
        text = "\n\n".join(change_text(change) for change in changes) or "no adopted runbook's source changed"
        print_result(args, [change_json(change) for change in changes], text)
        return EXIT_OK
    with sessions.begin() as session:
        revision = acknowledge_source_change(
            session, args.runbook_id, current_actor(), take_article_text=not args.keep_mine
        )
    how = "kept its text" if args.keep_mine else f"took the article's text as revision {revision}"
    payload = {"runbook_id": args.runbook_id, "revision": revision, "took_article_text": not args.keep_mine}
    print_result(args, payload, f"runbook {args.runbook_id} {how}; the change is marked seen")
    return EXIT_OK


def article_json(article: KnowledgeArticle, runbook_id: int | None, *, body: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": article.id,
        "number": article.number,
        "external_id": article.external_id,
        "source_system": article.source_system,
        "state": article.status,
        "title": article.title,
        "space": article.space,
        "category": article.category,
        "author": article.author,
        "url": article.url,
        "updated_at": article.source_updated_at.isoformat() if article.source_updated_at else None,
        "attachments": list(article.attachments or ()),
        "adopted_runbook_id": runbook_id,
    }
    if body:
        row["body"] = article.body
    return row


def list_line(row: dict[str, Any]) -> str:
    adopted = f"  (runbook {row['adopted_runbook_id']})" if row["adopted_runbook_id"] is not None else ""
    number = row["number"] or row["external_id"]
    return f"{number:<14} {row['state'] or '':<10} {row['source_system']:<16} {row['title']}{adopted}"


def show_text(row: dict[str, Any]) -> str:
    fields = ("number", "title", "state", "source_system", "space", "category", "author", "updated_at", "url")
    lines = [f"{name.replace('_', ' ')}: {row[name] or '—'}" for name in fields]
    if row["attachments"]:
        lines.append(f"attachments: {', '.join(row['attachments'])}")
    if row["adopted_runbook_id"] is not None:
        lines.append(f"adopted as runbook: {row['adopted_runbook_id']}")
    return "\n".join([*lines, "", row["body"]])


def change_json(change: SourceChange) -> dict[str, Any]:
    return {
        "runbook_id": change.runbook_id,
        "runbook": change.runbook_title,
        "article_id": change.article_id,
        "number": change.number,
        "url": change.url,
        "diff": change.diff,
    }


def change_text(change: SourceChange) -> str:
    where = f" <{change.url}>" if change.url else ""
    article = change.number or "its article"
    head = f"runbook {change.runbook_id} “{change.runbook_title}”: {article}{where} changed"
    return f"{head}\n{change.diff}"
