"""Hostile generated text is shown as text, in a real headless Chromium: the review page (served) and the report
(opened as a file) run none of it, and show every string literally.

Needs Debian's `chromium` at /usr/bin/chromium and the `playwright` Python package; skipped without them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_report import make_run
from test_review import build_run, pair_item, score_item, serving
from test_review_browser import CHROMIUM, CHROMIUM_ARGS, sync_api

from autodidact.apps.report import write_report
from autodidact.apps.review.app import create_app
from autodidact.records import Alert, Judgment, Prompt, Rating, Sample
from autodidact.store import RunStore

# Each would set window.__pwned, open a dialog, or change the page if it reached the page as markup or template.
HOSTILE = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1;alert(1)">',
    '<a href="javascript:window.__pwned=1" id="evil-link">click</a>',
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    "</pre><script>window.__pwned=1</script><pre>",
    "</td></tr></table><script>window.__pwned=1</script>",
    "</title></style></textarea><script>alert(document.domain)</script>",
    '"><script>window.__pwned=1</script><input value="',
    "'><svg onload=window.__pwned=1>",
    '<body onload="window.__pwned=1">',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__pwned=1">',
    '<form action="javascript:window.__pwned=1"><button id="evil-button">go</button></form>',
    "<style>body{display:none}</style>",
    "{{ 7*7 }}",
    "{% if true %}jinja ran{% endif %}",
    "already escaped: &lt;b&gt; &amp; &#x3C;",
]


def hostile(k: int) -> str:
    return f"h{k}: {HOSTILE[k % len(HOSTILE)]}"


def _review_run(run_dir: Path) -> tuple[RunStore, list[str]]:
    """A run whose prompts, roles, task, samples, judge rationales, alerts and one item id are hostile."""
    store = build_run(run_dir, [])
    texts = [hostile(k) for k in range(len(HOSTILE))]
    with store.transaction():
        store.add_prompts([Prompt(id=f"x{k}", task=f"task {hostile(k)}", split="train",
                                  messages=[{"role": f"role {hostile(k + 1)}", "content": hostile(k + 2)},
                                            {"role": "user", "content": hostile(k + 3)}])
                           for k in range(len(HOSTILE))])
        store.add_samples([Sample(id=f"x{k}-s{j}", prompt_id=f"x{k}", iteration=1, index=j,
                                  text=hostile(k + 4 + 7 * j), num_tokens=3)
                           for k in range(len(HOSTILE)) for j in range(2)])
        store.add_judgments([Judgment(sample_id=f"x{k}-s{j}", judge="self", score=float(k % 10),
                                      rationale=hostile(k + 5)) for k in range(len(HOSTILE)) for j in range(2)])
        store.add_alerts([Alert(1, "reliability", hostile(9), stop=False)])
        items = [score_item(f"score-{k}", f"x{k}-s0", k % 10) for k in range(len(HOSTILE))]
        items += [pair_item(f"pair-{k}", f"x{k}-s0", f"x{k}-s1", 2, 8) for k in range(len(HOSTILE))]
        items.append(score_item('evil"><script>window.__pwned=1</script>&item=1', "x0-s1", 4))
        store.add_review_items(items)
    return store, texts


class Browser:
    """One headless Chromium page that records dialogs; `inert(page)` checks nothing ran or was injected."""

    def __init__(self, pw, bypass_csp: bool = False) -> None:
        self.browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        self.page = self.browser.new_context(bypass_csp=bypass_csp).new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))

    def open(self, url: str) -> str:
        self.page.goto(url, wait_until="load")
        self.page.wait_for_timeout(100)  # room for an onerror / onload handler or a meta refresh to fire
        return self.page.inner_text("body")

    def injected(self, allowed_images: int = 0) -> dict[str, object]:
        """What would show that markup got in: the flag, dialogs, script-capable or active elements."""
        found = self.page.evaluate("""() => ({
            pwned: typeof window.__pwned,
            scripts: document.querySelectorAll('script').length,
            frames: document.querySelectorAll('iframe, frame, object, embed, svg, math, meta[http-equiv], base').length,
            images: document.querySelectorAll('img').length,
            handlers: [...document.querySelectorAll('*')].filter(
                e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
            javascript_urls: [...document.querySelectorAll('[href], [src], [action]')].filter(
                e => ['href', 'src', 'action'].some(n => /^\\s*javascript:/i.test(e.getAttribute(n) || ''))).length,
            planted: document.querySelectorAll('#evil-link, #evil-button, style').length,
            hidden_body: getComputedStyle(document.body).display === 'none',
        })""")
        found["dialogs"] = list(self.dialogs)
        found["extra_images"] = found.pop("images") - allowed_images
        return found

    def close(self) -> None:
        self.browser.close()


CLEAN = {"pwned": "undefined", "scripts": 0, "frames": 0, "handlers": 0, "javascript_urls": 0, "planted": 1,
         "hidden_body": False, "dialogs": [], "extra_images": 0}  # planted 1: the page's own <style>


def _shows_literally(text: str, strings: list[str]) -> None:
    """Every string is in the page's visible text as written; the template strings were not evaluated."""
    missing = [s for s in strings if s not in text]
    assert missing == []
    assert "{{ 7*7 }}" in text and text.count("jinja ran") == text.count("{% if true %}jinja ran{% endif %}") > 0


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "escaping-alone"])
def test_review_page_shows_hostile_text_as_text_and_runs_none_of_it(tmp_path, bypass_csp):
    store, texts = _review_run(tmp_path)
    items = store.review_items()
    seen = ""
    with serving(create_app(tmp_path, min_ratings=2)) as url, sync_api.sync_playwright() as pw:
        browser = Browser(pw, bypass_csp=bypass_csp)
        try:
            shown = [items[0], *(i for i in items if i.kind == "pair")]  # a pair page shows both samples
            for item in shown:
                seen += browser.open(f"{url}/?item={item.id}")
                assert browser.injected() == CLEAN, item.id
                assert f"Item {item.id}" in seen
            # The item with a hostile id: its page, its skip link, its rating and the redirect after it.
            evil = items[-1]
            browser.open(f"{url}/?item={items[-2].id}")
            browser.page.click("#skip")
            assert browser.page.inner_text("h2").startswith(f"Item {evil.id} ")
            browser.page.click("#score-6")
            browser.page.wait_for_url("**/?rated=*")
            assert browser.page.inner_text("#last-rating") == f"You gave {evil.id} 6; the judge gave 4."
            browser.page.wait_for_timeout(150)
            assert browser.injected() == CLEAN
        finally:
            browser.close()
    prompts = [hostile(k) for k in range(2, len(HOSTILE) + 3)]
    samples = [hostile(k + 4 + 7 * j) for k in range(len(HOSTILE)) for j in range(2)]
    roles = [f"role {hostile(k + 1)}" for k in range(len(HOSTILE))]
    _shows_literally(seen, [*texts, *prompts, *samples, *roles, *(f"task {t}" for t in texts)])
    assert store.ratings() == [Rating(evil.id, 6.0, "", "web")]
    assert len(items) == 2 * len(HOSTILE) + 1 and len(shown) == len(HOSTILE) + 1


def test_review_page_csp_blocks_markup_that_got_in(tmp_path):
    """Were escaping ever lost, the Content-Security-Policy would still stop inline script and handlers."""
    _review_run(tmp_path)
    with serving(create_app(tmp_path)) as url, sync_api.sync_playwright() as pw:
        browser = Browser(pw)
        try:
            browser.open(url)
            browser.page.evaluate("""() => {
                document.body.insertAdjacentHTML('beforeend', '<img src="x" onerror="window.__pwned=1">');
                const s = document.createElement('script'); s.textContent = 'window.__pwned = 2';
                document.body.appendChild(s);
            }""")
            browser.page.wait_for_timeout(300)
            assert browser.page.evaluate("typeof window.__pwned") == "undefined"
        finally:
            browser.close()


def _hostile_report_run(tmp_path: Path) -> tuple[Path, list[str]]:
    """test_report's run plus hostile config values, stop reason, prompt, samples, rationales, alerts, metric names."""
    run_dir = make_run(tmp_path)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["name"] = hostile(0)
    config["model"]["name"] = hostile(1)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    shown = [hostile(k) for k in range(len(HOSTILE))]
    with RunStore(run_dir / "run.sqlite") as store, store.transaction():
        store.set_meta("stop_reason", hostile(2))
        store.add_prompts([Prompt("evil", "arithmetic", "train", [{"role": "user", "content": hostile(3)}])])
        store.add_samples([Sample("it2-evil-0", "evil", 2, 0, hostile(4), 3), Sample("it2-evil-1", "evil", 2, 1,
                                                                                     hostile(5), 3)])
        store.add_judgments([Judgment("it2-evil-0", "direct", 9.0, rationale=hostile(6)),
                             Judgment("it2-evil-1", "direct", 1.0, rationale=hostile(7))])
        store.add_alerts([Alert(2, f"bias{k}", hostile(k), stop=False) for k in range(8, len(HOSTILE))])
        store.add_alerts([Alert(2, f"monitor {hostile(10)}", "monitor name", stop=False)])
        store.add_metrics(2, {f"metric {hostile(11)}": 1.5})
    return run_dir, [*shown, f"monitor {hostile(10)}", f"metric {hostile(11)}"]


def test_report_shows_hostile_text_as_text_and_runs_none_of_it(tmp_path):
    run_dir, strings = _hostile_report_run(tmp_path)
    path = write_report(run_dir)
    with sync_api.sync_playwright() as pw:
        browser = Browser(pw)
        try:
            text = browser.open(path.resolve().as_uri())
            assert browser.injected(allowed_images=8) == CLEAN
            browser.page.click("details:not([open]) summary", timeout=5000)  # the older iteration's examples too
            text += browser.page.inner_text("body")
            own_images = browser.page.evaluate(
                "[...document.querySelectorAll('img')].every(i => i.src.startsWith('data:image/png;base64,'))")
            assert own_images
        finally:
            browser.close()
    _shows_literally(text, strings)
