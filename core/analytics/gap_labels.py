"""Names for gap clusters that an analyst recognises: the product or entity first, then distinctive phrases.

Three single words ("logging / session / case") hide what two clusters share ("Salesforce") and repeat
themselves ("zoom / room / rooms"). A label here is built from

* **terms and bigrams** of the tickets' titles and descriptions (the matcher's lexical terms: stop words,
  greetings and one-letter words dropped; plurals folded by :func:`stem`, so "room" and "rooms" are one term).
  A bigram is two terms written next to each other with nothing but a space between them;
* **how distinctive each is against the rest of the corpus**: with ``p_in`` the share of the cluster's tickets
  that contain it and ``p_out`` the (smoothed) share of a background sample of *all* the range's tickets
  outside this cluster, the score is ``p_in * log(p_in / p_out)`` (the term's contribution to the
  Kullback-Leibler divergence of the cluster from the corpus; 0 when it is no more common inside). A word
  every ticket uses scores low, so does a rare word few of the cluster's tickets use. The background holds
  covered tickets too, so a product that many runbooks already cover ("Outlook") is not what makes an
  uncovered cluster special;
* **entities**: a term is a name when, across the tickets read, it is written capitalised in the middle of a
  sentence (not after a full stop, a colon or a quote) in at least :data:`ENTITY_CAPITALISED` of the cases and
  at least twice, counting only lines that mix upper and lower case ("salesforce keeps logging me out" or
  "LOCKED OUT" say nothing about case). Brand and product names ("Salesforce", "Citrix", "SAP"), sites and
  people pass; ordinary words do not.

The label leads with the most distinctive entity that at least :data:`ENTITY_SHARE` of the cluster's tickets
name (two entities written together, "SAP GUI", lead together), then adds the best-scoring phrases that
share no term with what is already there, preferring a bigram over its single term when the term mostly
appears in it (and a bigram grows by a word that most of its uses have next to it, "meeting room display"):
"Salesforce: session expired / case note".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.matching.text import ENGLISH_STOP_WORDS

__all__ = [
    "ENTITY_CAPITALISED",
    "ENTITY_SHARE",
    "ClusterLabel",
    "LabelDocument",
    "Vocabulary",
    "label_clusters",
    "stem",
]

ENTITY_CAPITALISED = 0.6  # share of mid-sentence uses written capitalised for a term to be a name
ENTITY_MIN_USES = 2
ENTITY_SHARE = 0.5  # an entity leads the label only when at least half the cluster's tickets name it
ENTITY_LIFT = 2.0  # ... and it is at least twice as common in the cluster as in the rest of the range
BIGRAM_SHARE = 0.5  # a bigram replaces its term when at least half the term's tickets use that bigram
LABEL_PHRASES = 2
LABEL_WORDS = 4  # words after the entity
TOP_TERMS = 8
SMOOTHING = 0.5
# The title and the start of the description name the problem; a long pasted log adds time, not a label.
LABEL_TEXT_CHARS = 1000

_TOKEN = re.compile(r"\w+(?:[.\-@'’]\w+)*")
# Characters between two tokens that start a new sentence (or a quotation) for the capitalisation count.
_SENTENCE_BREAK = re.compile(r"[.!?:;\"'‘“(\[]")


# Capitalised in English, yet not what a cluster is about.
CALENDAR_WORDS = frozenset(
    {
        *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        *("january", "february", "march", "april", "may", "june", "july", "august", "september"),
        *("october", "november", "december"),
    }
)


_DIGIT = re.compile(r"\d")


def _has_capital(token: str) -> bool:
    """A capital in a word without digits ("Salesforce", "iPad", "SAP"; not "ZR-LON-01")."""
    return token.lower() != token and not _DIGIT.search(token)


def _tokens(line: str) -> list[tuple[str, str, bool]]:
    """``(token, text before it, starts a sentence)`` for each token of a line."""
    out = []
    previous_end = 0
    for position, match in enumerate(_TOKEN.finditer(line)):
        gap = line[previous_end : match.start()]
        previous_end = match.end()
        out.append((match.group(), gap, position == 0 or bool(_SENTENCE_BREAK.search(gap))))
    return out


def _term(token: str) -> str | None:
    """The token as :func:`core.matching.text.lexical_terms` would keep it (same pattern, same rules: stop
    words, one-letter words and short numbers dropped, possessive 's cut), without a regex pass per token."""
    term = token.casefold().replace("’", "'")
    if term.endswith("'s"):
        term = term[:-2]
    if len(term) < 2 or term in ENGLISH_STOP_WORDS or (term.isdigit() and len(term) < 3):
        return None
    return term


def stem(term: str) -> str:
    """Fold plurals so "room"/"rooms" and "policy"/"policies" are one term (keys only; labels show a real
    surface form)."""
    if len(term) > 4 and term.endswith("ies"):
        return term[:-3] + "y"
    if len(term) > 4 and term.endswith(("sses", "ches", "shes", "xes", "zes")):
        return term[:-2]  # "crashes", "passes"
    if len(term) > 3 and term.endswith("s") and not term.endswith(("ss", "us", "is")):
        return term[:-1]
    return term


@dataclass
class Vocabulary:
    """What the tickets read so far say about each term key: its written forms and its capitalisation."""

    surfaces: dict[str, Counter[str]] = field(default_factory=dict)
    capitalised: Counter[str] = field(default_factory=Counter)
    lower: Counter[str] = field(default_factory=Counter)

    def is_entity(self, key: str) -> bool:
        if key in CALENDAR_WORDS:
            return False
        capitalised = self.capitalised[key]
        uses = capitalised + self.lower[key]
        return capitalised >= ENTITY_MIN_USES and capitalised >= ENTITY_CAPITALISED * uses

    def display(self, key: str) -> str:
        """An entity in its most common capitalised form ("SAP", "iPad"), another term in lower case."""
        forms = self.surfaces.get(key)
        if not forms:
            return key
        if self.is_entity(key):
            capitalised = Counter({f: n for f, n in forms.items() if f != f.lower()})
            if capitalised:
                return capitalised.most_common(1)[0][0]
        lowered: Counter[str] = Counter()
        for form, count in forms.items():
            lowered[form.lower()] += count
        return lowered.most_common(1)[0][0]


@dataclass(frozen=True, slots=True)
class LabelDocument:
    """One ticket as the labeller sees it: its term keys and bigram keys ("key key")."""

    terms: frozenset[str]
    bigrams: frozenset[str]

    @classmethod
    def read(cls, text: str, vocabulary: Vocabulary) -> LabelDocument:
        terms: set[str] = set()
        bigrams: set[str] = set()
        for line in text[:LABEL_TEXT_CHARS].splitlines():
            tokens = _tokens(line)
            # Capitals say "a name" only on a line whose writer uses them mid-sentence and is not shouting:
            # "Pennine zoom room no audio" says nothing about "zoom".
            informative = sum(map(str.isupper, line)) < 0.5 * sum(map(str.isalpha, line)) and any(
                not initial and _has_capital(token) for token, _, initial in tokens
            )
            previous_key: str | None = None
            for token, gap, initial in tokens:
                term = _term(token)
                if term is None:
                    previous_key = None
                    continue
                key = stem(term)
                surface = token[:-2] if token.lower().endswith(("'s", "’s")) else token
                vocabulary.surfaces.setdefault(key, Counter())[surface] += 1
                if informative and not initial and not _DIGIT.search(token):
                    if token.lower() != token:
                        vocabulary.capitalised[key] += 1
                    else:
                        vocabulary.lower[key] += 1
                terms.add(key)
                if previous_key is not None and previous_key != key and gap.isspace():
                    bigrams.add(f"{previous_key} {key}")
                previous_key = key
        return cls(frozenset(terms), frozenset(bigrams))


@dataclass(frozen=True, slots=True)
class ClusterLabel:
    label: str
    title: str  # for a draft runbook: the label as a title, no word twice
    terms: tuple[str, ...]  # the most distinctive single terms, best first (display forms)
    entities: tuple[str, ...]  # the names among them (display forms)


def _scores(
    inside: Counter[str], size: int, outside: Counter[str], background: int
) -> list[tuple[str, float, float]]:
    """``(key, score, lift)`` of the keys more common inside than outside, best score first."""
    scored = []
    for key, count in inside.items():
        if count < 2 and size >= 4:  # a term in one ticket is that ticket's, not the cluster's
            continue
        p_in = count / size
        p_out = (outside[key] + SMOOTHING) / (background + 2 * SMOOTHING)
        if p_in > p_out:
            scored.append((key, p_in * math.log(p_in / p_out), p_in / p_out))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored


def _extend(keys: list[str], bigrams: dict[str, float], inside: Counter[str], used: set[str]) -> list[str]:
    """A bigram grown by one word on either side when most of its uses have that word there too ("room
    display" -> "meeting room display"): bigrams can say what three words say without counting trigrams."""
    first, last = keys
    share = BIGRAM_SHARE * inside[f"{first} {last}"]
    before = [b.split()[0] for b in bigrams if b.split()[1] == first and inside[b] >= share]
    after = [b.split()[1] for b in bigrams if b.split()[0] == last and inside[b] >= share]
    before = [w for w in before if w not in used and w not in keys]
    after = [w for w in after if w not in used and w not in keys]
    if before:
        return [max(before, key=lambda w: inside[f"{w} {first}"]), first, last]
    if after:
        return [first, last, max(after, key=lambda w: inside[f"{last} {w}"])]
    return keys


def _compose(
    terms: list[tuple[str, float]],
    bigrams: list[tuple[str, float]],
    lifts: dict[str, float],
    inside: Counter[str],
    size: int,
    vocabulary: Vocabulary,
) -> tuple[str, str, list[str]]:
    used: set[str] = set()
    lead = ""
    # The name most of the tickets say is the subject ("Salesforce" before "Excel" in report exports that
    # fail in Salesforce), provided it is distinctive at all.
    names = [
        key
        for key, _ in terms
        if vocabulary.is_entity(key) and inside[key] >= ENTITY_SHARE * size and lifts[key] >= ENTITY_LIFT
    ]
    if names:
        key = max(names, key=lambda k: inside[k])  # ties: the first, i.e. the better score
        lead = vocabulary.display(key)
        used.add(key)
        # "SAP GUI", "Zoom Room": a name written next to another name most of the time is one name.
        for other, _ in terms:
            if other == key or not vocabulary.is_entity(other):
                continue
            if inside[f"{key} {other}"] >= BIGRAM_SHARE * inside[key]:
                lead = f"{lead} {vocabulary.display(other)}"
            elif inside[f"{other} {key}"] >= BIGRAM_SHARE * inside[key]:
                lead = f"{vocabulary.display(other)} {lead}"
            else:
                continue
            used.add(other)
            break
    bigram_of = dict(bigrams)
    ranked = sorted([*terms, *bigrams], key=lambda item: (-item[1], item[0]))
    phrases: list[str] = []
    words = 0
    for candidate, _ in ranked:
        keys = candidate.split()
        if used & set(keys):
            continue
        if len(keys) == 1:  # a term that mostly appears in one bigram reads better as that bigram
            better = max(
                (
                    b
                    for b in bigram_of
                    if keys[0] in b.split()
                    and not used & set(b.split())
                    and inside[b] >= BIGRAM_SHARE * inside[keys[0]]
                ),
                key=lambda b: (inside[b], bigram_of[b]),
                default=None,
            )
            if better is not None:
                keys = better.split()
        if len(keys) == 2:
            keys = _extend(keys, bigram_of, inside, used)
        phrases.append(" ".join(vocabulary.display(k) for k in keys))
        used.update(keys)
        words += len(keys)
        if len(phrases) == LABEL_PHRASES or words >= LABEL_WORDS:
            break
    label = f"{lead}: {' / '.join(phrases)}" if lead and phrases else lead or " / ".join(phrases)
    title = f"{lead} {', '.join(phrases)}".strip() if lead else ", ".join(phrases)
    return label, title[:1].upper() + title[1:], sorted(used)


def label_clusters(
    clusters: Sequence[Sequence[tuple[int, LabelDocument]]],
    background: Sequence[tuple[int, LabelDocument]],
    vocabulary: Vocabulary,
) -> list[ClusterLabel]:
    """A label per cluster. ``clusters``: each cluster's (ticket id, document), most central first;
    ``background``: a sample of all the range's tickets (a cluster's own members in it are left out of its
    comparison)."""
    all_terms: Counter[str] = Counter()
    for _, doc in background:
        all_terms.update(doc.terms)
        all_terms.update(doc.bigrams)
    out = []
    for docs in clusters:
        members = {ticket_id for ticket_id, _ in docs}
        own = [doc for ticket_id, doc in background if ticket_id in members]
        outside = all_terms.copy()
        for doc in own:
            outside.subtract(doc.terms)
            outside.subtract(doc.bigrams)
        inside: Counter[str] = Counter()
        for _, doc in docs:
            inside.update(doc.terms)
            inside.update(doc.bigrams)
        size, rest = len(docs), len(background) - len(own)
        scored = _scores(inside, size, outside, rest)
        terms = [(key, score) for key, score, _ in scored if " " not in key]
        bigrams = [(key, score) for key, score, _ in scored if " " in key]
        lifts = {key: lift for key, _, lift in scored}
        label, title, _ = _compose(terms, bigrams, lifts, inside, size, vocabulary)
        top = [key for key, _ in terms[:TOP_TERMS]]
        out.append(
            ClusterLabel(
                label=label,
                title=title,
                terms=tuple(vocabulary.display(key).lower() for key in top),
                entities=tuple(vocabulary.display(key) for key in top if vocabulary.is_entity(key)),
            )
        )
    return out


def documents(texts: Iterable[tuple[int, str]], vocabulary: Vocabulary) -> dict[int, LabelDocument]:
    """Read ``(ticket id, text)`` pairs into documents, filling ``vocabulary`` as it goes."""
    return {ticket_id: LabelDocument.read(text, vocabulary) for ticket_id, text in texts}
