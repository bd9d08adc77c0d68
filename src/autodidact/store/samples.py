"""The store's record tables: prompts, samples (with their origin), judgments, selections and preference pairs."""

from __future__ import annotations

import json

from autodidact.records import Judgment, PreferencePair, Prompt, Sample, SFTExample
from autodidact.store.connection import Connection
from autodidact.store.schema import real


def _sample(r: tuple) -> Sample:
    return Sample(id=r[0], prompt_id=r[1], iteration=r[2], index=r[3], text=r[4], num_tokens=r[5], origin=r[6])


class RecordTables(Connection):
    """What the stages generate, judge and select."""

    def add_prompts(self, prompts: list[Prompt]) -> None:
        """Insert prompts; an existing id raises."""
        self._write(
            "INSERT INTO prompts (id, task, split, messages, reference, meta) VALUES (?, ?, ?, ?, ?, ?)",
            [(p.id, p.task, p.split, json.dumps(p.messages), json.dumps(p.reference), json.dumps(p.meta))
             for p in prompts],
        )

    @staticmethod
    def _prompt(row: tuple) -> Prompt:
        return Prompt(id=row[0], task=row[1], split=row[2], messages=json.loads(row[3]),
                      reference=json.loads(row[4]), meta=json.loads(row[5]))

    def prompts(self, split: str | None = None, task: str | None = None) -> list[Prompt]:
        """Prompts in insertion order, optionally filtered by split and/or task."""
        rows = self._all(
            "SELECT id, task, split, messages, reference, meta FROM prompts"
            " WHERE (?1 IS NULL OR split = ?1) AND (?2 IS NULL OR task = ?2) ORDER BY rowid",
            (split, task),
        )
        return [self._prompt(r) for r in rows]

    def prompt(self, id: str) -> Prompt:
        """The prompt with this id; KeyError if absent."""
        row = self._one("SELECT id, task, split, messages, reference, meta FROM prompts WHERE id = ?", (id,))
        if row is None:
            raise KeyError(id)
        return self._prompt(row)

    def add_samples(self, samples: list[Sample]) -> None:
        """Insert samples; an existing id or (iteration, prompt_id, index) raises."""
        self._write(
            "INSERT INTO samples (id, prompt_id, iteration, idx, text, num_tokens, origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(s.id, s.prompt_id, s.iteration, s.index, s.text, s.num_tokens, s.origin) for s in samples],
        )

    def samples(self, iteration: int) -> list[Sample]:
        """Samples of an iteration, by prompt insertion order then index."""
        rows = self._all(
            "SELECT s.id, s.prompt_id, s.iteration, s.idx, s.text, s.num_tokens, s.origin FROM samples s"
            " JOIN prompts p ON p.id = s.prompt_id WHERE s.iteration = ? ORDER BY p.rowid, s.idx",
            (iteration,),
        )
        return [_sample(r) for r in rows]

    def add_judgments(self, judgments: list[Judgment]) -> None:
        """Insert judgments (score None = failed judgment, stored as NULL); duplicates raise."""
        self._write(
            "INSERT INTO judgments (sample_id, judge, score, rationale, raw, error) VALUES (?, ?, ?, ?, ?, ?)",
            [(j.sample_id, j.judge, real(j.score, f"score of {j.sample_id}"), j.rationale, j.raw, j.error)
             for j in judgments],
        )

    def judgments(self, iteration: int, judge: str | None = None) -> list[Judgment]:
        """Judgments of an iteration's samples (optionally one judge), in sample order."""
        rows = self._all(
            "SELECT j.sample_id, j.judge, j.score, j.rationale, j.raw, j.error FROM judgments j"
            " JOIN samples s ON s.id = j.sample_id JOIN prompts p ON p.id = s.prompt_id"
            " WHERE s.iteration = ?1 AND (?2 IS NULL OR j.judge = ?2) ORDER BY p.rowid, s.idx, j.rowid",
            (iteration, judge),
        )
        return [Judgment(sample_id=r[0], judge=r[1], score=r[2], rationale=r[3], raw=r[4], error=r[5])
                for r in rows]

    def add_selection(self, iteration: int, examples: list[SFTExample]) -> None:
        """Insert the SFT examples selected at an iteration; duplicates raise."""
        self._write(
            "INSERT INTO selections (iteration, sample_id, prompt_id, messages, completion, score)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(iteration, e.sample_id, e.prompt_id, json.dumps(e.messages), e.completion,
              real(e.score, f"score of {e.sample_id}")) for e in examples],
        )

    def selection(self, iteration: int) -> list[SFTExample]:
        """The SFT examples selected at an iteration, in insertion order."""
        rows = self._all(
            "SELECT sample_id, prompt_id, messages, completion, score FROM selections"
            " WHERE iteration = ? ORDER BY rowid",
            (iteration,),
        )
        return [SFTExample(sample_id=r[0], prompt_id=r[1], messages=json.loads(r[2]), completion=r[3], score=r[4])
                for r in rows]

    def add_pairs(self, iteration: int, pairs: list[PreferencePair]) -> None:
        """Insert the preference pairs selected at an iteration; duplicates raise."""
        self._write(
            "INSERT INTO pairs (iteration, prompt_id, messages, chosen_sample_id, rejected_sample_id,"
            " chosen, rejected, chosen_score, rejected_score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(iteration, p.prompt_id, json.dumps(p.messages), p.chosen_sample_id, p.rejected_sample_id,
              p.chosen, p.rejected, real(p.chosen_score, f"score of {p.chosen_sample_id}"),
              real(p.rejected_score, f"score of {p.rejected_sample_id}")) for p in pairs],
        )

    def pairs(self, iteration: int) -> list[PreferencePair]:
        """The preference pairs selected at an iteration, in insertion order."""
        rows = self._all(
            "SELECT prompt_id, messages, chosen, rejected, chosen_sample_id, rejected_sample_id,"
            " chosen_score, rejected_score FROM pairs WHERE iteration = ? ORDER BY rowid",
            (iteration,),
        )
        return [PreferencePair(prompt_id=r[0], messages=json.loads(r[1]), chosen=r[2], rejected=r[3],
                               chosen_sample_id=r[4], rejected_sample_id=r[5], chosen_score=r[6],
                               rejected_score=r[7]) for r in rows]

    def sample(self, id: str) -> Sample:
        """The sample with this id; KeyError if absent."""
        r = self._one("SELECT id, prompt_id, iteration, idx, text, num_tokens, origin FROM samples WHERE id = ?", (id,))
        if r is None:
            raise KeyError(id)
        return _sample(r)
