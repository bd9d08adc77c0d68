"""`autodidact review RUN_DIR`: rate a run's review queue in a browser, a terminal, or from a file."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from autodidact.apps.review.guard import check_serving
from autodidact.apps.review.rundir import min_ratings_of, open_store, saved_config
from autodidact.apps.review.terminal import review_in_terminal
from autodidact.errors import AutodidactError
from autodidact.review.agreement import agreement
from autodidact.review.importer import import_ratings
from autodidact.store import RunStore
from autodidact.tracking import agreement_snapshot, require_tracker, run_tracker, send_agreement


def import_and_track(store: RunStore, run_dir: Path, import_file: Path, min_ratings: int) -> int:
    """Import the ratings in `import_file` (see `import_ratings`), then send every checkpoint whose agreement
    changed to the run's tracker (its config's `tracking`); the number of ratings imported.

    Raises:
        AutodidactError: a bad ratings file (nothing is stored), or the tracker's package is missing (checked
            before anything is stored).
    """
    config = saved_config(run_dir)
    if config is not None:
        require_tracker(config.tracking)
    before = agreement_snapshot(store)
    count = import_ratings(store, import_file, min_ratings=min_ratings)
    if config is not None:
        tracker = run_tracker(config, Path(run_dir))
        try:
            send_agreement(tracker, store, before)
        finally:
            tracker.close()
    return count


def review_command(
    run_dir: Path, terminal: bool = False, import_file: Path | None = None, host: str = "127.0.0.1",
    port: int = 8765, console: Console | None = None, token: str | None = None,
) -> None:
    """Import ratings from `import_file`, or rate in the terminal, or serve the review page on host:port.

    Args:
        token: The token the page asks of every request; needed when `host` is not a loopback address.

    Raises:
        AutodidactError: `run_dir` is not a run directory, the run queued no review items, or the page
            would be served beyond loopback without a token (or with a weak one).
    """
    console = console or Console()
    serving = not terminal and import_file is None
    if serving:
        check_serving(host, token)
    min_ratings = min_ratings_of(run_dir)
    with open_store(run_dir) as store:
        if not store.review_items():
            raise AutodidactError(f"no review items in {run_dir}: set review.every in the config.")
        if import_file is not None:
            count = import_and_track(store, run_dir, import_file, min_ratings)
            console.print(f"imported {count} rating(s) from {import_file}")
            items, ratings = store.review_items(), store.ratings()
            for iteration in sorted({item.iteration for item in items}):
                checkpoint = [item for item in items if item.iteration == iteration]
                agreed = agreement(checkpoint, ratings, min_ratings)["human_agreement"]
                console.print(f"checkpoint {iteration}: agreement {'—' if agreed is None else f'{agreed:.3f}'}")
            return
    if terminal:
        review_in_terminal(run_dir, console=console, min_ratings=min_ratings)
        return
    from autodidact.apps.review.app import serve  # FastAPI and uvicorn only when the page is served

    # The token is never printed: whoever reads the terminal or its log must not learn it.
    first_visit = "?token=TOKEN (your token, once; a cookie keeps it)" if token else ""
    console.print(f"review page: http://{host}:{port}/{first_visit}  (Ctrl+C to stop)", highlight=False)
    serve(run_dir, host=host, port=port, min_ratings=min_ratings, token=token)
