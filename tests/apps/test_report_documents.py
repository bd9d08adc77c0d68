"""The report's Documents section and the summary's documents table, from a hand-built store of a documents run."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from autodidact.apps.report import write_report
from autodidact.tasks.documents.grading import span_verdict
from autodidact.apps.summary import documents_table
from autodidact.config import DocumentsSourceConfig, RunConfig, TasksConfig, to_yaml
from autodidact.evaluation import wilson_interval
from autodidact.loop import iteration_rows
from autodidact.records import Prompt, Sample
from autodidact.store import RunStore

TASK = "apollo"
SOURCE = "apollo13 & report.md"
RESULTS = "<search>how far</search>\n<results>\n[1] CHUNK TEXT 200,000 nautical miles\n</results>\n"
# Closed book (split heldout_paraphrase): (reference, answer at iteration 0, answer at iteration 2).
CLOSED = [
    ("Odyssey", "Apollo", "The Odyssey."),  # wrong -> right
    ("55 hours", "55 hours", "55 hours"),  # right both
    ("Lovell", "Lovell", "Swigert"),  # right -> wrong
    ("April 13", "March", "on April 13, 1970"),  # wrong -> right
    ("Aquarius", "Apollo", "Apollo"),  # wrong both
    ("Houston", "Apollo", "Apollo"),  # wrong both: sixth, past the five shown
]
# Open book (split heldout): the final answer comes after the search results.
OPEN = [
    ("200,000 nautical miles", "I do not know", "About 200,000 nautical miles."),  # wrong -> right
    ("oxygen tank", "The oxygen tank.", "The oxygen tank."),  # right both
    ("Gene Kranz", "<script>alert(1)</script>", "Kranz"),  # wrong both
]
# iteration -> book -> (passed, graded, ungraded): what the evaluate stage measured.
COUNTS = {
    0: {"open": (1, 3, 0), "closed": (2, 6, 0)},
    1: {"open": (2, 3, 0), "closed": (1, 5, 1)},
    2: {"open": (2, 3, 0), "closed": (3, 6, 0)},
}


def _prompt(book: str, i: int, reference: str) -> Prompt:
    split = "heldout" if book == "open" else "heldout_paraphrase"
    question = f"<i>Q{i}</i> {book}: what is it?"
    meta = {"question": question, "chunk_id": f"c{i}", "source": SOURCE, "fact": f"f{i}", "book": book}
    return Prompt(
        f"{TASK}-{split}-{i:04d}",
        TASK,
        split,
        [{"role": "user", "content": f"Answer. {question}"}],
        reference=reference,
        meta=meta,
    )


def _metrics(book: str, passed: int, graded: int, ungraded: int) -> dict[str, float]:
    prefix = "" if book == "open" else "paraphrase_"
    low, high = wilson_interval(passed, graded)
    return {
        f"{prefix}pass_rate": passed / graded,
        f"{prefix}pass_low": low,
        f"{prefix}pass_high": high,
        f"{prefix}n": float(graded + ungraded),
        f"{prefix}ungraded": float(ungraded),
    }


def make_run(tmp_path: Path, documents: bool = True) -> Path:
    """Iterations 0-2 of a run with one documents source: held-out answers (origin heldout) and stored metrics."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Without the source the store is the same: only the config says which tasks are documents.
    tasks = (
        TasksConfig(names=[], sources=[DocumentsSourceConfig(name=TASK, path=str(tmp_path))])
        if documents
        else TasksConfig(names=["arithmetic"])
    )
    (run_dir / "config.yaml").write_text(to_yaml(RunConfig(name="d", tasks=tasks)), encoding="utf-8")
    closed = [_prompt("closed", i, ref) for i, (ref, *_) in enumerate(CLOSED)]
    opened = [_prompt("open", i, ref) for i, (ref, *_) in enumerate(OPEN)]
    train = Prompt(f"{TASK}-train-0000", TASK, "train", [{"role": "user", "content": "Answer. train?"}], "x")
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.add_prompts([train, *reversed(closed), *opened])  # stored out of id order: examples go by id
        for it in range(3):
            column = {0: 1, 1: 1, 2: 2}[it]  # iteration 1's answers are those of iteration 0
            answers = [(p, row[column]) for p, row in zip(closed, CLOSED, strict=True)]
            answers += [(p, RESULTS + row[column]) for p, row in zip(opened, OPEN, strict=True)]
            samples = [Sample(f"it{it}-{p.id}-0", p.id, it, 0, text, 3, origin="heldout") for p, text in answers]
            if it:
                samples.append(Sample(f"it{it}-{train.id}-0", train.id, it, 0, "TRAINING SAMPLE", 3))
            store.add_samples(samples)
            store.add_metrics(it, {"heldout_metric": 0.5, "pass_rate": 0.5})
            for book, counts in COUNTS[it].items():
                store.add_metrics(it, _metrics(book, *counts), task=TASK)
            store.finish_stage(it, "evaluate", 1.0)
    return run_dir


def _cells(row: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)


def _section_table(page: str, cls: str) -> list[list[str]]:
    table = re.search(rf'<table class="{cls}">(.*?)</table>', page, re.S).group(1)
    return [_cells(row) for row in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<td" in row]


def _interval(passed: int, graded: int) -> str:
    low, high = wilson_interval(passed, graded)
    return f"{100 * passed / graded:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def test_the_section_shows_both_accuracies_per_iteration_with_wilson_intervals(tmp_path: Path) -> None:
    page = write_report(make_run(tmp_path)).read_text(encoding="utf-8")
    assert page.count('<h2 id="documents">Documents</h2>') == 1 and "<h3>apollo</h3>" in page
    expected = [
        [str(it), _interval(*c["open"][:2]), str(c["open"][1]), _interval(*c["closed"][:2]), str(c["closed"][1])]
        for it, c in COUNTS.items()
    ]
    assert _section_table(page, "documents-accuracy") == expected
    assert expected[1][3:] == ["20.0 [3.6, 62.4]", "5"]  # 1 of 5 graded (one of 6 answers ungraded)


def test_the_examples_show_the_final_answers_before_and_after_marked_by_the_span_rule(tmp_path: Path) -> None:
    page = write_report(make_run(tmp_path)).read_text(encoding="utf-8")

    def answer(text: str, mark: str) -> str:
        return f'<pre>{text}</pre><small class="mark">{mark}</small>'

    rows = _section_table(page, "documents-examples")
    shown = [(book, q, ref_source, before, after) for book, q, ref_source, before, after in rows]
    source = "<small>apollo13 &amp; report.md</small>"
    assert shown == [  # 5 closed-book (changed first, then by id; Houston left out), then 3 open-book
        (
            "closed",
            "&lt;i&gt;Q0&lt;/i&gt; closed: what is it?",
            f"Odyssey<br>{source}",
            answer("Apollo", "wrong"),
            answer("The Odyssey.", "right"),
        ),
        (
            "closed",
            "&lt;i&gt;Q2&lt;/i&gt; closed: what is it?",
            f"Lovell<br>{source}",
            answer("Lovell", "right"),
            answer("Swigert", "wrong"),
        ),
        (
            "closed",
            "&lt;i&gt;Q3&lt;/i&gt; closed: what is it?",
            f"April 13<br>{source}",
            answer("March", "wrong"),
            answer("on April 13, 1970", "right"),
        ),
        (
            "closed",
            "&lt;i&gt;Q1&lt;/i&gt; closed: what is it?",
            f"55 hours<br>{source}",
            answer("55 hours", "right"),
            answer("55 hours", "right"),
        ),
        (
            "closed",
            "&lt;i&gt;Q4&lt;/i&gt; closed: what is it?",
            f"Aquarius<br>{source}",
            answer("Apollo", "wrong"),
            answer("Apollo", "wrong"),
        ),
        (
            "open",
            "&lt;i&gt;Q0&lt;/i&gt; open: what is it?",
            f"200,000 nautical miles<br>{source}",
            answer("I do not know", "wrong"),
            answer("About 200,000 nautical miles.", "right"),
        ),
        (
            "open",
            "&lt;i&gt;Q1&lt;/i&gt; open: what is it?",
            f"oxygen tank<br>{source}",
            answer("The oxygen tank.", "right"),
            answer("The oxygen tank.", "right"),
        ),
        (
            "open",
            "&lt;i&gt;Q2&lt;/i&gt; open: what is it?",
            f"Gene Kranz<br>{source}",
            answer("&lt;script&gt;alert(1)&lt;/script&gt;", "wrong"),
            answer("Kranz", "wrong"),
        ),
    ]
    assert "Houston" not in page and "CHUNK TEXT" not in page and "TRAINING SAMPLE" not in page
    assert "<script" not in page


def test_a_run_without_a_documents_source_has_no_documents_section(tmp_path: Path) -> None:
    page = write_report(make_run(tmp_path, documents=False)).read_text(encoding="utf-8")
    assert 'id="documents"' not in page and "documents-accuracy" not in page and "closed-book" not in page
    assert 'id="metrics"' in page  # the rest of the page is there


def test_span_verdict_matches_whole_words_of_the_final_answer() -> None:
    prompt = _prompt("open", 0, "55 hours")
    assert [span_verdict(prompt, text) for text in ("about 55 Hours.", "155 hours", RESULTS + "55 hours later")] == [
        1.0,
        0.0,
        1.0,
    ]
    assert span_verdict(prompt, "55 hours" + RESULTS + "no idea") == 0.0  # only the text after the results counts


def test_the_summary_table_prints_both_accuracies(tmp_path: Path) -> None:
    with RunStore(make_run(tmp_path) / "run.sqlite", read_only=True) as store:
        rows = iteration_rows(store)
    console = Console(record=True, width=300)
    console.print(documents_table(rows, [TASK]))
    lines = [line for line in console.export_text().splitlines() if re.match(r"\W*\d+ ", line)]
    cells = [[c.strip() for c in re.split(r"[│┃]", line) if c.strip()] for line in lines]
    assert cells == [
        [str(it), f"{_interval(*c['open'][:2])} n={c['open'][1]}", f"{_interval(*c['closed'][:2])} n={c['closed'][1]}"]
        for it, c in COUNTS.items()
    ]
