"""``runbook-desk alerts ...``: the Alerts page, headless (an on-call script, a chat bot, a cron report).

::

    alerts list [--all]                          open incidents, worst first (--all: resolved ones too)
    alerts show INCIDENT                         the incident, its alerts (raw text) and its runbook
    alerts create-ticket INCIDENT --connector NAME [--yes]
                                                 create it in a ticketing system (asks first without --yes)
    alerts stats                                 events in, alerts kept, incidents: the compression ratio
    alerts settings [--window MIN] [--max-hours H]
                                                 the correlation settings (shown; changed and audited)

INCIDENT is the incident's number as the review queue shows it (``MON-12``) or its id (``12``). Every
command takes ``--json``. ``create-ticket`` prints what will be sent and asks before sending it, unless
``--yes``; it never creates two tickets for one incident (a second run prints the first's number) and is
audited as the app's button is, in the name of the OS user.

The store and the connectors are imported inside the functions: ``runbook-desk tickets list`` should not
pay for this module.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.base import CreatedTicket, NewIncident
    from core.monitoring.queries import AlertRow, IncidentRow
    from core.store.tenancy import TenantSession
    from core.store.workspace import Workspace


def add_alerts_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    alerts = commands.add_parser("alerts", help="monitoring incidents and their suggested runbooks")
    actions = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    lister = actions.add_parser("list", parents=[common], help="open incidents, worst first")
    lister.add_argument("--all", action="store_true", help="resolved incidents too")
    show = actions.add_parser("show", parents=[common], help="one incident with its alerts and runbook")
    show.add_argument("incident", metavar="INCIDENT", help="MON-12 or 12")
    create = actions.add_parser(
        "create-ticket", parents=[common], help="create the incident in a ticketing system (once)"
    )
    create.add_argument("incident", metavar="INCIDENT", help="MON-12 or 12")
    create.add_argument("--connector", required=True, metavar="NAME", help="a ticketing connector's name")
    create.add_argument("--yes", action="store_true", help="send without asking")
    actions.add_parser("stats", parents=[common], help="events in, alerts kept, incidents: the ratio")
    settings = actions.add_parser(
        "settings", parents=[common], help="how alerts are grouped into incidents (for the next syncs)"
    )
    settings.add_argument("--window", type=int, metavar="MIN", help="minutes: alerts on one host/service")
    settings.add_argument(
        "--max-hours", type=int, metavar="H", help="an incident takes no alert after H hours"
    )


def run_alerts_command(args: argparse.Namespace, workspace: Workspace) -> int:
    from core.monitoring.queries import compression, incident, list_incidents
    from desktop.cli.common import EXIT_OK

    sessions = workspace.session_factory(args.tenant)
    if args.action == "list":
        with sessions() as session:
            rows = list_incidents(session, include_resolved=args.all)
        text = "\n".join(_row_line(row) for row in rows) or "no open incidents"
        _print(args, [_row_json(row) for row in rows], text)
        return EXIT_OK
    if args.action == "settings":
        return _settings(args, workspace)
    if args.action == "stats":
        with sessions() as session:
            ratio = compression(session)
        payload = {
            "events": ratio.events,
            "alerts": ratio.alerts,
            "incidents": ratio.incidents,
            "ratio": ratio.ratio,
        }
        text = (
            f"{ratio.events:,} events -> {ratio.alerts:,} alerts -> {ratio.incidents:,} incidents "
            f"(compression {ratio.ratio:.2f}: events per alert kept)"
        )
        _print(args, payload, text)
        return EXIT_OK
    with sessions() as session:
        incident_id = find_incident_id(session, args.incident)
        row = incident(session, incident_id)
    assert row is not None  # find_incident_id found it
    if args.action == "show":
        _print(args, _row_json(row, alerts=True), _show_text(row))
        return EXIT_OK
    return _create_ticket(args, workspace, row)


def _settings(args: argparse.Namespace, workspace: Workspace) -> int:
    """Show the tenant's correlation settings; with an option, change them (audited as the OS user)."""
    from dataclasses import asdict, replace

    from core.errors import RunbookDeskError
    from core.monitoring.queries import save_monitoring_settings
    from core.monitoring.settings import MonitoringSettings
    from core.settings import load_settings
    from core.store.repository import current_actor
    from desktop.cli.common import EXIT_OK

    sessions = workspace.session_factory(args.tenant)
    with sessions.begin() as session:
        current = load_settings(session, MonitoringSettings)
        changes = {
            key: value
            for key, value in (
                ("correlation_window_minutes", args.window),
                ("max_incident_hours", args.max_hours),
            )
            if value is not None
        }
        if changes:
            try:
                current = replace(current, **changes)
            except ValueError as exc:
                raise RunbookDeskError(str(exc)) from None
            save_monitoring_settings(session, current, actor=current_actor())
    text = (
        f"alerts on one host or service within {current.correlation_window_minutes} min are one incident; "
        f"an incident takes no new alert after {current.max_incident_hours} h"
    )
    _print(args, asdict(current), text)
    return EXIT_OK


def find_incident_id(session: TenantSession, reference: str) -> int:
    """``MON-12`` or ``12`` -> 12, when that incident is in this tenant."""
    from core.errors import RunbookDeskError
    from core.store.models import MonitoringIncident

    text = reference.strip()
    digits = text[4:] if text.upper().startswith("MON-") else text
    if digits.isdigit():
        found = session.get(MonitoringIncident, int(digits))
        if found is not None and found.tenant_id == session.tenant_id:
            return found.id
    raise RunbookDeskError(f"no monitoring incident {reference} in tenant {session.tenant_slug}")


def _create_ticket(args: argparse.Namespace, workspace: Workspace, row: IncidentRow) -> int:
    import asyncio

    from connectors.base import ConnectorKind
    from connectors.configs import get_config
    from connectors.registry import connector_class
    from connectors.secrets import redact_text
    from connectors.writes import create_incident_ticket, new_incident
    from core.errors import RunbookDeskError
    from core.store.models import MonitoringIncident
    from core.store.repository import current_actor
    from desktop.cli.common import EXIT_ERROR, EXIT_OK

    sessions = workspace.session_factory(args.tenant)
    with sessions() as session:
        config = get_config(session, args.connector)
        incident_row = session.get(MonitoringIncident, row.id)
        assert incident_row is not None
        request = new_incident(session, incident_row)
    connector = connector_class(config.connector_type)
    if connector.spec.kind is not ConnectorKind.TICKETING or not connector.can_write:
        raise RunbookDeskError(f"{config.name} ({connector.spec.display_name}) cannot create tickets")
    if row.created_number is None and not args.yes:
        print(f"Will create in {config.name} ({connector.spec.display_name}):", file=sys.stderr)
        print(_request_text(request), file=sys.stderr)
        if not sys.stdin.isatty():
            print("not a terminal: pass --yes to send without asking", file=sys.stderr)
            return EXIT_ERROR
        answer = input("Create this ticket? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing sent", file=sys.stderr)
            return EXIT_ERROR
    created: CreatedTicket = asyncio.run(
        create_incident_ticket(sessions, row.id, config.id, actor=current_actor())
    )
    payload = {
        "incident": f"MON-{row.id}",
        "connector": config.name,
        "number": created.number,
        "url": created.url,
        "existed": created.existed,
    }
    verb = "was already" if created.existed else "created as"
    _print(args, payload, redact_text(f"MON-{row.id} {verb} {created.number}"))
    return EXIT_OK


# --- printing ----------------------------------------------------------------------------------------------


def _print(args: argparse.Namespace, payload: Any, text: str) -> None:
    from desktop.cli.common import print_result

    print_result(args, payload, text)


def _request_text(request: NewIncident) -> str:
    lines = [
        f"  Title: {request.title}",
        f"  Severity: {request.severity}",
        f"  Configuration item: {request.configuration_item or '(none)'}",
        f"  Correlation id: {request.correlation_id}",
        "  Description:",
    ]
    lines += [f"    {line}" for line in request.description.splitlines()]
    return "\n".join(lines)


def _runbook_text(row: IncidentRow) -> str:
    if not row.runbook_title:
        return "no runbook yet"
    confidence = f" ({row.confidence:.0%})" if row.confidence is not None else ""
    return f"“{row.runbook_title}”{confidence}"


def _row_line(row: IncidentRow) -> str:
    where = ", ".join([*row.hosts, *row.services])
    changes = f" [{', '.join(row.changes)}]" if row.changes else ""
    ticket = f" ticket {row.created_number}" if row.created_number else ""
    return (
        f"MON-{row.id}\t{row.severity}\t{row.status}\t{row.title} ({where}; {len(row.alerts)} alerts)"
        f"\t{_runbook_text(row)}{ticket}{changes}"
    )


def _show_text(row: IncidentRow) -> str:
    lines = [
        f"MON-{row.id}: {row.title}",
        f"  severity {row.severity}, {row.status}; opened {row.opened_at:%Y-%m-%d %H:%M} UTC, last alert "
        f"{row.last_alert_at:%Y-%m-%d %H:%M} UTC",
        f"  hosts: {', '.join(row.hosts) or '-'}; services: {', '.join(row.services) or '-'}",
        f"  runbook: {_runbook_text(row)}"
        + (f"; decision {row.decision.value}" if row.decision is not None else ""),
    ]
    if row.created_number:
        lines.append(f"  ticket: {row.created_number} {row.created_url or ''}".rstrip())
    for alert in row.alerts:
        lines.append(
            f"- [{alert.severity}] {alert.title} ({alert.source_system}, {alert.host or 'no host'}, "
            f"{alert.status}, x{alert.occurrence_count})"
        )
        lines += [f"    {line}" for line in (alert.message or "").splitlines()]
        if alert.expression:
            lines.append(f"    rule: {alert.expression}")
    return "\n".join(lines)


def _alert_json(alert: AlertRow) -> dict[str, Any]:
    return {
        "id": alert.id,
        "source": alert.source_system,
        "title": alert.title,
        "message": alert.message,
        "expression": alert.expression,
        "severity": str(alert.severity),
        "status": str(alert.status),
        "host": alert.host,
        "service": alert.service,
        "tags": alert.tags,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "occurrences": alert.occurrence_count,
        "url": alert.source_url,
    }


def _row_json(row: IncidentRow, *, alerts: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": row.id,
        "number": f"MON-{row.id}",
        "ticket_id": row.ticket_id,
        "title": row.title,
        "severity": str(row.severity),
        "status": str(row.status),
        "hosts": list(row.hosts),
        "services": list(row.services),
        "opened_at": row.opened_at.isoformat(),
        "last_alert_at": row.last_alert_at.isoformat(),
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
        "alert_count": len(row.alerts),
        "runbook_id": row.runbook_id,
        "runbook": row.runbook_title,
        "confidence": row.confidence,
        "decision": row.decision.value if row.decision is not None else None,
        "ticket": row.created_number,
        "ticket_url": row.created_url,
        "changes": list(row.changes),
    }
    if alerts:
        payload["alerts"] = [_alert_json(alert) for alert in row.alerts]
    return payload
