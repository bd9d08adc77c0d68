"""The review web page: a person rates queued items in a browser on this machine.

One page, no JavaScript and nothing fetched from the network. Generated text is
escaped by Jinja2's autoescape, and the judge's score of an item is shown only
after the person has rated it, so it cannot anchor their rating.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import uvicorn
from fastapi import FastAPI, Form, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse

from autodidact.records import Rating, ReviewItem
from autodidact.review.agreement import PAIR_LABELS, agreement, check_rating, update_agreement
from autodidact.review.rundir import open_store, store_path
from autodidact.store import RunStore

_PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AutoDidact review: {{ run }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
pre { white-space: pre-wrap; background: #f5f5f5; padding: .75rem; border-radius: 4px; }
table { border-collapse: collapse; margin-bottom: 1rem; }
th, td { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
form button { font-size: 1rem; min-width: 2.6rem; height: 2.6rem; margin: .15rem; cursor: pointer; }
.last { background: #eef6ee; padding: .5rem 1rem; border-radius: 4px; }
.muted { color: #666; font-size: .9rem; }
</style></head><body>
<h1>Human review: {{ run }}</h1>
<table>
<tr><th>Checkpoint</th><th>Kind</th><th>Rated</th><th>Agreement with the judge</th></tr>
{% for c in checkpoints %}
<tr><td>iteration {{ c.iteration }}</td><td>{{ c.kind }}</td>
<td id="rated-{{ c.iteration }}">{{ c.rated }} / {{ c.total }}</td>
<td><span id="agreement-{{ c.iteration }}">{{ c.agreement_text }}</span>
<span class="muted">{{ c.measure }}{% if c.accuracy_text %}, accuracy {{ c.accuracy_text }}{% endif %}</span></td></tr>
{% endfor %}
</table>
<p class="muted">Agreement counts once a checkpoint has {{ min_ratings }} ratings.</p>
{% if last %}<p class="last" id="last-rating">{{ last }}</p>{% endif %}
{% if item %}
<h2>Item {{ item.id }} <span class="muted">({{ pending }} pending, task {{ task }})</span></h2>
{% for m in messages %}<div class="muted">{{ m.role }}</div><pre>{{ m.content }}</pre>{% endfor %}
<form method="post" action="/rate">
<input type="hidden" name="item_id" value="{{ item.id }}">
{% if item.kind == "score" %}
<h3>Response</h3><pre id="response">{{ first }}</pre>
<p>How good is this response? 0 = useless, 10 = perfect.</p>
{% for v in range(11) %}<button type="submit" name="value" value="{{ v }}" id="score-{{ v }}">{{ v }}</button>{% endfor %}
{% else %}
<div class="pair">
<div><h3>First</h3><pre id="response-first">{{ first }}</pre></div>
<div><h3>Second</h3><pre id="response-second">{{ second }}</pre></div>
</div>
<p>Which response is better?</p>
<button type="submit" name="value" value="1" id="pick-first">First is better</button>
<button type="submit" name="value" value="0" id="pick-second">Second is better</button>
<button type="submit" name="value" value="0.5" id="pick-tie">Tie</button>
{% endif %}
</form>
{% if skip_to %}<p><a href="/?item={{ skip_to }}" id="skip">Skip this item</a></p>{% endif %}
{% else %}
<p id="all-done">Every item is rated. Thank you.</p>
{% endif %}
</body></html>
""")


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _checkpoints(store: RunStore, min_ratings: int) -> list[dict]:
    """Per checkpoint: iteration, kind, rated, total and the agreement figures."""
    items, ratings = store.review_items(), store.ratings()
    out = []
    for iteration in sorted({i.iteration for i in items}):
        mine = [i for i in items if i.iteration == iteration]
        kind = mine[0].kind
        figures = agreement(mine, ratings, min_ratings)
        out.append({"iteration": iteration, "kind": kind, "rated": int(figures["human_ratings"]),
                    "total": len(mine), **figures})
    return out


def _last_rating_text(store: RunStore, item_id: str) -> str | None:
    """What the person gave an item they just rated and what the judge thought; None unless rated."""
    rating = next((r for r in store.ratings() if r.item_id == item_id), None)
    if rating is None:  # never reveal the judge's view of an item still pending
        return None
    item = store.review_item(item_id)
    if item.kind == "score":
        return f"You gave {item.id} {rating.value:g}; the judge gave {item.judge_score:g}."
    judge = PAIR_LABELS[item.judge_preference]
    return (f"You picked {PAIR_LABELS[rating.value]} for {item.id}; the judge preferred {judge} "
            f"(scores {item.judge_score:g} and {item.other_judge_score:g}).")


def _current(pending: list[ReviewItem], wanted: str | None) -> tuple[ReviewItem | None, str | None]:
    """The item to show (`wanted` if still pending, else the first pending) and the one after it, for skipping."""
    if not pending:
        return None, None
    index = next((k for k, i in enumerate(pending) if i.id == wanted), 0)
    after = pending[(index + 1) % len(pending)].id
    return pending[index], (after if len(pending) > 1 else None)


def create_app(run_dir: Path, min_ratings: int = 5) -> FastAPI:
    """The review app for the run in `run_dir`; AutodidactError if it is not a run directory."""
    run_dir = Path(run_dir)
    store_path(run_dir)
    app = FastAPI(title="AutoDidact review", docs_url=None, redoc_url=None, openapi_url=None)

    # A new store per request: uvicorn serves sync endpoints from a thread pool, and an
    # SQLite connection must stay in the thread that opened it.
    @app.get("/", response_class=HTMLResponse)
    def page(item: str | None = None, rated: str | None = None) -> str:
        with open_store(run_dir) as store:
            pending = store.review_items(pending=True)
            current, skip_to = _current(pending, item)
            context = {"run": run_dir.resolve().name, "min_ratings": min_ratings, "pending": len(pending),
                       "item": current, "skip_to": skip_to,
                       "last": _last_rating_text(store, rated) if rated else None}
            context["checkpoints"] = [
                {**c, "agreement_text": _figure(c["human_agreement"]),
                 "measure": "Spearman ρ" if c["kind"] == "score" else "Cohen's κ",
                 "accuracy_text": _figure(c["human_accuracy"]) if c["kind"] == "pair" else None}
                for c in _checkpoints(store, min_ratings)
            ]
            if current is not None:
                prompt = store.prompt(current.prompt_id)
                context.update(task=prompt.task, messages=prompt.messages, first=store.sample(current.sample_id).text,
                               second=store.sample(current.other_sample_id).text if current.other_sample_id else None)
            return _PAGE.render(context)

    @app.post("/rate")
    def rate(item_id: str = Form(...), value: str = Form(...)) -> RedirectResponse:
        with open_store(run_dir) as store:
            try:
                item = store.review_item(item_id)
            except KeyError:
                raise HTTPException(404, f"unknown review item {item_id!r}") from None
            try:
                checked = check_rating(item, float(value))
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from None
            with store.transaction():
                store.rate(Rating(item_id=item.id, value=checked, source="web"))
                update_agreement(store, item.iteration, min_ratings)
        return RedirectResponse(f"/?rated={item.id}", status_code=303)

    @app.get("/api/status")
    def status() -> dict:
        with open_store(run_dir) as store:
            return {"pending": len(store.review_items(pending=True)), "min_ratings": min_ratings,
                    "checkpoints": _checkpoints(store, min_ratings)}

    return app


def serve(run_dir: Path, host: str = "127.0.0.1", port: int = 8765, min_ratings: int = 5) -> None:
    """Serve the review page until interrupted (Ctrl+C)."""
    uvicorn.run(create_app(run_dir, min_ratings), host=host, port=port, access_log=False)
