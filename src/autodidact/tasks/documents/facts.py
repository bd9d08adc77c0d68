"""Facts taken from a chunk by rule: an answer span of one sentence and a wh-question ("cloze") it answers.

Answer-first question writing starts here: the answer is text of the user's
document (a quantity, a time, a date, a name), so the reference is never
invented and grading is a span match (`states_span`) with no model in the loop.
Everything is regular expressions over the text: the tools that do this with a
model (spaCy, NLTK's punkt, stanza) download their models, which an offline
machine cannot, and the rules are fast, deterministic and easy to read. They
prefer dropping a doubtful span to keeping it: OCR-garbled numbers ('l3' for
'13'), ranges ('4 or 5 seconds'), coordinates and names used as modifiers
('the Fra Mauro area') give no fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("quantity", "duration", "time", "date", "year", "percent", "name")
_TIERS = {"name": 2, "year": 1}  # the rest are tier 0: at most one fact a sentence, the lowest tier first
ANSWER_TOKENS = 30  # states_span looks for the span among the answer's first tokens only

# '.'-ending words that do not end a sentence (compared lowercase, without the final '.').
_ABBREVIATIONS = frozenset(
    "approx e.g i.e dr mr mrs ms no nos fig figs u.s jr sr st vs ref refs sec eq vol pp ca cf al "
    "col capt lt gen cmdr prof inc co corp dept est jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_MONTHS = "January February March April May June July August September October November December".split()
_WORDS_1_TO_12 = "one two three four five six seven eight nine ten eleven twelve".split()
_NUMBER_WORDS = {word: str(i) for i, word in enumerate(_WORDS_1_TO_12, 1)}
# Units a number may carry, longest first in the pattern so 'ampere hours' wins over 'ampere'.
_UNITS = (
    "ampere-hours|ampere hours|amperehours|man-hours|nautical miles|feet per second|ft/sec|deg/sec|lb/hr|psi/hr|"
    "psi/hour|scc/hr|rad/hr|volts/meter|kW-h|hours|hour|minutes|minute|seconds|second|days|day|weeks|week|months|"
    "month|years|year|degrees|degree|pounds|pound|lb|psia|psi|feet|foot|miles|mile|kilometers|kilometer|meters|"
    "meter|inches|inch|volts|volt|amperes|ampere|amps|watts|watt|kilowatts|kHz|MHz|Hz|ohms|cc|dB|knots"
).split("|")
_TITLES = frozenset("Mr. Mrs. Ms. Dr. Colonel Captain Commander Major General Lieutenant Professor Senator".split())
_ROLES = frozenset("Pilot Director Manager Administrator Astronaut Engineer Conductor Controller Officer".split())
_NAME_EXCLUDED = frozenset(_MONTHS + "Figure Table Section Appendix Page Chapter".split())
# Lowercase words that may follow a name: after anything else the name modifies a noun ('the Fra Mauro area').
_AFTER_NAME = frozenset(
    "and or was were is are has had have in at on of to for with by from as which who that during after before "
    "will would could can did also".split()
)

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_NUM_START = r"(?<![\w.,:/$-])"  # a number is a whole token: 'll8' (OCR for 118) holds no '8'
_WRITTEN = r"(?<![\w-])(?i:(?:" + "|".join(_NUMBER_WORDS) + r"))"
_UNIT = r"(?i:" + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True)) + r")(?![\w/-])"
_MONTH = "(?:" + "|".join(_MONTHS) + ")"
_NAME_WORD = r"(?:[A-Z]\.|[A-Z][a-zA-Z]+)"  # 'James', 'A.', 'McDivitt', 'NASA'
_DATE = rf"\b{_MONTH} \d{{1,2}}(?:, ?\d{{4}})?(?![\w,:]\d|\w)|{_NUM_START}\d{{1,2}} {_MONTH}(?: \d{{4}})?\b"
_HMS = r"\d+ (?:hours?|hr),? (?:and )?\d+ minutes?(?:,? (?:and )?\d+ seconds?)?|\d+ minutes?,? (?:and )?\d+ seconds?"
# (kind, pattern) in the order spans are claimed: a longer reading claims its text before a shorter one.
_PATTERNS = [
    ("hms", re.compile(rf"{_NUM_START}(?:{_HMS})(?![\w,]\d)")),
    ("clock", re.compile(r"(?<![\w:.,])\d{1,3}:\d\d(?::\d\d)?(?: ?[ap]\.m\.)?(?![\w:])")),
    ("date", re.compile(_DATE)),
    ("percent", re.compile(rf"{_NUM_START}{_NUM}(?: ?%| percent\b| per cent\b)")),
    ("quantity", re.compile(rf"(?:{_NUM_START}{_NUM}|{_WRITTEN}) {_UNIT}")),
    ("year", re.compile(r"(?<![\w.,:/$-])(?:1[89]|20)\d\d(?![\w,:/-]|\.\d)")),
    ("name", re.compile(rf"(?<![\w'/-])(?:(?:Mr|Mrs|Ms|Dr)\.|{_NAME_WORD})(?: {_NAME_WORD})*(?![\w'/-])")),
]
# A number next to another number is one end of a range or list ('4 or 5 seconds', '5, 6, and 9 hours', '190 ± 20
# psia') or part of a compound measure ('165 degrees 23.2 minutes'): its question would have several answers.
_RANGE_BEFORE = re.compile(r"(?:\d[$%]?,?|\bbetween)\s*(?:or|to|and|-|–|±)?\s*$|\bbetween \S+ and $")
_RANGE_AFTER = re.compile(r"^,?\s*(?:(?:or|to|and|-|–|/|±)\s*)?\$?\d")
_GARBLED_YEAR = re.compile(r"^,? ?[\dlIoO]{4}\b")
_APPROX = r"(?:(?:approximately|about|nearly|roughly|almost|over|under|only|some)\s+)*"
_TERMINAL = re.compile(r"[.!。]([\"')\]]*)$")
_CAPTION = re.compile(r"^(?:Figure|Table|Fig\.)\s+\S+?\s*[.:]-?\s")
_WORD_BEFORE = re.compile(r"(\w+)\W*$")


@dataclass(frozen=True)
class Fact:
    """One answer span of one sentence of a chunk, with a rule-written question whose answer is the span."""

    chunk_id: str
    sentence: str
    span: str  # the answer, exactly as it appears in `sentence`
    kind: str  # one of KINDS
    cloze: str  # `sentence` with the span replaced by a wh-phrase, ending in '?'


def _is_prose(line: str) -> bool:
    """False for Markdown headings, table rows, HTML and image lines: they hold no sentences."""
    line = line.strip()
    return bool(line) and not line.startswith(("#", "![")) and "|" not in line and "<" not in line


def _paragraphs(text: str) -> list[str]:
    """Runs of prose lines joined by single spaces, with OCR's space before punctuation removed."""
    paragraphs, lines = [], []
    for line in text.splitlines() + [""]:
        if _is_prose(line):
            lines.append(line.strip())
        elif lines:
            paragraph = re.sub(r"\s+", " ", " ".join(lines))
            paragraphs.append(re.sub(r" (?=[,;:.!?)。])", "", paragraph))
            lines = []
    return paragraphs


def _ends_sentence(paragraph: str, mark: int) -> bool:
    """Whether the '.', '!', '?' or '。' at `mark` ends a sentence (it is followed by space and a capital or digit)."""
    if paragraph[mark] != ".":
        return True
    word = paragraph[:mark].rsplit(" ", 1)[-1].lstrip("(\"'[")
    if re.fullmatch(r"[A-Z]", word) or re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):
        return False  # an initial (James A. Lovell) or a dotted abbreviation (U.S., e.s.t.)
    return word.lower() not in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order, by rule (see the module docstring for why no model).

    Markdown headings, table rows (lines with '|' or '<') and image lines are not
    sentences. A sentence ends at '.', '!', '?' or '。' followed by space and a
    capital letter, a digit or an opening quote/bracket; never at a decimal point,
    an initial ('James A. Lovell') or an abbreviation ('approx.', 'e.g.', 'Dr.',
    'No.', 'Fig.', 'U.S.'). Whitespace is collapsed to single spaces.
    """
    sentences = []
    for paragraph in _paragraphs(text):
        start = 0
        for end in re.finditer(r"[.!?。][\"')\]]*(?= [A-Z0-9\"'(\[])", paragraph):
            if _ends_sentence(paragraph, end.start()):
                sentences.append(paragraph[start : end.end()].strip())
                start = end.end()
        if paragraph[start:].strip():
            sentences.append(paragraph[start:].strip())
    return sentences


def _usable(sentence: str) -> bool:
    """A sentence a question can be written from: 6-45 words, a capital or digit first, a final '.', no caption."""
    words = len(sentence.split())
    return (
        6 <= words <= 45
        and (sentence[0].isupper() or sentence[0].isdigit())
        and _TERMINAL.search(sentence) is not None
        and not _CAPTION.match(sentence)
    )


def _word_before(sentence: str, start: int, skip_approx: bool = False) -> str:
    """The word before position `start`, lowercase ('' at the start); past 'approximately'/'about' when asked."""
    before = sentence[:start]
    if skip_approx:
        before = re.sub(rf"\b{_APPROX}$", "", before, flags=re.IGNORECASE)
    match = _WORD_BEFORE.search(before)
    return match.group(1).lower() if match else ""


def _classify(kind: str, sentence: str, start: int, span: str) -> str | None:
    """The fact kind of a matched span, or None when the span is doubtful and gives no fact."""
    before, after = sentence[:start], sentence[start + len(span) :]
    if kind in ("hms", "clock", "quantity", "percent") and (_RANGE_BEFORE.search(before) or _RANGE_AFTER.match(after)):
        return None
    previous = _word_before(sentence, start, skip_approx=True)
    if kind in ("hms", "clock", "quantity") and previous in {"degrees", "degree", "minutes", "minute"}:
        return None  # part of a coordinate: '21 degrees 38 minutes 24 seconds'
    if kind in ("hms", "clock"):
        approx = _word_before(sentence, start) != previous  # 'about 58 hours 40 minutes': a span of time
        if previous in {"at", "until", "till", "by", "from", "to"}:
            return "time"
        if previous in {"for", "after", "within", "lasted", "in", "of"} or approx:
            return "duration"
        return "time" if kind == "clock" else "duration"
    if kind == "quantity":
        number = span.split()[0].lower()
        if number in ("1", "one"):
            return None  # a singular unit: 'how many hour' reads wrong, and 1 is rarely the point
        unit = span.split(" ", 1)[1].lower()
        return "time" if previous == "at" and unit in {"hours", "minutes", "seconds"} else "quantity"
    if kind == "percent":
        return "percent"
    if kind == "date":
        day = re.search(r"\b\d{1,2}\b", span)
        if not day or not 1 <= int(day.group()) <= 31 or (not re.search(r"\d{4}", span) and _GARBLED_YEAR.match(after)):
            return None  # no day, or its year is OCR-garbled ('April 17, l970')
        return "date"
    if kind == "year":
        return "year" if _word_before(sentence, start) in {"in", "of", "since", "until", "during", "before"} else None
    return _classify_name(sentence, start, span)


def _classify_name(sentence: str, start: int, span: str) -> str | None:
    words, after = span.split(), sentence[start + len(span) :]
    if start == 0 or not 2 <= len(words) <= 4 or any(w.rstrip(".") in _NAME_EXCLUDED for w in words):
        return None
    if re.fullmatch(r"[A-Z]\.", words[-1]) or re.search(r": [A-Z]", sentence):
        return None  # ends in an initial ('Saturn V.'), or a reference-list entry ('Center: Analysis of ...')
    if all(w.isupper() for w in words):
        return None  # an all-caps heading or acronyms
    if re.search(r"[A-Z][\w.]*,?\s$", sentence[:start]) or re.match(r",? ?(?:[A-Z]|\d|where\b)", after):
        return None  # in a list or qualified ('Bethpage, New York', 'Center, Florida'): the question would be vague
    following = re.match(r"\s*([A-Za-z]+)", after)
    if following and following.group(1) not in _AFTER_NAME:
        return None  # the name modifies a noun: 'the Fra Mauro area'
    return "name"


def _is_person(span: str) -> bool:
    words = span.split()
    return any(re.fullmatch(r"[A-Z]\.", w) or w in _TITLES or w in _ROLES for w in words)


def _wh_phrase(kind: str, span: str) -> str:
    if kind == "quantity":
        unit = span.split(" ", 1)[1]
        plural = {"foot": "feet", "inch": "inches"}.get(unit, unit + "s")
        return "how many " + (plural if plural in _UNITS else unit)
    return {"time": "what time", "duration": "how long", "date": "what date", "year": "what year",
            "percent": "what percentage"}.get(kind, "who" if _is_person(span) else "what")  # fmt: skip


def _cloze(sentence: str, start: int, span: str, kind: str) -> str:
    """`sentence` with the span replaced by its wh-phrase and the final '.' by '?'."""
    end = start + len(span)
    wh = _wh_phrase(kind, span)
    article = re.search(r"\b[Tt]he $", sentence[:start])
    if kind == "name" and article:
        start = article.start()  # 'the Command Module Pilot' -> 'who', not 'the who'
    if start == 0:
        wh = wh[0].upper() + wh[1:]
    text = sentence[:start] + wh + sentence[end:]
    terminal = _TERMINAL.search(text)
    return (text[: terminal.start()] + terminal.group(1) if terminal else text) + "?"


def _candidates(sentence: str) -> list[tuple[int, str, str]]:
    """(start, span, kind) of every usable span of one sentence; overlapping readings keep the first claimed."""
    claimed: list[tuple[int, int]] = []
    found = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(sentence):
            a, b = match.span()
            if any(a < y and x < b for x, y in claimed):
                continue
            claimed.append((a, b))
            fact_kind = _classify(kind, sentence, a, match.group())
            if fact_kind and sentence.count(match.group()) == 1:
                found.append((a, match.group(), fact_kind))
    return found


def sentence_fact(chunk_id: str, sentence: str) -> Fact | None:
    """The one fact of a sentence: the first span of the best tier (numbers, dates; then years; then names)."""
    if not _usable(sentence):
        return None
    found = sorted(_candidates(sentence), key=lambda c: (_TIERS.get(c[2], 0), c[0]))
    for start, span, kind in found:
        cloze = _cloze(sentence, start, span, kind)
        if span not in cloze:
            return Fact(chunk_id=chunk_id, sentence=sentence, span=span, kind=kind, cloze=cloze)
    return None


def find_facts(chunk_id: str, text: str, limit: int) -> list[Fact]:
    """At most `limit` facts of a chunk, at most one a sentence, in the order of their sentences.

    A chunk cut mid-sentence leaves fragments: its first sentence is dropped when
    the text starts with a prose line that does not start with a capital letter
    ('hours 40 minutes, at which ...', '40 minutes, at which ...'), and a last
    sentence without final punctuation gives no fact (nor does any sentence without one).
    """
    sentences = split_sentences(text)
    first_line = text.lstrip().split("\n", 1)[0]
    if sentences and _is_prose(first_line) and not first_line.lstrip("\"'([")[:1].isupper():
        sentences = sentences[1:]
    facts = []
    for sentence in sentences:
        if len(facts) >= limit:
            break
        fact = sentence_fact(chunk_id, sentence)
        if fact is not None:
            facts.append(fact)
    return facts


def _tokens(text: str) -> list[str]:
    """Lowercase words and numbers: '1,000' -> '1000', '3.50' -> '3.5', '%' -> 'percent', 'two' -> '2', no plural."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower()).replace("%", " percent ")
    tokens = []
    for token in re.findall(r"\d+(?:\.\d+)?|[a-z]+", text):
        if token in _NUMBER_WORDS:
            token = _NUMBER_WORDS[token]
        elif "." in token:
            token = token.rstrip("0").rstrip(".")
        elif len(token) > 3 and token.endswith("s") and not token[0].isdigit():
            token = token[:-1]
        tokens.append(token)
    return tokens


_UNIT_TOKENS = frozenset(t for unit in _UNITS + ["percent"] for t in _tokens(unit))


def _in_order(needles: list[str], haystack: list[str]) -> bool:
    rest = iter(haystack)
    return all(any(n == h for h in rest) for n in needles)


def states_span(answer: str, span: str) -> bool:
    """Whether `answer` states the reference `span` (the grading rule, no model).

    Both are normalised (`_tokens`: case, punctuation, '1,000' == '1000',
    'ampere-hours' == 'ampere hours', plural 's'). The answer passes when, within
    its first `ANSWER_TOKENS` tokens, it holds the span's tokens contiguously; or
    it holds every number of the span in order and each other word of the span,
    except units it leaves out: '38' states '38 pounds' (the question asked 'how
    many pounds'), '11 April 1970' states 'April 11, 1970'. Leaving a unit out
    passes only if the answer names no other unit ('38 psia' does not state
    '38 pounds'). A span without numbers (a name) must appear whole.
    """
    head, want = _tokens(answer)[:ANSWER_TOKENS], _tokens(span)
    if not head or not want:
        return False
    n = len(want)
    if any(head[i : i + n] == want for i in range(len(head) - n + 1)):
        return True
    numbers = [t for t in want if t[0].isdigit()]
    if not numbers or not _in_order(numbers, head):
        return False
    words = [t for t in want if not t[0].isdigit()]
    missing = [w for w in words if w not in head]
    foreign_units = {t for t in head if t in _UNIT_TOKENS} - set(words)
    return all(w in _UNIT_TOKENS for w in missing) and not (missing and foreign_units)
