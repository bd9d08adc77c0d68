"""The store's monitoring tables: alerts, human review items and their ratings."""

from __future__ import annotations

import time

from autodidact.records import Alert, Rating, ReviewItem
from autodidact.store.connection import Connection
from autodidact.store.schema import real


class ReviewTables(Connection):
    """What the monitors raised and what people rated."""

    def add_alerts(self, alerts: list[Alert]) -> None:
        """Insert alerts (one per monitor and iteration; a duplicate raises)."""
        self._write(
            "INSERT INTO alerts (iteration, monitor, message, stop) VALUES (?, ?, ?, ?)",
            [(a.iteration, a.monitor, a.message, int(a.stop)) for a in alerts],
        )

    def alerts(self, iteration: int | None = None) -> list[Alert]:
        """Alerts, by iteration then insertion order."""
        rows = self._all(
            "SELECT iteration, monitor, message, stop FROM alerts WHERE ?1 IS NULL OR iteration = ?1"
            " ORDER BY iteration, rowid",
            (iteration,),
        )
        return [Alert(iteration=r[0], monitor=r[1], message=r[2], stop=bool(r[3])) for r in rows]

    def add_review_items(self, items: list[ReviewItem]) -> None:
        """Queue items for human review; an existing id raises."""
        self._write(
            "INSERT INTO review_items (id, iteration, kind, prompt_id, sample_id, judge_score, other_sample_id,"
            " other_judge_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(i.id, i.iteration, i.kind, i.prompt_id, i.sample_id, real(i.judge_score, f"score of {i.id}"),
              i.other_sample_id, real(i.other_judge_score, f"other score of {i.id}")) for i in items],
        )

    def review_items(self, iteration: int | None = None, pending: bool = False) -> list[ReviewItem]:
        """Review items (optionally of one iteration, or only those not rated yet), in queue order."""
        rows = self._all(
            "SELECT i.id, i.iteration, i.kind, i.prompt_id, i.sample_id, i.judge_score, i.other_sample_id,"
            " i.other_judge_score FROM review_items i LEFT JOIN ratings r ON r.item_id = i.id"
            " WHERE (?1 IS NULL OR i.iteration = ?1) AND (?2 = 0 OR r.item_id IS NULL) ORDER BY i.rowid",
            (iteration, int(pending)),
        )
        return [ReviewItem(id=r[0], iteration=r[1], kind=r[2], prompt_id=r[3], sample_id=r[4], judge_score=r[5],
                           other_sample_id=r[6], other_judge_score=r[7]) for r in rows]

    def review_item(self, id: str) -> ReviewItem:
        """The review item with this id; KeyError if absent."""
        for item in self.review_items():
            if item.id == id:
                return item
        raise KeyError(id)

    def rate(self, rating: Rating) -> None:
        """Store a person's rating; rating an item again replaces the earlier rating. KeyError for an unknown item."""
        self._require_transaction()
        if self._one("SELECT 1 FROM review_items WHERE id = ?", (rating.item_id,)) is None:
            raise KeyError(rating.item_id)
        self._write(
            "INSERT OR REPLACE INTO ratings (item_id, value, rater, source, rated_at) VALUES (?, ?, ?, ?, ?)",
            (rating.item_id, real(rating.value, f"rating of {rating.item_id}"), rating.rater, rating.source,
             time.time()),
        )

    def ratings(self, iteration: int | None = None) -> list[Rating]:
        """Ratings (optionally of one checkpoint's items), in queue order of their items."""
        rows = self._all(
            "SELECT r.item_id, r.value, r.rater, r.source FROM ratings r JOIN review_items i ON i.id = r.item_id"
            " WHERE ?1 IS NULL OR i.iteration = ?1 ORDER BY i.rowid",
            (iteration,),
        )
        return [Rating(item_id=r[0], value=r[1], rater=r[2], source=r[3]) for r in rows]
