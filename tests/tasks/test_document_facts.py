"""Facts taken from a chunk by rule: sentence splitting, answer spans, their wh-questions, span grading.

The sentences are copied from the Apollo 13 Mission Report (NASA MSC-02680, 1970;
public domain, OCR errors kept: 'l' for '1').
"""

from __future__ import annotations

import pytest

from autodidact.tasks.documents.facts import Fact, find_facts, split_sentences, states_span

# The 7.1.6 section of the report as it stands in the Markdown: heading, OCR's ' ,', a garbled number
# ('ll8'), a sentence about a figure, an image link and the figure's caption.
BATTERIES = """# 7.1.6 Batteries

The command module was completely powered down at 58 hours 40 minutes , at which time 99 ampere-hours \
remained in the three entry batteries. By charging the batteries with lunar module power, available battery \
capacity was increased to ll8 ampere-hours. Figure 7.l-l depicts the battery energy available and used during \
entry. At landing, 29 ampere-hours of energy remained.

![](images/e33095f56c995bfb09d25f010b4f7e79ad764a5cf212519400effa33e6ac5b9c.jpg)
Figure 7.l-l.- Entry battery energy.
"""


def test_sentences_split_at_sentence_ends_only() -> None:
    text = (
        "# 7.1.4 Oxygen\n\n"
        "The tank held 3.5 pounds at approx. 900 psia. James A. Lovell was the Commander, i.e. The leader.\n"
        "Dr. Smith and Mr. Jones saw Fig. 3 and item No. 2 of U.S. origin. It ended!\n"
        "| Tank | Pounds |\n"
        "<html><body><table><tr><td>Tank 1. Two</td></tr></table></body></html>\n"
        "Second paragraph\nwraps here. 12 seconds later it stopped."
    )
    assert split_sentences(text) == [
        "The tank held 3.5 pounds at approx. 900 psia.",
        "James A. Lovell was the Commander, i.e. The leader.",
        "Dr. Smith and Mr. Jones saw Fig. 3 and item No. 2 of U.S. origin.",
        "It ended!",
        "Second paragraph wraps here.",
        "12 seconds later it stopped.",
    ]


def test_sentences_of_a_report_section() -> None:
    assert split_sentences(BATTERIES) == [
        "The command module was completely powered down at 58 hours 40 minutes, at which time 99 ampere-hours "
        "remained in the three entry batteries.",
        "By charging the batteries with lunar module power, available battery capacity was increased to ll8 "
        "ampere-hours.",
        "Figure 7.l-l depicts the battery energy available and used during entry.",
        "At landing, 29 ampere-hours of energy remained.",
        "Figure 7.l-l.- Entry battery energy.",
    ]


# (sentence of the report, span, kind, cloze)
REPORT_FACTS = [
    (
        "At the time of the incident, about 38 pounds of water was available in the potable water tank.",
        "38 pounds",
        "quantity",
        "At the time of the incident, about how many pounds of water was available in the potable water tank?",
    ),
    (
        "The estimated total energy transferred to the command module was approximately 129 ampere hours.",
        "129 ampere hours",
        "quantity",
        "The estimated total energy transferred to the command module was approximately how many ampere hours?",
    ),
    (
        "The next abnormal indication occurred when the fans in cryogenic oxygen tank 2 were turned on at 55:53:20.",
        "55:53:20",
        "time",
        "The next abnormal indication occurred when the fans in cryogenic oxygen tank 2 were turned on at what time?",
    ),
    (
        "These signals probably came from lightning in a cold front which was stalled some distance to the "
        "northwest of the launch site and which passed over the launch site on April 12.",
        "April 12",
        "date",
        "These signals probably came from lightning in a cold front which was stalled some distance to the "
        "northwest of the launch site and which passed over the launch site on what date?",
    ),
    (
        "Structural loads experienced during S-IC boost were well below design values, with maximum lateral "
        "loads approximately 25 percent of the design value.",
        "25 percent",
        "percent",
        "Structural loads experienced during S-IC boost were well below design values, with maximum lateral "
        "loads approximately what percentage of the design value?",
    ),
    (
        "The spacecraft was controlled by the Lunar Module Pilot from commands given by the Commander, who "
        "responded when the reticle lines bisected the moon and solar disks.",
        "Lunar Module Pilot",
        "name",
        "The spacecraft was controlled by who from commands given by the Commander, who responded when the "
        "reticle lines bisected the moon and solar disks?",
    ),
    (
        "Two days before launch, the Command Module Pilot, as a member of the Apollo l3 backup crew, was "
        "substituted for his prime crew counterpart, who was exposed and found susceptible to rubella (German "
        "measles).",
        "Two days",
        "quantity",
        "How many days before launch, the Command Module Pilot, as a member of the Apollo l3 backup crew, was "
        "substituted for his prime crew counterpart, who was exposed and found susceptible to rubella (German "
        "measles)?",
    ),
]


@pytest.mark.parametrize(("sentence", "span", "kind", "cloze"), REPORT_FACTS)
def test_a_report_sentence_gives_its_fact(sentence: str, span: str, kind: str, cloze: str) -> None:
    assert find_facts("report.md#3", sentence, limit=5) == [Fact("report.md#3", sentence, span, kind, cloze)]
    assert span not in cloze


def test_facts_of_a_report_section() -> None:
    """The garbled 'll8', the sentence about a figure and the caption give no fact; ' ,' is tidied."""
    facts = find_facts("report.md#0", BATTERIES, limit=5)
    assert [(f.span, f.kind, f.cloze) for f in facts] == [
        (
            "58 hours 40 minutes",
            "time",
            "The command module was completely powered down at what time, at which time 99 ampere-hours "
            "remained in the three entry batteries?",
        ),
        ("29 ampere-hours", "quantity", "At landing, how many ampere-hours of energy remained?"),
    ]


@pytest.mark.parametrize(
    ("sentence", "span", "kind", "cloze"),
    [
        (
            "The crew slept for 5 hours 30 minutes after the second firing.",
            "5 hours 30 minutes",
            "duration",
            "The crew slept for how long after the second firing?",
        ),
        (
            "The report was published in 1970 by the center.",
            "1970",
            "year",
            "The report was published in what year by the center?",
        ),
        (
            "The crew was commanded by James A. Lovell during the flight.",
            "James A. Lovell",
            "name",
            "The crew was commanded by who during the flight?",
        ),
        (
            "The spacecraft was launched on April 11, 1970 from the pad.",
            "April 11, 1970",
            "date",
            "The spacecraft was launched on what date from the pad?",
        ),
        (
            "The crew report was sent to the Manned Spacecraft Center after landing.",
            "Manned Spacecraft Center",
            "name",
            "The crew report was sent to what after landing?",
        ),
    ],
)
def test_each_kind_has_its_wh_phrase(sentence: str, span: str, kind: str, cloze: str) -> None:
    assert find_facts("c", sentence, limit=1) == [Fact("c", sentence, span, kind, cloze)]


@pytest.mark.parametrize(
    "sentence",
    [
        "The engine fired for 4 or 5 seconds at full throttle.",  # a range: two answers
        "The landing point was 21 degrees 38 minutes 24 seconds south latitude.",  # a coordinate
        "The mission was planned as a lunar landing in the Fra Mauro area.",  # a name modifying a noun
        "By charging the batteries, capacity was increased to ll8 ampere-hours.",  # an OCR-garbled number
        "Short one with 38 pounds.",  # under 6 words
        "Figure 7.2-1.- Lunar module water usage over 38 pounds.",  # a caption
        "The tank held 38 pounds and later 38 pounds again.",  # the span twice
        "Two days before launch the crew trained together",  # no final punctuation
    ],
)
def test_doubtful_sentences_give_no_fact(sentence: str) -> None:
    assert find_facts("c", sentence, limit=5) == []


def test_numbers_outrank_years_and_years_outrank_names() -> None:
    sentence = "In 1970 the Kennedy Space Center and the crew loaded 38 pounds of water."
    assert [f.span for f in find_facts("c", sentence, limit=5)] == ["38 pounds"]
    sentence = "The team at the Kennedy Space Center was formed in 1962 for the program."
    assert [f.span for f in find_facts("c", sentence, limit=5)] == ["1962"]


def test_a_chunk_cut_mid_sentence_drops_its_fragments() -> None:
    whole = (
        "The command module was completely powered down at 58 hours 40 minutes, at which time 99 ampere-hours "
        "remained in the three entry batteries. At landing, 29 ampere-hours of energy remained. By charging the "
        "batteries with lunar module power, available battery capacity was increased to 118 ampere-hours"
    )
    assert [f.span for f in find_facts("c", whole, limit=5)] == ["58 hours 40 minutes", "29 ampere-hours"]
    for cut in ("40 minutes, at which", "hours 40 minutes, at which"):
        fragment = whole[whole.index(cut) :]
        assert [f.span for f in find_facts("c", fragment, limit=5)] == ["29 ampere-hours"]


def test_at_most_limit_facts_in_order() -> None:
    text = (
        "About 38 pounds of water was available in the tank. The tank was isolated at 55:53:20 by the crew. "
        "Landing occurred on April 17, 1970 in the Pacific. The last reading was 25 percent of the design value."
    )
    assert [f.span for f in find_facts("c", text, limit=2)] == ["38 pounds", "55:53:20"]
    assert [f.span for f in find_facts("c", text, limit=9)] == ["38 pounds", "55:53:20", "April 17, 1970", "25 percent"]
    assert find_facts("c", text, limit=0) == []


@pytest.mark.parametrize(
    ("answer", "span", "expected"),
    [
        ("About 38 pounds of water.", "38 pounds", True),
        ("38", "38 pounds", True),  # the question asked 'how many pounds': the bare number states it
        ("38 psia", "38 pounds", False),  # a different unit
        ("39 pounds", "38 pounds", False),  # a different number
        ("380 pounds", "38 pounds", False),
        ("It was 1,000 feet.", "1000 feet", True),
        ("99 ampere hours", "99 ampere-hours", True),
        ("15%", "15 percent", True),
        ("2 days", "Two days", True),
        ("11 April 1970", "April 11, 1970", True),
        ("April 12, 1970", "April 11, 1970", False),
        ("13", "April 13", False),  # a date needs its month
        ("55 hours 54 minutes 53 seconds", "55:54:53", True),
        ("40 hours 58 minutes", "58 hours 40 minutes", False),  # the numbers in another order
        ("58 hours and 40 seconds", "58 hours 40 minutes", False),  # another unit in place of 'minutes'
        ("The Lunar Module Pilot did.", "Lunar Module Pilot", True),
        ("The Command Module Pilot did.", "Lunar Module Pilot", False),
        ("James Lovell", "James A. Lovell", False),  # a name must appear whole
        ("", "38 pounds", False),
        ("38 pounds", "", False),
    ],
)
def test_states_span(answer: str, span: str, expected: bool) -> None:
    assert states_span(answer, span) is expected


def test_states_span_reads_only_the_start_of_the_answer() -> None:
    filler = "the tank " * 15  # 30 tokens
    assert states_span(filler + "held 38 pounds", "38 pounds") is False
    assert states_span("38 pounds " + filler, "38 pounds") is True
