"""The review web page: a person rates queued items in a browser on this machine.

One page, no JavaScript and nothing fetched from the network. Generated text is
escaped by Jinja2's autoescape (and `guard` forbids scripts on every response),
and the judge's score of an item is shown only after the person has rated it,
so it cannot anchor their rating. Nothing is served from disk: the three routes
read the run's store, and item ids are only looked up there.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit

import jinja2
import uvicorn
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from autodidact.apps.review.guard import ReviewGuard, check_serving
from autodidact.apps.review.rundir import open_store, store_path
from autodidact.records import Rating, ReviewItem
from autodidact.review.agreement import PAIR_LABELS, agreement, check_rating, update_agreement
from autodidact.store import RunStore

# Autoescape on: prompts and responses are model output and must reach the page as text, never as HTML.
_PAGE = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True).get_template(
    "page.html.j2"
)


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


def _known(store: RunStore, item_id: str) -> ReviewItem:
    """The review item `item_id`, or a 404 (its id shortened: it came from the request)."""
    try:
        return store.review_item(item_id)
    except KeyError:
        raise HTTPException(404, f"unknown review item {item_id[:80]!r}") from None


def create_app(run_dir: Path, min_ratings: int = 5, token: str | None = None) -> FastAPI:
    """The review app for the run in `run_dir`.

    Args:
        run_dir: The run directory.
        min_ratings: Ratings a checkpoint needs before its agreement counts.
        token: The token every request must carry (see `guard`); None: loopback requests only.

    Raises:
        AutodidactError: `run_dir` is not a run directory, or the token is too weak.
    """
    run_dir = Path(run_dir)
    store_path(run_dir)
    if token is not None:
        check_serving("127.0.0.1", token)
    app = FastAPI(title="AutoDidact review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ReviewGuard, token=token)

    # A new store per request: uvicorn serves sync endpoints from a thread pool, and an
    # SQLite connection must stay in the thread that opened it.
    @app.get("/", response_class=HTMLResponse)
    def page(item: str | None = None, rated: str | None = None) -> str:
        with open_store(run_dir) as store:
            for asked in (item, rated):
                if asked is not None:
                    _known(store, asked)
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
    def rate(request: Request, item_id: str = Form(...), value: str = Form(...)) -> RedirectResponse:
        # Another site open in the same browser could post here; a browser names that site in Origin.
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "ratings are accepted only from the review page itself")
        with open_store(run_dir) as store:
            item = _known(store, item_id)
            try:
                checked = check_rating(item, float(value))
            except ValueError as exc:
                raise HTTPException(400, str(exc)) from None
            with store.transaction():
                store.rate(Rating(item_id=item.id, value=checked, source="web"))
                update_agreement(store, item.iteration, min_ratings)
        return RedirectResponse(f"/?rated={quote(item.id, safe='')}", status_code=303)

    @app.get("/api/status")
    def status() -> dict:
        with open_store(run_dir) as store:
            return {"pending": len(store.review_items(pending=True)), "min_ratings": min_ratings,
                    "checkpoints": _checkpoints(store, min_ratings)}

    return app


def serve(run_dir: Path, host: str = "127.0.0.1", port: int = 8765, min_ratings: int = 5,
          token: str | None = None) -> None:
    """Serve the review page until interrupted (Ctrl+C); a host other than loopback needs `token`.

    Raises:
        AutodidactError: see `create_app`, or `host` is not loopback and `token` is None.
    """
    check_serving(host, token)
    # No access log: a first visit's URL holds the token.
    uvicorn.run(create_app(run_dir, min_ratings, token), host=host, port=port, access_log=False, server_header=False)
