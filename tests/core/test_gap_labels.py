"""Gap labels name the product and the distinctive phrases, on tickets written for these tests.

No model and no store: :func:`label_clusters` works on the words. The product here ("Workday") is in no
list anywhere; it is found because the tickets capitalise it mid-sentence, and it leads both of its
clusters' labels although each cluster has words more distinctive than it.
"""

from __future__ import annotations

import re

from core.analytics.gap_labels import LabelDocument, Vocabulary, label_clusters, stem

TIMESHEETS = [
    "Cannot submit timesheet\nThe submit button in Workday is greyed out for my timesheet this week.",
    "timesheet submit fails\nWhen I submit my timesheet in Workday it says 'Approval chain missing'.",
    "workday timesheet won't submit",  # all lower case: says nothing about capitals
    "Timesheet stuck in draft\nMy timesheet in Workday stays in draft after I press submit.",
    "Timesheet submit error\nSubmitting the timesheet in Workday gives 'Approval chain missing' again.",
    "Unable to submit timesheet\nSince Monday my timesheet will not submit in Workday.",
]
EXPENSES = [
    "Expense receipt upload fails\nUploading a receipt to my expense report in Workday fails at 99%.",
    "receipt upload error\nThe expense receipt upload in Workday says the file type is not allowed.",
    "Expense report receipt won't attach\nIn Workday the receipt upload for expense reports spins forever.",
    "Receipt upload broken\nI cannot attach my hotel receipt to the expense report in Workday.",
    "Expense receipts not uploading\nReceipt upload for my expense report in Workday times out.",
]
ROOMS = [
    "Meeting room display blank\nThe room display outside meeting room 4 is blank.",
    "room display frozen\nThe display next to the meeting room door shows yesterday's bookings.",
    "Meeting rooms displays offline\nBoth meeting rooms on floor 2 have their display offline.",
    "Room booking display not updating\nThe meeting room display shows the wrong bookings.",
    "meeting room panel dead\nthe display at meeting room 7 is dead.",
]
BACKGROUND = [
    "VPN drops every hour\nThe VPN client disconnects every hour from home.",
    "Printer offline\nThe printer on floor 3 shows offline and jobs are stuck.",
    "Outlook keeps asking for password\nOutlook prompts for my password all day.",
    "Laptop slow\nMy laptop is very slow since the update.",
    "New starter account\nPlease create an account for our new starter on Monday.",
    "Password reset\nI forgot my password and I am locked out.",
    "Teams camera not working\nThe camera in Teams shows a black image.",
    "Shared drive missing\nThe S drive is not mapped any more.",
    "Wi-Fi keeps dropping\nThe office Wi-Fi drops several times a day.",
    "Monitor flickers\nMy second monitor flickers when docked.",
    "Mailbox full\nOutlook says my mailbox is full and I cannot send.",
    "Phone not syncing mail\nMy phone stopped syncing mail from Outlook.",
    "Software install request\nPlease install the PDF editor on my laptop.",
    "Keyboard not working\nThe wireless keyboard stopped working.",
    "Access to finance folder\nI need access to the finance folder on the S drive.",
    "Teams status wrong\nTeams shows me as away while I am working.",
    "Expense policy question\nWhich expense limit applies for hotels abroad?",  # not only in Workday
    "Timesheet reminder email\nThe weekly timesheet reminder email arrives twice.",
]


def _label(groups: list[list[str]], background: list[str]) -> list[str]:
    vocabulary = Vocabulary()
    ticket_id = 0
    docs: list[list[tuple[int, LabelDocument]]] = []
    for group in groups:
        docs.append([])
        for text in group:
            ticket_id += 1
            docs[-1].append((ticket_id, LabelDocument.read(text, vocabulary)))
    sample = [pair for group in docs for pair in group]  # the background is the whole range: clusters too
    for text in background:
        ticket_id += 1
        sample.append((ticket_id, LabelDocument.read(text, vocabulary)))
    return [label.label for label in label_clusters(docs, sample, vocabulary)]


def test_two_clusters_of_one_product_both_name_it() -> None:
    timesheets, expenses, rooms = _label([TIMESHEETS, EXPENSES, ROOMS], BACKGROUND)
    assert timesheets.startswith("Workday: ")
    assert expenses.startswith("Workday: ")
    assert "timesheet" in timesheets and "receipt upload" in expenses  # a bigram, not two loose words
    assert "Workday" not in rooms and rooms.startswith("meeting room display")


def test_no_label_repeats_a_word() -> None:
    for label in _label([TIMESHEETS, EXPENSES, ROOMS], BACKGROUND):
        words = [stem(word) for word in re.findall(r"[\w.-]+", label.casefold())]
        assert len(words) == len(set(words)), label  # "room" and "rooms" once


def test_a_word_is_a_name_only_when_written_capitalised_mid_sentence() -> None:
    vocabulary = Vocabulary()
    for text in (
        "The portal in Workday is down.",
        "Please check Workday again.",
        "Workday is slow.",  # sentence start: no evidence
        "WORKDAY DOWN AGAIN",  # shouting: no evidence
        "cannot open workday",  # no capitals anywhere: no evidence
        "the Outlook add-in for workday fails",  # evidence: this writer capitalises names, not this one
        "The Teams tab for workday is empty.",
        "Printer offline again today.",
        "Why is the printer offline?",
        "Meeting on Thursday: the printer is offline. See you on Thursday.",
    ):
        LabelDocument.read(text, vocabulary)
    assert (vocabulary.capitalised["workday"], vocabulary.lower["workday"]) == (2, 2)
    assert vocabulary.is_entity("workday") is False  # half the time is not a name's habit
    assert vocabulary.is_entity("outlook") is False  # used once
    assert vocabulary.is_entity("printer") is False
    assert vocabulary.is_entity("thursday") is False  # a calendar word is not what a gap is about
    for text in ("Another ticket says Workday rejected it.", "Login to Workday fails."):
        LabelDocument.read(text, vocabulary)
    assert vocabulary.is_entity("workday") is True  # 4 of 6
    assert vocabulary.display("workday") == "Workday"


def test_plurals_are_one_term() -> None:
    assert {stem("room"), stem("rooms")} == {"room"}
    assert {stem("policy"), stem("policies")} == {"policy"}
    assert {stem("crash"), stem("crashes")} == {"crash"}
    assert stem("access") == "access" and stem("status") == "status"
