"""Alert text for matching: the words of an alert that say what is wrong, without its machine syntax.

Alert text is half machine text: rule expressions (PromQL, Zabbix trigger expressions, SWQL conditions,
Datadog monitor queries), template variables left unexpanded (``{{ $labels.namespace }}``, ``{HOST.NAME}``,
``${var}``), thresholds and numbers. Measured on real alert rules matched to their runbooks, leaving the
query line in the embedded text cost the dense side about 6 points of top-1 accuracy (issue 13): the model
reads ``>`` ``(`` ``[5m]`` ``0.9`` as words and the query drowns the sentence.

So an alert incident's ticket (:mod:`core.monitoring.incidents`) is prepared twice:

- :func:`prepare_alert_text`, the **embedded** text: the human title and message with template syntax,
  numbers (with their units) and operators taken out, and of each expression only the identifiers that carry
  meaning: metric names split into words (``system.cpu.load`` -> "system cpu load",
  ``node_filesystem_avail_bytes`` -> "node filesystem avail bytes", ``CPULoad`` -> "cpu load"), label and
  tag values (``mountpoint="/var"`` -> "var", ``service:postgres`` -> "postgres") and host names; query
  language words (``rate``, ``sum by``, ``last``, ``SELECT``, ``WHERE``) and time windows go.
- :func:`alert_lexical_text`, the **lexical** text: the same plus each raw expression (template
  placeholders out), so BM25 over the runbooks still finds ``node_filesystem_avail_bytes`` or
  ``vfs.fs.size`` when a runbook quotes the metric (the FTS terms keep a dotted name whole and add its
  parts, :mod:`core.matching.lexical`).

The analyst always sees the raw text (the ticket's description). This module imports only the standard
library: :mod:`core.matching.text` calls it for tickets of kind ``alert``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "alert_lexical_text",
    "expression_words",
    "prepare_alert_text",
    "strip_machine_text",
]

# The labelled lines of an incident ticket's description (core.monitoring.incidents.alert_block).
MESSAGE_LABEL = "Message:"
EXPRESSION_LABEL = "Expression:"
TAGS_LABEL = "Tags:"

# Template placeholders: Go/Prometheus/Grafana/Datadog {{ ... }}, Zabbix {HOST.NAME} / {ITEM.LASTVALUE1} /
# {$MACRO}, shell-style and SolarWinds ${...}, and a bare $labels.x / $value.
_TEMPLATE = re.compile(
    r"""(?x)
    \{\{.*?\}\}                      # {{ $labels.namespace }}, {{#is_alert}}, {{value}}
    | \$\{[^}]*\}                    # ${var}, ${N=SwisEntity;M=Caption}
    | \{\$?[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*\}   # {HOST.NAME}, {ITEM.LASTVALUE1}, {$DISK.PUSED.MAX}
    | \$(?:labels|value|externalLabels)\b(?:\.\w+)?   # $labels.instance, $value
    """
)
# A number standing alone, with an optional unit: 95, 0.9, 95%, 5.2GB, 300ms, 10m. Not part of a word
# (db01, avg1, ORA-12541, http_5xx stay) and not an IP address or version (10.20.30.40, 2.14.1).
_NUMBER = re.compile(
    r"""(?xi)
    (?<![\w.\-/])[-+]?\d+(?:[.,]\d+)?
    (?:\s?(?:%|percent\b|[kmgtp]i?b\b|[kmgtp]?bps\b|ms\b|us\b|ns\b|s\b|sec\b|secs\b|seconds?\b|m\b|mins?\b
        |minutes?\b|h\b|hours?\b|d\b|days?\b|w\b))?
    (?![\w.\-]*\w)
    """
)
_OPERATORS = re.compile(r"(?:[<>!=~]=?|==|&&|\|\||=~|!~)+")
_SPACES = re.compile(r"[ \t]+")
# Words of query languages and alert syntax that say nothing about the problem.
_QUERY_WORDS_TEXT = """
    abs absent absent_over_time and avg avg_over_time bool bottomk by ceil changes clamp clamp_max clamp_min
    count count_over_time count_values delta deriv exp floor group group_left group_right histogram_quantile
    holt_winters idelta ignoring increase irate label_join label_replace last max max_over_time min
    min_over_time offset on or predict_linear quantile quantile_over_time rate resets round scalar sort
    sort_desc stddev stddev_over_time stdvar sum sum_over_time time timestamp topk unless vector without
    nodata diff prev change find trendavg trendmax trendmin trendcount fuzzytime forecast timeleft
    percentile baselinewma count_nonzero rollup as_count as_rate week_before day_before hour_before
    select from where top order asc desc is not null like in join inner left outer distinct
    all avg1 avg5 avg15 percpu instance le query orion
"""
_QUERY_WORDS = frozenset(_QUERY_WORDS_TEXT.split())
# Zabbix item-key modes that abbreviate a word.
_ABBREVIATIONS = {"pused": "used", "pfree": "free", "pavailable": "available", "pavail": "available"}
_DURATION = re.compile(
    r"(?i)\[\s*\d+[smhdwy]\s*(?::\s*\d*[smhdwy]?)?\s*\]|\blast_\d+[smhdw]\b|\b\d+[smhdwy]\b"
)
_IDENTIFIER_RUN = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
_SEVERITY_PREFIX = re.compile(r"^\s*\[(?:critical|high|warning|info)\]\s*", re.IGNORECASE)
_MORE_ALERTS = re.compile(r"\s*\(\+\d+ alerts?\)\s*$")
_BLOCK_HEADER_WHERE = re.compile(r"\s*\([^()]*\)\s*$")


def strip_machine_text(text: str) -> str:
    """Human alert text without template placeholders, standalone numbers (and units) and operators."""
    text = _TEMPLATE.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    text = _OPERATORS.sub(" ", text)
    text = re.sub(r"\(\s*\)|\[\s*\]|\{\s*\}", " ", text)  # brackets left empty
    text = re.sub(r"([(\[{])\s+", r"\1", text)
    text = re.sub(r"\s+([,.;:!?)\]}])", r"\1", text)
    text = re.sub(r"([,;:])(?=[,;:.]|\s*$)", "", text)
    return _SPACES.sub(" ", text).strip()


def expression_words(expression: str) -> list[str]:
    """The meaningful identifiers of a rule expression as lower-case words, in order, each once.

    >>> expression_words("last(/db01/system.cpu.load[all,avg1])>5")
    ['db01', 'system', 'cpu', 'load']
    """
    text = _TEMPLATE.sub(" ", expression)
    text = _DURATION.sub(" ", text)
    words: list[str] = []
    for run in _IDENTIFIER_RUN.findall(text.replace("_", " ")):
        words.extend(_split_camel(run))
    # Function and keyword names are identifiers of the query language, not of the problem. A name like
    # ``avg_over_time`` is split by now, so the words of the multi-word ones are checked as a phrase too.
    return _unique(
        _ABBREVIATIONS.get(word, word)
        for word in _drop_query_words(words)
        if len(word) > 1 and not word.isdigit()
    )


def _split_camel(run: str) -> list[str]:
    """``CPULoad`` -> cpu, load; ``PercentMemoryUsed`` -> percent, memory, used; ``db01`` stays whole."""
    if run.islower() or run.isupper():
        return [run.lower()]
    return [part.lower() for part in _CAMEL.findall(run)]


def _drop_query_words(words: list[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(words):
        for size in (3, 2):  # avg_over_time, group_left, histogram_quantile, label_replace ...
            phrase = "_".join(words[index : index + size])
            if size <= len(words) - index and phrase in _QUERY_WORDS:
                index += size
                break
        else:
            if words[index] not in _QUERY_WORDS:
                kept.append(words[index])
            index += 1
    return kept


def _unique(words: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(words))


def _tag_words(tags: str) -> str:
    """``service:postgres, env:prod, team:dba`` -> "postgres prod dba": the values say what it is about."""
    values = []
    for tag in tags.split(","):
        key, sep, value = tag.strip().partition(":")
        values.append(value if sep else key)
    return " ".join(_unique(strip_machine_text(v).strip() for v in values if v.strip()))


def _split_description(description: str) -> tuple[list[str], list[str]]:
    """(human lines, raw expressions) of an incident description; a line without a label is human text."""
    human: list[str] = []
    expressions: list[str] = []
    for raw_line in description.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith(EXPRESSION_LABEL):
            expressions.append(line[len(EXPRESSION_LABEL) :].strip())
        elif line.startswith(TAGS_LABEL):
            human.append(_tag_words(line[len(TAGS_LABEL) :]))
        elif line.startswith(MESSAGE_LABEL):
            human.append(strip_machine_text(line[len(MESSAGE_LABEL) :]))
        else:  # the block header "[critical] Disk full on /var (zabbix, host db01)"
            header = _SEVERITY_PREFIX.sub("", line)
            human.append(strip_machine_text(_BLOCK_HEADER_WHERE.sub("", header)))
    return human, expressions


def prepare_alert_text(title: str, description: str | None, service: str | None, host: str | None) -> str:
    """The embedded text of an alert incident (module docstring): title, service, host, each alert's words."""
    clean_title = strip_machine_text(_MORE_ALERTS.sub("", _SEVERITY_PREFIX.sub("", title)))
    lines = [clean_title] if clean_title else []
    if service and service.strip():
        lines.append(f"Service: {service.strip()}")
    if host and host.strip():
        lines.append(f"Host: {host.strip()}")
    human, expressions = _split_description(description or "")
    for expression in expressions:
        words = expression_words(expression)
        if words:
            human.append(" ".join(words))
    seen = {line.casefold() for line in lines}
    seen.add(_headless(clean_title).casefold())
    for line in human:
        if line and line.casefold() not in seen:
            seen.add(line.casefold())
            lines.append(line)
    return "\n".join(lines)


def _headless(title: str) -> str:
    """The incident title without its "db01: " lead: the worst alert's own title."""
    _, sep, rest = title.partition(": ")
    return rest if sep else title


def alert_lexical_text(title: str, description: str | None, service: str | None, host: str | None) -> str:
    """The lexical (BM25) text of an alert incident: the embedded text plus the raw expressions."""
    prepared = prepare_alert_text(title, description, service, host)
    _, expressions = _split_description(description or "")
    raw = [_SPACES.sub(" ", _TEMPLATE.sub(" ", e)).strip() for e in expressions]
    return "\n".join([prepared, *(e for e in raw if e)])
