"""The write side of the ticketing connectors (issue 13): create an incident once, post an approved runbook
as a work note / comment / note / work-info entry, and say beforehand whether the account may.

Each system is its local fake answering in the vendor's real shapes; the fakes keep what was written, so the
tests read the text that landed, count the records created and look at the request bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from connectors.base import (
    CheckProblem,
    Connector,
    CreatedTicket,
    NewIncident,
    WorkNote,
    WriteAccess,
    WriteCheck,
)
from connectors.errors import ConfigurationError, ConnectionFailedError, PermissionDeniedError, ServerError
from connectors.testing.fake_system import InjectedFailure
from connectors.testing.standard_suite import SleepRecorder
from connectors.ticketing.jira import JiraConnector, correlation_label
from connectors.ticketing.remedy import RemedyConnector
from connectors.ticketing.servicedesk_plus import ServiceDeskPlusConnector
from connectors.ticketing.servicenow import ServiceNowConnector
from tests.connectors.fake_jira import API_TOKEN, PAT, FakeJira
from tests.connectors.fake_remedy import PASSWORD as REMEDY_PASSWORD
from tests.connectors.fake_remedy import FakeRemedy
from tests.connectors.fake_servicedesk_plus import API_KEY, CLIENT_SECRET, REFRESH_TOKEN, FakeServiceDeskPlus
from tests.connectors.fake_servicenow import FakeServiceNow

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
T = TypeVar("T")

INCIDENT = NewIncident(
    correlation_id="runbook-desk:1:42",
    title="CPU above 95% on lnx-app-01",
    description="lnx-app-01: CPU 97% for 10 minutes (Datadog monitor 1234)",
    severity="critical",
    configuration_item="lnx-app-01",
    runbook_title="High CPU on Linux app servers",
    runbook_url="https://wiki.example.com/runbooks/high-cpu",
)


def run(connector: Connector, action: Callable[[Connector], Awaitable[T]]) -> T:
    """Run one action on a connector and close it, as the app does."""

    async def go() -> T:
        try:
            return await action(connector)
        finally:
            await connector.close()

    return asyncio.run(go())


def note_for(payload: dict[str, Any], external_id: str) -> WorkNote:
    return WorkNote(
        ticket_external_id=external_id,
        ticket_payload=payload,
        runbook_title="VPN client reconnect loop",
        runbook_url="https://wiki.example.com/runbooks/vpn",
        confidence=0.87,
        approved_by="ann.analyst",
    )


EXPECTED_NOTE = (
    "Runbook linked by ann.analyst in Runbook Desk: VPN client reconnect loop (confidence 87%)\n"
    "https://wiki.example.com/runbooks/vpn"
)


def test_note_text_is_what_the_fakes_should_receive() -> None:
    assert note_for({}, "X").text() == EXPECTED_NOTE


# --- ServiceNow ------------------------------------------------------------------------------------------


def servicenow(fake: FakeServiceNow) -> ServiceNowConnector:
    return ServiceNowConnector.create(fake.settings(), transport=fake.transport(), sleep=SleepRecorder())


def test_servicenow_creates_the_incident_once() -> None:
    fake = FakeServiceNow()
    first = run(servicenow(fake), lambda c: c.create_incident(INCIDENT))
    second = run(servicenow(fake), lambda c: c.create_incident(INCIDENT))
    assert first.number == "INC0090001" and first.external_id == "INC0090001" and not first.existed
    sys_id = fake.sys_id(fake.tickets["INC0090001"])
    assert first.url == f"{fake.base_url}/nav_to.do?uri=incident.do?sys_id={sys_id}"
    assert second == CreatedTicket(first.number, first.external_id, first.url, existed=True)
    assert len(fake.inserts) == 1
    body = fake.inserts[0]
    assert body["correlation_id"] == "runbook-desk:1:42"
    assert (body["impact"], body["urgency"]) == ("1", "1")  # critical: P1 in the default matrix
    assert body["short_description"] == INCIDENT.title
    assert "cmdb_ci" not in body  # no CI of that name: a reference to an unknown name is not set


def test_servicenow_sets_the_ci_only_when_exactly_one_matches() -> None:
    fake = FakeServiceNow()
    fake.configuration_items["lnx-app-01"] = ["a" * 32]
    run(servicenow(fake), lambda c: c.create_incident(INCIDENT))
    assert fake.inserts[-1]["cmdb_ci"] == "a" * 32
    fake.configuration_items["lnx-app-02"] = ["b" * 32, "c" * 32]
    other = NewIncident("runbook-desk:1:43", "Disk full", "x", "warning", configuration_item="lnx-app-02")
    run(servicenow(fake), lambda c: c.create_incident(other))
    assert "cmdb_ci" not in fake.inserts[-1]
    assert (fake.inserts[-1]["impact"], fake.inserts[-1]["urgency"]) == ("2", "2")


def test_servicenow_create_whose_answer_is_lost_is_found_not_repeated() -> None:
    fake = FakeServiceNow()
    fake.lose_next_write_answer = True
    created = run(servicenow(fake), lambda c: c.create_incident(INCIDENT))
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 1  # the client did not send the insert again
    assert len(fake.inserts) == 1
    assert created.number == "INC0090001" and not created.existed


def test_servicenow_work_note_lands_on_the_synced_ticket() -> None:
    fake = FakeServiceNow()
    fake.add_ticket(fake.new_ticket(7, START))
    ticket = run(servicenow(fake), lambda c: c.preview(1))[0]
    note = note_for(ticket.raw_payload or {}, ticket.external_id)
    result = run(servicenow(fake), lambda c: c.add_work_note(note))
    assert result is None  # the Table API returns the record, not the journal entry
    assert fake.work_notes == {"INC0000007": [EXPECTED_NOTE]}


def test_servicenow_work_note_for_an_imported_ticket_finds_it_by_number() -> None:
    fake = FakeServiceNow()
    fake.add_ticket(fake.new_ticket(8, START))
    run(servicenow(fake), lambda c: c.add_work_note(note_for({}, "INC0000008")))
    assert fake.work_notes == {"INC0000008": [EXPECTED_NOTE]}


@pytest.mark.parametrize(
    ("roles", "readable", "access", "words"),
    [
        (["itil", "snc_internal"], True, WriteAccess.ALLOWED, "role itil"),
        (["sn_incident_write"], True, WriteAccess.ALLOWED, "role sn_incident_write"),
        (["snc_internal", "snc_read_only"], True, WriteAccess.DENIED, "snc_internal, snc_read_only"),
        (["itil"], False, WriteAccess.UNKNOWN, "first write will tell"),
        ([], True, WriteAccess.UNKNOWN, "first write will tell"),
    ],
)
def test_servicenow_write_check_reads_the_roles(
    roles: list[str], readable: bool, access: WriteAccess, words: str
) -> None:
    fake = FakeServiceNow()
    fake.roles, fake.roles_readable = roles, readable
    result = run(servicenow(fake), lambda c: c.check())
    assert result.problem is CheckProblem.OK  # a write check never fails the read check
    assert result.write is not None
    assert result.write.access is access
    assert words in result.write.message
    assert not fake.inserts and not fake.work_notes  # nothing was written to find out


def test_servicenow_write_check_with_oauth() -> None:
    fake = FakeServiceNow(auth_mode="oauth")
    check: WriteCheck = run(
        ServiceNowConnector.create(fake.settings(), transport=fake.transport(), sleep=SleepRecorder()),
        lambda c: c.write_check(),
    )
    assert check.access is WriteAccess.ALLOWED


def test_servicenow_403_on_a_write_is_a_clear_permission_error() -> None:
    fake = FakeServiceNow()
    fake.write_denied = True
    with pytest.raises(PermissionDeniedError) as caught:
        run(servicenow(fake), lambda c: c.create_incident(INCIDENT))
    text = str(caught.value)
    assert text.startswith("ServiceNow (fake): HTTP 403 on POST /api/now/table/incident")
    assert "ACL Exception Insert Failed" in text and "itil" in text
    assert fake.password not in text and fake.username + ":" not in text
    fake.add_ticket(fake.new_ticket(9, START))
    with pytest.raises(PermissionDeniedError) as caught:
        run(servicenow(fake), lambda c: c.add_work_note(note_for({}, "INC0000009")))
    assert "PATCH /api/now/table/incident/" in str(caught.value)
    assert fake.password not in str(caught.value)


def test_servicenow_work_note_is_not_sent_twice_when_its_answer_is_lost() -> None:
    fake = FakeServiceNow()
    fake.add_ticket(fake.new_ticket(10, START))
    fake.lose_next_write_answer = True
    with pytest.raises(ConnectionFailedError) as caught:
        run(servicenow(fake), lambda c: c.add_work_note(note_for({}, "INC0000010")))
    assert "not sent again" in str(caught.value)
    assert fake.work_notes == {"INC0000010": [EXPECTED_NOTE]}  # once: the caller decides about a retry


# --- Jira -------------------------------------------------------------------------------------------------


def jira(fake: FakeJira, **options: Any) -> JiraConnector:
    settings = fake.settings(**({"projects": "OPS"} | options))
    return JiraConnector.create(settings, transport=fake.transport(), sleep=SleepRecorder())


def test_correlation_label_is_a_valid_jira_label() -> None:
    assert correlation_label("runbook-desk:1:42") == "runbook-desk-1-42"
    assert correlation_label("a b:c/d") == "a-b-c-d"


@pytest.mark.parametrize("cloud", [True, False], ids=["cloud", "datacenter"])
def test_jira_creates_the_issue_once(cloud: bool) -> None:
    fake = FakeJira(cloud=cloud)
    fake.add_ticket(fake.new_ticket(3, START))
    first = run(jira(fake), lambda c: c.create_incident(INCIDENT))
    second = run(jira(fake), lambda c: c.create_incident(INCIDENT))
    assert first == CreatedTicket("OPS-4", "OPS-4", f"{fake.base_url}/browse/OPS-4", existed=False)
    assert second == CreatedTicket("OPS-4", "OPS-4", f"{fake.base_url}/browse/OPS-4", existed=True)
    assert len(fake.created) == 1
    fields = fake.created[0]
    assert fields["labels"] == ["runbook-desk-1-42"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Task"}
    if cloud:  # /rest/api/3 takes only Atlassian Document Format
        assert fields["description"]["type"] == "doc"
        assert fields["description"]["content"][0]["content"][0]["text"] == INCIDENT.description
    else:
        assert fields["description"] == INCIDENT.description


def test_jira_create_whose_answer_is_lost_is_found_not_repeated() -> None:
    fake = FakeJira()
    fake.lose_next_write_answer = True
    created = run(
        jira(fake, create_project="OPS", create_issue_type="Incident"), lambda c: c.create_incident(INCIDENT)
    )
    assert created.number == "OPS-1" and not created.existed
    assert len(fake.created) == 1
    assert fake.created[0]["issuetype"] == {"name": "Incident"}


def test_jira_create_needs_a_project() -> None:
    fake = FakeJira()
    with pytest.raises(ConfigurationError, match="project for new issues"):
        run(jira(fake, projects=""), lambda c: c.create_incident(INCIDENT))
    assert not fake.created


@pytest.mark.parametrize("cloud", [True, False], ids=["cloud", "datacenter"])
def test_jira_comment_lands_with_the_text(cloud: bool) -> None:
    fake = FakeJira(cloud=cloud)
    fake.add_ticket(fake.new_ticket(5, START))
    comment_id = run(jira(fake), lambda c: c.add_work_note(note_for({}, "OPS-5")))
    assert comment_id == "10101"
    [body] = fake.comments["OPS-5"]
    if cloud:
        lines = [p["content"][0] for p in body["content"]]
        assert [line["text"] for line in lines] == EXPECTED_NOTE.split("\n")
        assert lines[1]["marks"] == [
            {"type": "link", "attrs": {"href": "https://wiki.example.com/runbooks/vpn"}}
        ]
    else:
        assert body == EXPECTED_NOTE


@pytest.mark.parametrize(
    ("permissions", "options", "access", "words"),
    [
        ({"CREATE_ISSUES": True, "ADD_COMMENTS": True}, {}, WriteAccess.ALLOWED, "in OPS"),
        (
            {"CREATE_ISSUES": False, "ADD_COMMENTS": True},
            {},
            WriteAccess.DENIED,
            "lacks CREATE_ISSUES in OPS",
        ),
        ({"CREATE_ISSUES": True, "ADD_COMMENTS": False}, {}, WriteAccess.DENIED, "lacks ADD_COMMENTS"),
        (
            {"CREATE_ISSUES": True, "ADD_COMMENTS": True},
            {"projects": ""},
            WriteAccess.ALLOWED,
            "some project",
        ),
        (
            {"CREATE_ISSUES": True, "ADD_COMMENTS": True},
            {"create_project": "NOPE"},
            WriteAccess.UNKNOWN,
            "NOPE",
        ),
    ],
)
def test_jira_write_check_asks_mypermissions(
    permissions: dict[str, bool], options: dict[str, str], access: WriteAccess, words: str
) -> None:
    fake = FakeJira()
    fake.add_ticket(fake.new_ticket(1, START))
    fake.permissions = permissions
    result = run(jira(fake, **options), lambda c: c.check())
    assert result.problem is CheckProblem.OK
    assert result.write is not None and result.write.access is access
    assert words in result.write.message
    asked = [r for r in fake.requests if r.url.path.endswith("/mypermissions")]
    assert asked and asked[-1].url.params["permissions"] == "CREATE_ISSUES,ADD_COMMENTS"
    assert not fake.created and not fake.comments


@pytest.mark.parametrize("cloud", [True, False], ids=["cloud", "datacenter"])
def test_jira_403_on_a_write_is_a_clear_permission_error(cloud: bool) -> None:
    fake = FakeJira(cloud=cloud)
    fake.add_ticket(fake.new_ticket(5, START))
    fake.write_denied = True
    with pytest.raises(PermissionDeniedError) as caught:
        run(jira(fake), lambda c: c.create_incident(INCIDENT))
    api = "/rest/api/3" if cloud else "/rest/api/2"
    assert f"HTTP 403 on POST {api}/issue: You do not have permission to create issues" in str(caught.value)
    assert "'Create issues'" in str(caught.value)
    with pytest.raises(PermissionDeniedError) as caught:
        run(jira(fake), lambda c: c.add_work_note(note_for({}, "OPS-5")))
    assert f"POST {api}/issue/OPS-5/comment" in str(caught.value)
    for secret in (API_TOKEN, PAT):
        assert secret not in str(caught.value)


# --- ServiceDesk Plus -------------------------------------------------------------------------------------

EXPECTED_NOTE_HTML = (
    "Runbook linked by ann.analyst in Runbook Desk: VPN client reconnect loop (confidence 87%)<br>"
    '<a href="https://wiki.example.com/runbooks/vpn">https://wiki.example.com/runbooks/vpn</a>'
)


def sdp(fake: FakeServiceDeskPlus, **options: Any) -> ServiceDeskPlusConnector:
    return ServiceDeskPlusConnector.create(
        fake.settings(**options), transport=fake.transport(), sleep=SleepRecorder()
    )


@pytest.mark.parametrize("flavour", ["onprem", "cloud"])
def test_sdp_creates_a_request(flavour: str) -> None:
    fake = FakeServiceDeskPlus(flavour)
    created = run(sdp(fake, create_template="Default Request"), lambda c: c.create_incident(INCIDENT))
    assert created.number == created.external_id == "200001" and not created.existed
    if flavour == "cloud":
        assert created.url == f"{fake.url}/app/itdesk/ui/requests/200001/details"
    else:
        assert created.url == f"{fake.url}/WorkOrder.do?woMode=viewWO&woID=200001"
    assert fake.created == [
        {
            "subject": INCIDENT.title,
            "description": "lnx-app-01: CPU 97% for 10 minutes (Datadog monitor 1234)",
            "template": {"name": "Default Request"},
        }
    ]


def test_sdp_create_whose_answer_is_lost_is_not_sent_again() -> None:
    """SDP has no field to look a request up by, so a lost answer is an error: never a silent second one."""
    fake = FakeServiceDeskPlus()
    fake.lose_next_write_answer = True
    with pytest.raises(ConnectionFailedError, match="not sent again"):
        run(sdp(fake), lambda c: c.create_incident(INCIDENT))
    assert len(fake.created) == 1
    assert [r.method for r in fake.requests] == ["POST"]


@pytest.mark.parametrize("flavour", ["onprem", "cloud"])
def test_sdp_note_lands_hidden_from_the_requester(flavour: str) -> None:
    fake = FakeServiceDeskPlus(flavour)
    fake.add_ticket(fake.new_ticket(4, START))
    note_id = run(sdp(fake), lambda c: c.add_work_note(note_for({}, "100004")))
    assert note_id == "300001"
    assert fake.notes == {
        "100004": [
            {
                "description": EXPECTED_NOTE_HTML,
                "show_to_requester": False,
                "notify_technician": False,
                "mark_first_response": False,
                "add_to_linked_requests": False,
            }
        ]
    }


def test_sdp_write_check_is_unknown_and_writes_nothing() -> None:
    fake = FakeServiceDeskPlus()
    result = run(sdp(fake), lambda c: c.check())
    assert result.problem is CheckProblem.OK
    assert result.write is not None and result.write.access is WriteAccess.UNKNOWN
    assert "first write will tell" in result.write.message
    assert all(r.method == "GET" for r in fake.requests)


@pytest.mark.parametrize("flavour", ["onprem", "cloud"])
def test_sdp_403_on_a_write_is_a_clear_permission_error(flavour: str) -> None:
    fake = FakeServiceDeskPlus(flavour)
    fake.add_ticket(fake.new_ticket(4, START))
    fake.write_denied = True
    prefix = "/app/itdesk" if flavour == "cloud" else ""
    with pytest.raises(PermissionDeniedError) as caught:
        run(sdp(fake), lambda c: c.create_incident(INCIDENT))
    text = str(caught.value)
    assert f"HTTP 403 on POST {prefix}/api/v3/requests: Not allowed to perform this operation (4002)" in text
    with pytest.raises(PermissionDeniedError) as caught:
        run(sdp(fake), lambda c: c.add_work_note(note_for({}, "100004")))
    assert f"POST {prefix}/api/v3/requests/100004/notes" in str(caught.value)
    for secret in (API_KEY, CLIENT_SECRET, REFRESH_TOKEN):
        assert secret not in text and secret not in str(caught.value)
    assert not fake.created and not fake.notes


# --- Remedy -----------------------------------------------------------------------------------------------


def remedy(fake: FakeRemedy, **options: Any) -> RemedyConnector:
    return RemedyConnector.create(fake.settings(**options), transport=fake.transport(), sleep=SleepRecorder())


@pytest.mark.parametrize("values_on_create", [True, False], ids=["number-in-answer", "read-from-location"])
def test_remedy_creates_an_incident_and_reads_its_number(values_on_create: bool) -> None:
    fake = FakeRemedy()
    fake.values_on_create = values_on_create
    template = "https://midtier.example.com/arsys/forms/ar/HPD:Help Desk/?id={id}"
    created = run(remedy(fake, record_url_template=template), lambda c: c.create_incident(INCIDENT))
    assert created == CreatedTicket(
        "INC000000900001",
        "INC000000900001",
        "https://midtier.example.com/arsys/forms/ar/HPD:Help Desk/?id=INC000000900001",
        existed=False,
    )
    assert fake.created == [
        {
            "z1D_Action": "CREATE",
            "Description": INCIDENT.title,
            "Detailed_Decription": INCIDENT.description,
            "Impact": "1-Extensive/Widespread",
            "Urgency": "1-Critical",
            "Status": "New",
            "Reported Source": "Systems Management",
            "Service_Type": "Infrastructure Event",
        }
    ]
    reads = [r for r in fake.requests if r.method == "GET"]
    assert len(reads) == (0 if values_on_create else 1)


def test_remedy_create_whose_answer_is_lost_is_not_sent_again() -> None:
    fake = FakeRemedy()
    fake.lose_next_write_answer = True
    with pytest.raises(ConnectionFailedError, match="not sent again"):
        run(remedy(fake), lambda c: c.create_incident(INCIDENT))
    assert len(fake.created) == 1


def test_remedy_work_info_lands_on_the_incident() -> None:
    fake = FakeRemedy()
    fake.add_ticket(fake.new_ticket(12, START))
    entry_id = run(remedy(fake), lambda c: c.add_work_note(note_for({}, "INC000000000012")))
    assert entry_id == "WLG000000000001"
    assert fake.work_log == {
        "INC000000000012": [
            {
                "Incident Number": "INC000000000012",
                "Description": "Runbook: VPN client reconnect loop",
                "Detailed Description": EXPECTED_NOTE,
                "Work Log Type": "General Information",
                "View Access": "Internal",
                "Secure Work Log": "No",
            }
        ]
    }


def test_remedy_write_after_the_token_timed_out_logs_in_again_and_writes_once() -> None:
    fake = FakeRemedy()
    fake.add_ticket(fake.new_ticket(12, START))

    async def two_notes(connector: Connector) -> None:
        await connector.add_work_note(note_for({}, "INC000000000012"))
        fake.expire_tokens()
        await connector.add_work_note(note_for({}, "INC000000000012"))

    run(remedy(fake), two_notes)
    assert fake.logins == 2
    assert len(fake.work_log["INC000000000012"]) == 2


def test_remedy_write_check_is_unknown_and_writes_nothing() -> None:
    fake = FakeRemedy()
    fake.add_ticket(fake.new_ticket(1, START))
    result = run(remedy(fake), lambda c: c.check())
    assert result.problem is CheckProblem.OK
    assert result.write is not None and result.write.access is WriteAccess.UNKNOWN
    assert "first write will tell" in result.write.message
    assert not fake.created and not fake.work_log


def test_remedy_403_on_a_write_is_a_clear_permission_error() -> None:
    fake = FakeRemedy()
    fake.add_ticket(fake.new_ticket(12, START))
    fake.write_denied = True
    with pytest.raises(PermissionDeniedError) as caught:
        run(remedy(fake), lambda c: c.create_incident(INCIDENT))
    text = str(caught.value)
    assert "HTTP 403 on POST /api/arsys/v1/entry/HPD:IncidentInterface_Create: ARERR 333" in text
    assert "Incident User" in text
    with pytest.raises(PermissionDeniedError) as caught:
        run(remedy(fake), lambda c: c.add_work_note(note_for({}, "INC000000000012")))
    assert "POST /api/arsys/v1/entry/HPD:WorkLog" in str(caught.value)
    for message in (text, str(caught.value)):
        assert REMEDY_PASSWORD not in message and "jwt-token" not in message


# --- the client's retry policy for writes (connectors/http.py, idempotent=False) ---------------------------


def test_a_write_refused_with_429_is_sent_again_after_the_wait() -> None:
    """429 says the server did nothing: the one failure a write is retried on, after the asked wait."""
    fake = FakeServiceDeskPlus()
    fake.fail_next(InjectedFailure(status=429, headers={"Retry-After": "7"}, message="Too many requests"))
    sleep = SleepRecorder()
    connector = ServiceDeskPlusConnector.create(fake.settings(), transport=fake.transport(), sleep=sleep)
    created = run(connector, lambda c: c.create_incident(INCIDENT))
    assert created.external_id == "200001"
    assert len(fake.created) == 1
    assert len(sleep.waits) == 1 and 7 <= sleep.waits[0] <= 7.5


def test_a_write_failing_with_5xx_is_not_sent_again() -> None:
    """A 5xx may come after the write was carried out: raised at once, the caller decides."""
    fake = FakeServiceDeskPlus()
    fake.fail_next(InjectedFailure(status=503, message="Service Unavailable"))
    with pytest.raises(ServerError, match="HTTP 503 on POST /api/v3/requests"):
        run(sdp(fake), lambda c: c.create_incident(INCIDENT))
    assert [r.method for r in fake.requests] == ["POST"]
