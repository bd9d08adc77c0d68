"""Human validation checkpoints: the queue, agreement, import, terminal mode and the review app."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from rich.console import Console
from sklearn.metrics import cohen_kappa_score

from autodidact.apps.review.app import create_app
from autodidact.apps.review.cli import review_command
from autodidact.apps.review.terminal import review_in_terminal
from autodidact.config import ReviewConfig
from autodidact.errors import AutodidactError
from autodidact.records import Judgment, Prompt, Rating, ReviewItem, Sample
from autodidact.review import agreement, build_checkpoint, import_ratings
from autodidact.store import RunStore

# 12 distinct scores over 4 prompts x 3 samples; ranked, the strata of 4 are {0,1,2} {3,4,5} {6,7,8} {9,9.5,10}.
SCORES = {"p0": [0, 7, 2], "p1": [10, 4, 9], "p2": [5, 1, 9.5], "p3": [3, 8, 6]}


def add_judged(store: RunStore, scores: dict[str, list[float | None]], iteration: int = 1, judge: str = "self",
               split: str = "train", texts: dict[str, str] | None = None) -> None:
    """Add prompts, one sample per score (id '{prompt}-s{k}') and the judge's judgments."""
    texts = texts or {}
    with store.transaction():
        store.add_prompts([Prompt(id=p, task="arith", split=split, messages=[{"role": "user", "content": f"ask {p}"}])
                           for p in scores])
        store.add_samples([Sample(id=f"{p}-s{k}", prompt_id=p, iteration=iteration, index=k,
                                  text=texts.get(f"{p}-s{k}", f"answer {p}-s{k}"), num_tokens=3)
                           for p, values in scores.items() for k in range(len(values))])
        store.add_judgments([Judgment(sample_id=f"{p}-s{k}", judge=judge, score=None if v is None else float(v))
                             for p, values in scores.items() for k, v in enumerate(values)])


def build_run(run_dir: Path, items: list[ReviewItem], scores=SCORES, texts=None) -> RunStore:
    """A run directory whose store holds the judged samples of SCORES and the given review items."""
    run_dir.mkdir(parents=True, exist_ok=True)
    store = RunStore(run_dir / "run.sqlite")
    add_judged(store, scores, texts=texts)
    with store.transaction():
        store.add_review_items(items)
    return store


@contextmanager
def serving(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def review_client(run_dir: Path, **kwargs) -> TestClient:
    """A test client of the review app; it says Host 127.0.0.1, since a loopback page answers only to loopback."""
    return TestClient(create_app(run_dir, **kwargs), base_url="http://127.0.0.1")


def score_item(id: str, sample_id: str, judge_score: float, iteration: int = 1) -> ReviewItem:
    return ReviewItem(id=id, iteration=iteration, kind="score", prompt_id=sample_id.split("-")[0], sample_id=sample_id,
                      judge_score=judge_score)


def pair_item(id: str, first: str, second: str, first_score: float, second_score: float,
              iteration: int = 1) -> ReviewItem:
    return ReviewItem(id=id, iteration=iteration, kind="pair", prompt_id=first.split("-")[0], sample_id=first,
                      judge_score=first_score, other_sample_id=second, other_judge_score=second_score)


# --- the queue -----------------------------------------------------------------


def test_score_checkpoint_draws_one_item_from_each_score_stratum(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    add_judged(store, SCORES)
    add_judged(store, {"h0": [10, 0, 5]}, split="heldout")  # held-out samples are never reviewed
    with store.transaction():  # another judge's scores do not count
        store.add_judgments([Judgment(sample_id="p0-s0", judge="other", score=10.0)])

    items = build_checkpoint(store, 1, "self", ReviewConfig(items=4), relative=False, seed=0)

    assert [(i.id, i.sample_id, i.judge_score) for i in items] == [
        ("ckpt1-1", "p2-s1", 1.0), ("ckpt1-2", "p3-s2", 6.0), ("ckpt1-3", "p1-s1", 4.0), ("ckpt1-4", "p2-s2", 9.5),
    ]
    ranks = sorted(sorted(v for values in SCORES.values() for v in values).index(i.judge_score) // 3 for i in items)
    assert ranks == [0, 1, 2, 3]  # one per stratum, in shuffled order
    assert {i.kind for i in items} == {"score"} and {i.iteration for i in items} == {1}
    assert build_checkpoint(store, 1, "self", ReviewConfig(items=4), relative=False, seed=0) == items


def test_score_checkpoint_skips_failed_judgments_and_returns_fewer_when_short(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    add_judged(store, {"p0": [3, None, 8], "p1": [None, 5]})

    items = build_checkpoint(store, 1, "self", ReviewConfig(items=10), relative=False, seed=1)

    assert sorted(i.sample_id for i in items) == ["p0-s0", "p0-s2", "p1-s1"]
    assert sorted(i.id for i in items) == ["ckpt1-1", "ckpt1-2", "ckpt1-3"]
    assert build_checkpoint(store, 2, "self", ReviewConfig(items=10), relative=False, seed=1) == []


def test_pair_checkpoint_pairs_one_prompt_with_different_scores_in_random_order(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    add_judged(store, {**SCORES, "p4": [6, 6, 6]})  # p4: equal scores, no pair

    items = build_checkpoint(store, 1, "self", ReviewConfig(items=4), relative=True, seed=0)  # 'auto' -> pair

    assert [i.id for i in items] == ["ckpt1-1", "ckpt1-2", "ckpt1-3", "ckpt1-4"]
    for item in items:
        assert item.kind == "pair"
        assert item.sample_id.split("-")[0] == item.other_sample_id.split("-")[0] == item.prompt_id != "p4"
        assert item.judge_score != item.other_judge_score
    assert len({i.prompt_id for i in items}) == 4  # a fresh prompt is preferred in each stratum
    # Stratified by gap: the smallest and the largest quarter of the 12 candidate gaps are both represented.
    gaps = sorted(abs(a - b) for v in SCORES.values() for k, a in enumerate(v) for b in v[k + 1:])
    picked = sorted(abs(i.judge_score - i.other_judge_score) for i in items)
    assert picked[0] <= gaps[2] and picked[-1] >= gaps[9]
    # Position carries no information: across seeds the judge's favourite is sometimes shown second.
    firsts = {i.judge_preference for seed in range(10)
              for i in build_checkpoint(store, 1, "self", ReviewConfig(items=4), relative=True, seed=seed)}
    assert firsts == {0.0, 1.0}


def test_kind_setting_overrides_auto(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    add_judged(store, SCORES)
    scores = build_checkpoint(store, 1, "self", ReviewConfig(items=3, kind="score"), relative=True, seed=0)
    pairs = build_checkpoint(store, 1, "self", ReviewConfig(items=3, kind="pair"), relative=False, seed=0)
    assert [i.kind for i in scores] == ["score"] * 3 and [i.kind for i in pairs] == ["pair"] * 3


# --- agreement -----------------------------------------------------------------


def test_agreement_of_monotone_scores_is_one_and_needs_min_ratings():
    items = [score_item(f"i{k}", f"p0-s{k}", judge) for k, judge in enumerate([2, 4, 5, 8, 10])]
    ratings = [Rating(f"i{k}", human) for k, human in enumerate([1, 3, 6, 7, 9])]

    assert agreement(items, ratings, min_ratings=5) == {
        "human_ratings": 5.0, "human_spearman": 1.0, "human_accuracy": None, "human_kappa": None,
        "human_agreement": 1.0,
    }
    assert agreement(items, ratings, min_ratings=6)["human_agreement"] is None
    assert agreement(items, ratings[:1], min_ratings=1)["human_spearman"] is None  # one point
    flat = [Rating(r.item_id, 5.0) for r in ratings]
    assert agreement(items, flat, min_ratings=2)["human_agreement"] is None  # constant: undefined, not 0


def test_agreement_of_pair_choices_is_accuracy_and_kappa():
    # The judge prefers first, second, first, second; the person picks first, second, first, first.
    items = [pair_item("a", "p0-s0", "p0-s1", 9, 1), pair_item("b", "p1-s0", "p1-s1", 2, 8),
             pair_item("c", "p2-s0", "p2-s1", 7, 3), pair_item("d", "p3-s0", "p3-s1", 4, 6)]
    ratings = [Rating("a", 1.0), Rating("b", 0.0), Rating("c", 1.0), Rating("d", 1.0)]

    figures = agreement(items, ratings, min_ratings=4)

    expected = cohen_kappa_score(["first", "second", "first", "first"], ["first", "second", "first", "second"])
    assert figures["human_accuracy"] == 0.75
    assert figures["human_kappa"] == pytest.approx(expected) == pytest.approx(0.5)
    assert figures["human_agreement"] == figures["human_kappa"] and figures["human_spearman"] is None
    same = agreement(items[:1] + items[2:3], [Rating("a", 1.0), Rating("c", 1.0)], min_ratings=1)
    assert same["human_accuracy"] == 1.0 and same["human_kappa"] is None  # one label on both sides: undefined


def test_update_agreement_stores_the_figures_and_replaces_them(tmp_path):
    from autodidact.review import update_agreement

    store = build_run(tmp_path, [score_item("i0", "p0-s0", 0), score_item("i1", "p0-s1", 7)])
    with store.transaction():
        store.rate(Rating("i0", 1.0))
        store.rate(Rating("i1", 8.0))
    assert update_agreement(store, 1, min_ratings=2)["human_agreement"] == 1.0
    with store.transaction():
        store.rate(Rating("i1", 0.0))
    update_agreement(store, 1, min_ratings=2)
    assert store.metric(1, "human_agreement") == -1.0 and store.metric(1, "human_ratings") == 2.0


# --- import --------------------------------------------------------------------


def _import_run(tmp_path) -> RunStore:
    return build_run(tmp_path / "run", [score_item("s1", "p0-s0", 0), score_item("s2", "p0-s1", 7),
                                        pair_item("q1", "p1-s0", "p1-s1", 10, 4, iteration=2),
                                        pair_item("q2", "p2-s0", "p2-s1", 5, 1, iteration=2)])


def test_import_csv_and_jsonl_store_ratings_and_update_agreement(tmp_path):
    store = _import_run(tmp_path)
    (tmp_path / "r.csv").write_text("item_id,rating\ns1,2\ns2,6.5\n")
    (tmp_path / "r.jsonl").write_text('{"item_id": "q1", "rating": "first"}\n\n{"item_id": "q2", "rating": 0}\n')

    assert import_ratings(store, tmp_path / "r.csv", min_ratings=2) == 2
    assert import_ratings(store, tmp_path / "r.jsonl", rater="ann", min_ratings=2) == 2

    assert [(r.item_id, r.value, r.rater, r.source) for r in store.ratings()] == [
        ("s1", 2.0, "import", "import"), ("s2", 6.5, "import", "import"),
        ("q1", 1.0, "ann", "import"), ("q2", 0.0, "ann", "import"),
    ]
    assert store.metric(1, "human_agreement") == 1.0
    assert store.metric(2, "human_accuracy") == 0.5


@pytest.mark.parametrize(("name", "text", "message"), [
    ("r.csv", "item_id,rating\ns1,3\nnope,4\n", "r.csv:3: unknown review item 'nope'"),
    ("r.csv", "item_id,rating\ns1,3\ns2,11\n", "r.csv:3: item 's2': a score is a number from 0 to 10, not 11"),
    ("r.csv", "item_id,rating\ns1,3\ns2,good\n", "r.csv:3: item 's2': rating 'good' is not a number from 0 to 10"),
    ("r.csv", "item_id,rating\nq1,maybe\n", "r.csv:2: item 'q1': rating 'maybe' is not first, second, tie or 1/0/0.5"),
    ("r.csv", "item_id,rating\nq1,0.7\n", "r.csv:2: item 'q1': a pair rating is 1 (first better), 0 (second better)"),
    ("r.csv", "item,score\ns1,3\n", "r.csv:1: missing column(s) item_id, rating"),
    ("r.csv", "item_id,rating\ns1,3\ns1,4\n", "r.csv:3: item 's1' is rated again (first on line 2)"),
    ("r.csv", "item_id,rating\n", "r.csv: no ratings found"),
    ("r.jsonl", '{"item_id": "s1", "rating": 3}\n{"item_id": "s2"}\n', "r.jsonl:2: expected an object with keys"),
    ("r.jsonl", '{"item_id": "s1", "rating": 3}\n{oops\n', "r.jsonl:2: not valid JSON"),
    ("r.jsonl", '{"item_id": "s1", "rating": true}\n', "r.jsonl:1: item 's1': expected a number"),
    ("r.txt", "s1 3\n", "unknown ratings file type '.txt'"),
])
def test_import_errors_name_file_line_and_problem_and_store_nothing(tmp_path, name, text, message):
    store = _import_run(tmp_path)
    (tmp_path / name).write_text(text)
    with pytest.raises(AutodidactError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_ratings(store, tmp_path / name)
    assert store.ratings() == []  # all or nothing: the valid first line was not kept


# --- terminal ------------------------------------------------------------------


def test_terminal_review_reasks_on_bad_input_skips_and_quits(tmp_path):
    store = build_run(tmp_path, [score_item("i1", "p0-s0", 0), pair_item("i2", "p1-s0", "p1-s1", 10, 4),
                                 score_item("i3", "p0-s1", 7)],
                      texts={"p0-s0": "[bold]not markup[/bold]"})
    answers = iter(["11", "abc", "3", "x", "2", "q"])
    out = io.StringIO()

    stored = review_in_terminal(tmp_path, console=Console(file=out, width=100), input_fn=lambda _: next(answers),
                                min_ratings=2)

    assert stored == 2
    assert [(r.item_id, r.value, r.source) for r in store.ratings()] == [
        ("i1", 3.0, "terminal"), ("i2", 0.0, "terminal"),
    ]
    text = out.getvalue()
    assert "[bold]not markup[/bold]" in text  # generated text printed as text, not rich markup
    assert "type a score from 0 to 10" in text and "type 1 (first is better)" in text
    assert "the judge gave 0" in text and "the judge preferred first" in text
    assert store.metric(1, "human_ratings") == 2.0


def test_terminal_review_skip_and_end_of_input(tmp_path):
    store = build_run(tmp_path, [score_item("i1", "p0-s0", 0), score_item("i2", "p0-s1", 7)])
    answers = iter(["s", "9"])
    assert review_in_terminal(tmp_path, console=Console(file=io.StringIO()), input_fn=lambda _: next(answers)) == 1
    assert [(r.item_id, r.value) for r in store.ratings()] == [("i2", 9.0)]

    def eof(_: str) -> str:
        raise EOFError

    assert review_in_terminal(tmp_path, console=Console(file=io.StringIO()), input_fn=eof) == 0


# --- the command ---------------------------------------------------------------


def test_review_command_checks_the_run_directory_and_the_queue(tmp_path):
    with pytest.raises(AutodidactError, match="is not a run directory"):
        review_command(tmp_path, terminal=True)
    RunStore(tmp_path / "run.sqlite").close()
    with pytest.raises(AutodidactError, match="no review items .*set review.every"):
        review_command(tmp_path, terminal=True)

    _import_run(tmp_path)
    (tmp_path / "r.jsonl").write_text(json.dumps({"item_id": "s1", "rating": 4}) + "\n")
    out = io.StringIO()
    review_command(tmp_path / "run", import_file=tmp_path / "r.jsonl", console=Console(file=out))
    assert "imported 1 rating(s)" in out.getvalue() and "checkpoint 1: agreement —" in out.getvalue()


# --- the web app ---------------------------------------------------------------


def test_app_hides_judge_score_until_rated_and_stores_web_rating(tmp_path):
    store = build_run(tmp_path, [score_item("i1", "p0-s0", 7.25), score_item("i2", "p0-s1", 3.75)],
                      texts={"p0-s0": "<script>alert('x')</script> & more"})
    client = review_client(tmp_path, min_ratings=2)

    page = client.get("/").text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in page
    assert "<script>" not in page
    assert "7.25" not in page and "3.75" not in page  # no judge score before the person rates
    assert 'id="rated-1">0 / 2<' in page and 'id="agreement-1">—<' in page

    response = client.post("/rate", data={"item_id": "i1", "value": "8"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/?rated=i1"
    assert [(r.item_id, r.value, r.source) for r in store.ratings()] == [("i1", 8.0, "web")]

    page = client.get("/?rated=i1").text
    assert "the judge gave 7.25" in page and "3.75" not in page  # the pending item's score stays hidden
    assert 'id="rated-1">1 / 2<' in page
    assert client.get("/?rated=i2").text.count("3.75") == 0  # asking about a pending item reveals nothing

    client.post("/rate", data={"item_id": "i2", "value": "2"})
    page = client.get("/").text
    assert 'id="agreement-1">1.000<' in page and 'id="all-done"' in page
    status = client.get("/api/status").json()
    assert status["pending"] == 0
    assert status["checkpoints"][0] == {
        "iteration": 1, "kind": "score", "rated": 2, "total": 2, "human_ratings": 2.0, "human_spearman": 1.0,
        "human_accuracy": None, "human_kappa": None, "human_agreement": 1.0,
    }
    assert store.metric(1, "human_agreement") == 1.0


def test_app_pair_page_skip_and_bad_requests(tmp_path):
    store = build_run(tmp_path, [pair_item("i1", "p1-s0", "p1-s1", 10, 4), pair_item("i2", "p2-s0", "p2-s1", 5, 1)])
    client = review_client(tmp_path)

    page = client.get("/").text
    assert 'id="pick-first"' in page and 'id="pick-tie"' in page and "answer p1-s1" in page
    assert 'href="/?item=i2"' in page and "answer p2-s0" in client.get("/?item=i2").text

    assert client.post("/rate", data={"item_id": "i1", "value": "0.7"}).status_code == 400
    assert client.post("/rate", data={"item_id": "i1", "value": "abc"}).status_code == 400
    assert client.post("/rate", data={"item_id": "zzz", "value": "1"}).status_code == 404
    evil = client.post("/rate", data={"item_id": "i1", "value": "1"}, headers={"origin": "http://evil.example"})
    assert evil.status_code == 403
    assert store.ratings() == []
    client.post("/rate", data={"item_id": "i1", "value": "0.5"})
    assert "You picked tie for i1; the judge preferred first" in client.get("/?rated=i1").text
    assert store.ratings() == [Rating("i1", 0.5, "", "web")]

    with pytest.raises(AutodidactError, match="not a run directory"):
        create_app(tmp_path / "missing")
