"""The review page in a real headless Chromium: a rating clicked in the page lands in the store.

Needs Debian's `chromium` at /usr/bin/chromium and the `playwright` Python package
(driven with `executable_path`, so no browser download); skipped without them, except
under CI (the CI environment variable set), where their absence is a failure.
Set AUTODIDACT_SCREENSHOT_DIR to save a screenshot of the page (for the docs).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import pytest
from test_review import build_run, pair_item, score_item, serving

from autodidact.apps.review.app import create_app
from autodidact.records import Rating

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _missing_browser() -> str | None:
    """What this test needs and lacks: Debian's chromium or the playwright package; None when both are there."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: install Debian's chromium (sudo apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the 'playwright' Python package is not installed: pip install -e '.[test]' (never `playwright install`)"
    return None


if (missing := _missing_browser()) is not None:
    if os.environ.get("CI"):  # a skip would let CI report green without ever opening the page
        pytest.fail(f"the review page's browser test cannot run under CI: {missing}", pytrace=False)
    pytest.skip(missing, allow_module_level=True)
sync_api = importlib.import_module("playwright.sync_api")


@pytest.fixture
def served(tmp_path):
    """The review app of a small run, served by uvicorn on a free local port: yields (base url, store)."""
    # Checkpoint 1 (scores): two items already rated in agreement with the judge, one pending.
    # Checkpoint 2 (pairs): one item rated against the judge, one pending.
    store = build_run(tmp_path, [score_item("a", "p0-s0", 2), score_item("b", "p0-s1", 5), score_item("c", "p0-s2", 8),
                                 pair_item("p", "p1-s0", "p1-s1", 9, 1, iteration=2),
                                 pair_item("q", "p2-s0", "p2-s1", 3, 7, iteration=2)],
                      texts={"p0-s2": "<b>bold?</b> 8 + 5 = 13"})
    with store.transaction():
        for item_id, value in [("a", 3.0), ("b", 4.0), ("p", 0.0)]:
            store.rate(Rating(item_id, value, source="import"))
    with serving(create_app(tmp_path, min_ratings=2)) as url:
        yield url, store


def _screenshot(page, name: str) -> None:
    """Save the page as AUTODIDACT_SCREENSHOT_DIR/name when that variable is set (pictures for the docs)."""
    if os.environ.get("AUTODIDACT_SCREENSHOT_DIR"):
        shots = Path(os.environ["AUTODIDACT_SCREENSHOT_DIR"])
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / name), full_page=True)


def test_rating_in_the_page_lands_in_the_store_and_changes_agreement(served):
    url, store = served
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            assert page.text_content("#agreement-1") == "1.000"  # human 3, 4 vs judge 2, 5
            assert page.text_content("#agreement-2") == "—"  # one pair rating, 2 needed
            assert page.text_content("#response") == "<b>bold?</b> 8 + 5 = 13"  # escaped, shown as text

            _screenshot(page, "review-score.png")

            page.click("#score-1")  # item c: the judge gave 8, the person 1
            page.wait_for_url("**/?rated=c")
            # human 3, 4, 1 vs judge 2, 5, 8: rank differences 1, 1, -2 -> rho = 1 - 6*6 / (3*8) = -0.5
            assert page.text_content("#agreement-1") == "-0.500"
            assert page.text_content("#rated-1") == "3 / 3"
            assert "the judge gave 8" in page.text_content("#last-rating")
            _screenshot(page, "review-pair.png")

            page.click("#pick-first")  # item q: the judge preferred the second
            page.wait_for_url("**/?rated=q")
            # person: second, first vs judge: first, second -> accuracy 0, kappa -1
            assert page.text_content("#agreement-2") == "-1.000"
            assert page.is_visible("#all-done")
        finally:
            browser.close()

    assert [(r.item_id, r.value, r.source) for r in store.ratings()] == [
        ("a", 3.0, "import"), ("b", 4.0, "import"), ("c", 1.0, "web"), ("p", 0.0, "import"), ("q", 1.0, "web"),
    ]
    assert store.metric(1, "human_agreement") == -0.5 and store.metric(2, "human_kappa") == -1.0


def test_a_token_page_is_opened_once_with_the_token_then_rated_by_cookie(tmp_path):
    token = "browser-token-0123456789abcdef"
    store = build_run(tmp_path, [score_item("a", "p0-s0", 2), score_item("b", "p0-s1", 5)])
    with serving(create_app(tmp_path, token=token)) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            assert page.goto(url).status == 401
            assert page.goto(f"{url}/?token=wrong-token-0123456789").status == 403
            page.goto(f"{url}/?item=b&token={token}")
            assert page.url == f"{url}/?item=b"  # the token left the address bar (and the history)
            assert page.evaluate("document.cookie") == ""  # HttpOnly: no script could read it
            page.click("#score-7")
            page.wait_for_url("**/?rated=b")
            assert "the judge gave 5" in page.text_content("#last-rating")
            other = context.new_page()  # another tab: the cookie still admits it
            assert other.goto(f"{url}/api/status").status == 200
        finally:
            browser.close()
    assert [(r.item_id, r.value, r.source) for r in store.ratings()] == [("b", 7.0, "web")]
