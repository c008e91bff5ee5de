"""Which resolution notes become the candidate steps of a draft runbook, and in what words.

A draft (from a ticket under review or from a gap cluster) proposes the resolution notes of similar tickets as
steps. Many notes are not steps: they say who the ticket went to ("handed to devops platform team"), that it
went away ("Issue no longer occurring"), or that it was closed ("User confirmed issue resolved, closing").
And a note from a Windows server is a wrong step in a draft about a Linux server. Two general rules, no
product or demo names:

**Action or status.** A note is split into clauses (at sentence ends, semicolons, commas and spaced dashes)
and each clause is one of

* *action*: it holds an action verb (:data:`ACTION_VERBS`: restart, reinstall, extend, re-pair, ...) in the
  form a note uses for something done or to do: the base form ("Restart the agent", "Password reset") or the
  past ("restarted", "re-paired", "rebuilt"). The present ("launches fine") and the "-ing" form ("keeps
  restarting") describe a state, so they do not count;
* *status*: a hand-over ("passed to the CRM team", "reassigned to facilities"), or a statement about the
  ticket rather than the system ("no longer occurring", "blocked by design", "closing", "User confirmed"):
  a status phrase, or status words (:data:`STATUS_WORDS`) and no action verb;
* *other*: context such as "Reader fault" or "vda on ctx-vda-07 unregistered".

A note with no action clause is not a step. A note with one keeps its action and context clauses and loses its
status clauses, so "SAP GUI reinstalled via Software Center. Confirmed with user by phone." and "SAP GUI
reinstalled via Software Center." become the same step.

**Platform.** :func:`platforms_in` recognises Windows, Linux and macOS from markers any admin knows (drive
letters such as ``C:``, ``.dmp``/``.exe`` files, PowerShell cmdlets, ``0x8007....`` error codes; Unix paths
such as ``/var``, ``systemctl``, ``lvextend``, "No space left on device"; ``.dmg``, Homebrew, ...).
:func:`dominant_platform` names the platform most of a set of tickets is about, when one clearly is; a step
that names only other platforms is then left out (a Linux disk-full draft loses "MEMORY.DMP removed" and
"Extended C: by 40GB"). Steps that name no platform stay.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable

from core.matching.text import lexical_terms, normalise_whitespace, strip_servicenow_journal
from core.workflow.drafts import CandidateStep

__all__ = [
    "ACTION_VERBS",
    "STATUS_WORDS",
    "ClauseKind",
    "Platform",
    "article_candidate_steps",
    "article_steps",
    "candidate_steps",
    "classify_clause",
    "clean_note",
    "dominant_platform",
    "fits_platform",
    "platforms_in",
    "says_only_closed",
    "step_overlap",
    "step_terms",
    "step_text",
]


def _words(text: str) -> frozenset[str]:
    """A word list written as text, so that long lists stay readable."""
    return frozenset(text.split())


# --- Cleaning ----------------------------------------------------------------------------------------------

# Resolution notes made only of these words say that a ticket was closed, not how: no step to propose.
_CLOSING_WORDS = _words(
    "resolved user users confirmed confirm fixed closed close done issue working works work now ticket "
    "duplicate further action required solved sorted ok okay no longer"
)


def clean_note(note: str) -> str:
    """A resolution note as a candidate step: journal headers stripped, whitespace normalised."""
    return normalise_whitespace(strip_servicenow_journal(note))


def says_only_closed(note: str) -> bool:
    """True for notes like "Closed." or "Resolved, closing" that hold no step worth proposing."""
    return all(term in _CLOSING_WORDS for term in lexical_terms(note))


# --- Action or status --------------------------------------------------------------------------------------

# Verbs that change or inspect a system, in their base form. Prefixed forms (re-, un-, de-, dis-, pre-) of
# these count too ("reinstall", "re-pair", "unblock"), so they need no entry of their own. Verbs about the
# ticket itself (close, resolve, reopen, confirm, assign) are deliberately absent: they are status.
ACTION_VERBS = _words(
    """
    activate add adjust advise allocate allow apply approve archive attach authorise authorize block boot
    bounce bump change check clean clear clone collect compact configure connect convert copy correct create
    cycle deallocate defrag delete deploy detach disable downgrade download drain edit empty enable encrypt
    enrol enroll escalate expand export extend fix flush force format free generate grant grow image import
    increase inspect install isolate join kill launch license licence lock log map migrate modify mount move
    pair patch ping plug point power print provision purge push put raise rebuild reboot recreate reduce
    refresh register reinstall reload remap remove rename renew repair replace request reseat reset resize
    restart restore resync revert revoke roll rotate run scale schedule seat send set shrink shut sign spin
    start stop swap switch sync terminate test toggle trigger truncate turn uninstall unlock update upgrade
    upload use vacuum verify whitelist wipe
    """
)
_IRREGULAR_PAST = {
    "built": "build",
    "rebuilt": "rebuild",
    "ran": "run",
    "reran": "run",
    "sent": "send",
    "resent": "send",
    "spun": "spin",
    "shut": "shut",
    "set": "set",
    "reset": "reset",
    "put": "put",
    "gave": "give",
    "showed": "show",
    "shown": "show",
}
# Verbs whose base form is more often a noun ("Issue no longer occurring", "Order number") or a description:
# they count only in the past ("issued a new one", "explained", "walked the user through").
PAST_ONLY_VERBS = _words("explain give guide issue order provide show supply walk")
_PREFIXES = ("re", "un", "de", "dis", "pre")

# Words that state the ticket's state or outcome rather than a change to the system.
STATUS_WORDS = _words(
    """
    awaiting cancelled canceled close closed closing confirmed confirm design duplicate expected fine
    monitoring normal occur occurring occurs ok okay pending recur recurring reopen re-open reopened reply
    replied reproduce reproduced reproducible resolved resolve respond responded response self-resolved solved
    sorted stable withdrawn working works
    """
)
# Phrases that make a clause a status even with a verb in it ("blocked by design", "working again").
_STATUS_PHRASE = re.compile(
    r"\b(?:by design|no longer|no response|no reply|not reproducible|could not reproduce|"
    r"cannot reproduce|unable to reproduce|as expected|working (?:now|fine|again|as expected)|duplicate of"
    r"|no further action)\b",
    re.IGNORECASE,
)
# A hand-over: a routing verb followed by "to" ("passed to the CRM team", "handed over to devops",
# "reassigned to facilities") or a problem raised with another team.
_ROUTING = re.compile(
    r"\b(?:(?:handed|passed|re-?assigned|assigned|escalated|transferred|forwarded|routed|referred|sent|"
    r"bounced)(?:\s+(?:it|back|over|on|across))*\s+to|raised\s+with|logged\s+with)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
# A command line is an action whatever its verb: a command with an option ("journalctl --vacuum-size=500M",
# "lvextend -r") or a PowerShell cmdlet ("Reset-AppxPackage").
_COMMAND = re.compile(r"(?:^|\s)--?[a-z][\w-]*|\b[A-Z][a-z]+-[A-Z][A-Za-z]+\b")
# Clause boundaries, kept so that what remains reads as written: sentence ends, semicolons, commas, spaced
# dashes. A dot inside "7.70" or "ctx-vda-07.corp" is not followed by a space, so it is not a boundary.
_CLAUSE_SEPARATOR = re.compile(r"((?<=[.!?])\s+|\s*;\s*|,\s+|\s+[-–—]+\s+)")


class ClauseKind(enum.Enum):
    ACTION = "action"
    STATUS = "status"
    OTHER = "other"


def _bases(word: str) -> Iterable[tuple[str, bool]]:
    """``(base, is_past)`` for each verb a word may be the imperative or the past of (no -s or -ing forms:
    those describe a state)."""
    yield word, False
    if word in _IRREGULAR_PAST:
        yield _IRREGULAR_PAST[word], True
    if word.endswith("ied"):
        yield word[:-3] + "y", True
    if word.endswith("ed") and len(word) > 3:
        yield word[:-2], True  # "restarted"
        yield word[:-1], True  # "removed"
        if word[-3] == word[-4]:
            yield word[:-3], True  # "mapped"


def _is_action_word(token: str) -> bool:
    word = token.casefold().strip("'’-")
    forms = {word, word.replace("-", "")}
    if "-" in word:  # "power-cycled", "re-paired"
        forms.add(word.rsplit("-", 1)[1])
    for form in forms:
        for base, is_past in _bases(form):
            verbs = ACTION_VERBS | PAST_ONLY_VERBS if is_past else ACTION_VERBS
            if base in verbs:
                return True
            for prefix in _PREFIXES:
                if base.startswith(prefix) and base[len(prefix) :] in verbs:
                    return True
    return False


def classify_clause(clause: str) -> ClauseKind:
    """Action, status or other: see the module docstring."""
    if _ROUTING.search(clause) or _STATUS_PHRASE.search(clause):
        return ClauseKind.STATUS
    if _COMMAND.search(clause) or any(_is_action_word(token) for token in _WORD.findall(clause)):
        return ClauseKind.ACTION
    if says_only_closed(clause) or any(term in STATUS_WORDS for term in lexical_terms(clause)):
        return ClauseKind.STATUS
    return ClauseKind.OTHER


def step_text(note: str) -> str | None:
    """The note as a candidate step: cleaned, its status clauses dropped; None when no clause is an action."""
    text = clean_note(note)
    if not text or says_only_closed(text):
        return None
    parts = _CLAUSE_SEPARATOR.split(text)
    clauses = parts[0::2]
    separators = [*parts[1::2], ""]
    kinds = [classify_clause(clause) if clause.strip() else ClauseKind.OTHER for clause in clauses]
    if ClauseKind.ACTION not in kinds:
        return None
    kept = [
        (clause, separator)
        for clause, separator, kind in zip(clauses, separators, kinds, strict=True)
        if kind is not ClauseKind.STATUS and clause.strip()
    ]
    joined = "".join(clause + separator for clause, separator in kept[:-1]) + kept[-1][0]
    joined = joined.strip().rstrip(",;-–— ")
    if text[-1] in ".!" and joined[-1] not in ".!?)":
        joined += "."
    return joined


# --- Platform ----------------------------------------------------------------------------------------------


class Platform(enum.StrEnum):
    WINDOWS = "Windows"
    LINUX = "Linux"
    MACOS = "macOS"


_PLATFORM_MARKERS: dict[Platform, re.Pattern[str]] = {
    Platform.WINDOWS: re.compile(
        r"\bwindows\b|(?<![\w/])[c-h]:(?:\\|(?=[\s,.;)]|$))|\.(?:exe|msi|dmp|bat|cmd|ps1|dll|reg)\b"
        r"|\b(?:regedit|hklm|hkcu|powershell|gpupdate|gpo|group policy|event viewer|eventvwr|services\.msc"
        r"|diskmgmt|chkdsk|sfc|dism|bitlocker|bsod|blue screen|ntfs|wsus|iis)\b"
        r"|%(?:appdata|temp|userprofile)%"
        r"|\b(?:get|set|new|remove|resize|restart|stop|start|test|invoke|enable|disable|install|clear|add)"
        r"-(?!up\b)[a-z]{4,}\b|\b0x8007[0-9a-f]{4}\b|not enough space on the disk",
        re.IGNORECASE,
    ),
    Platform.LINUX: re.compile(
        r"\b(?:linux|rhel|centos|ubuntu|debian|fedora|suse|sles|alpine|rocky linux|almalinux)\b"
        r"|(?<![\w.:/])/(?:var|etc|opt|srv|home|usr|tmp|proc|dev|mnt|boot|lib)(?:/|\b)"
        r"|\b(?:sudo|systemctl|journalctl|systemd|logrotate|lvextend|lvresize|pvresize|vgextend|xfs_growfs"
        r"|resize2fs|ext4|xfs|chmod|chown|crontab|apt-get|yum|dnf|lsof|selinux|sshd|coredump|inodes?)\b"
        r"|\bdf -h\b|\bdu -|no space left on device",
        re.IGNORECASE,
    ),
    Platform.MACOS: re.compile(
        r"\b(?:macos|mac os|os x|macbook|imac|homebrew|brew|jamf|launchd|keychain access|finder)\b"
        r"|\.dmg\b|~/library\b|\bfor mac\b",
        re.IGNORECASE,
    ),
}
# A set of tickets is about platform P when at least this share of them name P, at least two do (or the one
# ticket there is), and P is named at least this many times as often as any other platform: a mixed set has
# no platform.
PLATFORM_SHARE = 0.3
PLATFORM_DOMINANCE = 3


def platforms_in(text: str) -> frozenset[Platform]:
    """Every platform the text names (often none)."""
    return frozenset(platform for platform, marker in _PLATFORM_MARKERS.items() if marker.search(text))


def dominant_platform(texts: Iterable[str]) -> Platform | None:
    """The platform most of these ticket texts are about (see :data:`PLATFORM_SHARE`), or None."""
    counts: Counter[Platform] = Counter()
    total = 0
    for text in texts:
        total += 1
        counts.update(platforms_in(text))
    if not counts:
        return None
    (best, best_count), *rest = counts.most_common()
    runner_up = rest[0][1] if rest else 0
    clear = best_count >= PLATFORM_SHARE * total and best_count >= PLATFORM_DOMINANCE * runner_up
    # Two tickets at least, unless there is only one (a review draft asks about its own ticket).
    return best if best_count >= min(2, total) and clear else None


def fits_platform(text: str, platform: Platform | None) -> bool:
    """False for a step that names only platforms other than ``platform``."""
    if platform is None:
        return True
    named = platforms_in(text)
    return not named or platform in named


# --- Steps -------------------------------------------------------------------------------------------------

NEAR_DUPLICATE = 0.8  # steps sharing this much of their terms say the same thing ("... /data now 58%")


def step_terms(text: str) -> frozenset[str]:
    """A step's terms for comparing steps: plurals folded, anything with a digit (sizes, versions, change
    and ticket numbers) left out, so "64GB of core dumps removed, /data at 58%" and "... /u01 at 61%" compare
    equal."""
    out = set()
    for term in lexical_terms(text):
        if any(c.isdigit() for c in term):
            continue
        out.add(term[:-1] if len(term) > 3 and term.endswith("s") and not term.endswith("ss") else term)
    return frozenset(out)


def step_overlap(first: frozenset[str], second: frozenset[str]) -> float:
    """Jaccard overlap of two steps' terms."""
    union = first | second
    return len(first & second) / len(union) if union else 1.0


def candidate_steps(
    notes: Iterable[tuple[str, str | None]], *, platform: Platform | None, limit: int
) -> tuple[CandidateStep, ...]:
    """Steps from ``(note, source ticket)`` pairs in order: actions only, status clauses dropped, repeated
    steps (:data:`NEAR_DUPLICATE`) once, citing the first ticket, steps for another platform left out, at
    most ``limit``."""
    steps: list[CandidateStep] = []
    seen: list[frozenset[str]] = []
    for note, source in notes:
        text = step_text(note)
        if text is None or not fits_platform(text, platform):
            continue
        terms = step_terms(text)
        if any(step_overlap(terms, other) >= NEAR_DUPLICATE for other in seen):
            continue
        seen.append(terms)
        steps.append(CandidateStep(text=text, source_ticket=source))
        if len(steps) >= limit:
            break
    return tuple(steps)


# --- Steps of knowledge articles (issue 14) -----------------------------------------------------------------

# A heading that announces the procedure; the list items under it are the article's steps.
_STEPS_HEADING = re.compile(
    r"^#{1,6}\s+.*\b(?:steps?|resolution|resolve|solution|procedure|fix|workaround|instructions|how to)\b",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^#{1,6}\s")
_LIST_ITEM = re.compile(r"^( ?)(\d{1,3}[.)]|[-*+])\s+(.*\S)")
_NUMBERED = re.compile(r"^\d")
_FENCE = re.compile(r"^\s*(```|~~~)")
ARTICLE_STEP_CHARS = 500  # a step longer than this is cut (an article's list item can be a whole page)


def article_steps(markdown: str) -> list[str]:
    """The steps of an article's Markdown body, in order.

    The top-level list items (numbered or bulleted) under a heading that announces a procedure ("Steps",
    "Resolution", "Solution", "Workaround", "How to ..."), up to the next heading; when the article has no
    such heading, its top-level *numbered* items anywhere. A step that ends with a colon takes the first line
    of the code block that follows ("Restart the agent:" + ``systemctl restart jenkins-agent``).
    """
    headed: list[str] = []
    numbered: list[str] = []
    in_steps = False
    in_fence = False
    last: list[str] | None = None  # the list the previous item went to, for a following code line
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            if last and last[-1].endswith(":") and line.strip():
                last[-1] = f"{last[-1]} `{line.strip()}`"
            continue
        if _HEADING.match(line):
            in_steps = bool(_STEPS_HEADING.match(line))
            last = None
            continue
        item = _LIST_ITEM.match(line)
        if item is None:
            continue
        text = normalise_whitespace(item.group(3))[:ARTICLE_STEP_CHARS]
        last = None
        if in_steps:
            headed.append(text)
            last = headed
        if _NUMBERED.match(item.group(2)):
            numbered.append(text)
            last = last or numbered
    return headed or numbered


def article_candidate_steps(
    articles: Iterable[tuple[str, str | None, str | None]],
    *,
    platform: Platform | None,
    limit: int,
    known: Iterable[CandidateStep] = (),
) -> tuple[CandidateStep, ...]:
    """Candidate steps from ``(markdown body, number, url)`` of the best matching articles, best first, each
    citing its article; steps for another platform, and steps that repeat one already ``known`` (the notes'
    steps) or an earlier article's (:data:`NEAR_DUPLICATE`), left out; at most ``limit``.

    Unlike resolution notes, an article's list items are written as instructions ("Open Outlook in safe
    mode"), so they are not sifted for action verbs: the article's author already chose them as steps.
    """
    seen = [step_terms(step.text) for step in known]
    steps: list[CandidateStep] = []
    for body, number, url in articles:
        for text in article_steps(body):
            if not fits_platform(text, platform):
                continue
            terms = step_terms(text)
            if not terms or any(step_overlap(terms, other) >= NEAR_DUPLICATE for other in seen):
                continue
            seen.append(terms)
            steps.append(CandidateStep(text=text, source_article=number, source_url=url))
            if len(steps) >= limit:
                return tuple(steps)
    return tuple(steps)
