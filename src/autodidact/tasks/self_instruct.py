"""Self-written prompts (self-instruct): the model writes new training prompts from seed examples.

Each training iteration `grow` shows the model a few prompts of the pool and
asks for one new task of the same kind. The replies are cleaned and filtered:
too short or too long, exact repeats, and near-duplicates by embedding cosine
similarity, of the pool, of each other, and of any held-out prompt of the run
(a written prompt must never paraphrase an evaluation item). The pool grows
until `max_pool`.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from autodidact.config import SelfInstructSourceConfig
from autodidact.embeddings import Embedder
from autodidact.engines import Engine, SamplingParams
from autodidact.errors import AutodidactError
from autodidact.records import Prompt, Split
from autodidact.tasks.base import Grown

# Writing requests made per wanted prompt: the filters drop some replies.
OVERGENERATE = 1.5
# Sampling for writing: hot enough that requests showing the same examples still differ.
WRITE_TEMPERATURE = 1.0
WRITE_TOP_P = 0.95
WRITE_MAX_NEW_TOKENS = 96
MIN_WORDS, MAX_WORDS = 3, 200

WRITE_INSTRUCTION = "Write one new task of the same kind, different from these. Reply with the task only."

# Outcomes of one `grow` call, in filter order; they sum to the requests made.
OUTCOMES = (
    "failed", "empty", "too_short", "too_long", "duplicate",
    "near_heldout", "near_pool", "near_batch", "over_cap", "kept",
)

# What a model puts around a task: "4.", "- ", "Task:", "New task:", quotes.
_PREFIX = re.compile(r"^\s*(?:\d+\s*[.):]|[-*\u2022]|#+|(?:new\s+|example\s+)?task\s*\d*\s*:)\s*", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_NUMBERED_LINE = re.compile(r"^\s*\d+\s*[.)]\s")


def clean_written_prompt(text: str) -> str:
    """The task in a model's reply: first paragraph, without numbering, "Task:" prefixes or quotes."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if not paragraphs:
        return ""
    lines = paragraphs[0].strip().splitlines()
    # A numbered line after the first starts the next task of a continued list.
    end = next((i for i in range(1, len(lines)) if _NUMBERED_LINE.match(lines[i])), len(lines))
    task = "\n".join(line.rstrip() for line in lines[:end]).strip()
    previous = None
    while task != previous:  # prefixes nest: '4. Task: "..."'
        previous = task
        task = _PREFIX.sub("", task, count=1).strip()
        if len(task) >= 2 and task[0] in _QUOTES and task[-1] in _QUOTES:
            task = task[1:-1].strip()
    return task


def _normalise(text: str) -> str:
    """Exact-duplicate key: case and spacing do not make a new task."""
    return " ".join(text.casefold().split())


class SelfInstructTask:
    """Prompts the model writes itself, grown from seed prompts each iteration.

    Self-written prompts have no reference, so `verify` grades nothing: this
    task is measured by the judge score on its held-out seeds.
    """

    def __init__(self, config: SelfInstructSourceConfig, embedder: Embedder | None) -> None:
        """Read the seeds now, so a bad file or too few seeds fail before any model is loaded.

        Raises:
            AutodidactError: fewer than 2 distinct seeds, an unreadable `seeds_path`, or no embedder.
        """
        if embedder is None:
            raise AutodidactError(
                f"self_instruct source '{config.name}' needs a sentence embedder to remove near-duplicates; "
                "pass one, e.g. autodidact.embeddings.load_embedder('default')."
            )
        self.config = config
        self.name = config.name
        self.embedder = embedder
        self.bad_rows = 0
        self.seeds = self._load_seeds()

    # --- seeds and splits ------------------------------------------------------

    def _load_seeds(self) -> list[str]:
        texts = [s.strip() for s in self.config.seeds]
        if self.config.seeds_path:
            texts += self._read_seeds_file(Path(self.config.seeds_path).expanduser())
        # Exact repeats dropped (first kept): one text in both splits would leak held-out items.
        seen: set[str] = set()
        seeds = [t for t in texts if t and not (_normalise(t) in seen or seen.add(_normalise(t)))]
        if len(seeds) < 2:
            raise AutodidactError(
                f"self_instruct source '{self.name}' has {len(seeds)} distinct seed prompt(s); give at least 2 "
                "in `seeds` and/or `seeds_path`."
            )
        return seeds

    def _read_seeds_file(self, path: Path) -> list[str]:
        where = f"self_instruct source '{self.name}': seeds_path '{path}'"
        if path.suffix not in (".txt", ".jsonl"):
            raise AutodidactError(f"{where} must be a .txt (one prompt per line) or .jsonl ('prompt' field) file.")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as exc:
            raise AutodidactError(
                f"{where} does not exist; fix the path (relative paths start at the working directory)."
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise AutodidactError(f"{where} could not be read as UTF-8 text: {exc}; save it as UTF-8.") from exc
        lines = [line.strip() for line in lines if line.strip()]
        if path.suffix == ".txt":
            return lines
        prompts = []
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
                prompt = row["prompt"] if isinstance(row, dict) else None
            except (json.JSONDecodeError, KeyError):
                prompt = None
            if not isinstance(prompt, str) or not prompt.strip():
                self.bad_rows += 1
                if self.bad_rows > self.config.max_bad_rows:
                    raise AutodidactError(
                        f"{where}: more than max_bad_rows={self.config.max_bad_rows} rows lack a 'prompt' string "
                        f"(last at non-blank line {number}); fix the file or raise max_bad_rows."
                    )
                continue
            prompts.append(prompt.strip())
        return prompts

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
        """Split the seeds: a seeded share `heldout_ratio` held out, the rest the first training pool.

        `train_size` and `heldout_size` size the built-in tasks and are ignored:
        the seeds are all there is at the start, and `grow` adds the rest.
        """
        n = len(self.seeds)
        ratio = self.config.heldout_ratio
        n_heldout = int(ratio * n + 0.5)
        if ratio > 0 and n >= 3:
            n_heldout = max(1, n_heldout)
        n_heldout = min(n_heldout, n - 1)  # at least one seed left to show the model
        order = list(range(n))
        random.Random(seed).shuffle(order)
        heldout_ids = set(order[:n_heldout])
        train = [self._seed_prompt(k, "train") for k in range(n) if k not in heldout_ids]
        heldout = [self._seed_prompt(k, "heldout") for k in range(n) if k in heldout_ids]
        return train, heldout

    def _seed_prompt(self, k: int, split: Split) -> Prompt:
        return Prompt(
            id=f"{self.name}-seed{k}",
            task=self.name,
            split=split,
            messages=[{"role": "user", "content": self.seeds[k]}],
            meta={"origin": "seed"},
        )

    def verify(self, prompt: Prompt, response: str) -> float | None:
        """None always: a self-written prompt has no reference; the judge score measures this task."""
        return None

    # --- growing the pool ------------------------------------------------------

    def grow(self, engine: Engine, pool: list[Prompt], avoid: list[Prompt], iteration: int, seed: int) -> Grown:
        """New training prompts written by the model for `iteration`.

        Args:
            engine: the policy's engine; it writes the prompts.
            pool: this task's current training prompts (seeds and earlier written ones).
            avoid: every held-out prompt of the run; nothing close to one is kept.
            iteration: the training iteration (1, 2, ...); part of ids and the sampling seed.
            seed: the run seed.

        Returns:
            At most min(per_iteration, max_pool - len(pool)) prompts, split "train", and their
            stats: each request's outcome counted (see `OUTCOMES`), and "requests".
        """
        cfg = self.config
        room = min(cfg.per_iteration, cfg.max_pool - len(pool))
        stats = dict.fromkeys(("requests", *OUTCOMES), 0)
        if room <= 0 or not pool:
            return Grown([], stats)

        mix = seed * 7919 + iteration
        rng = random.Random(mix)
        pool_texts = [p.text for p in pool]
        shown = min(cfg.examples_per_request, len(pool_texts))
        n_requests = math.ceil(cfg.per_iteration * OVERGENERATE)
        requests = [self._request(engine, rng.sample(pool_texts, shown)) for _ in range(n_requests)]
        stats["requests"] = len(requests)
        replies = self._write(engine, requests, SamplingParams(
            n=1, temperature=WRITE_TEMPERATURE, top_p=WRITE_TOP_P, max_new_tokens=WRITE_MAX_NEW_TOKENS, seed=mix
        ))

        # Cheap text filters first, so only plausible tasks are embedded.
        seen = {_normalise(t) for t in pool_texts}
        candidates: list[str] = []
        for text, error in replies:
            task = "" if error else clean_written_prompt(text)
            words = len(task.split())
            outcome = (
                "failed" if error else "empty" if words == 0 else "too_short" if words < MIN_WORDS
                else "too_long" if words > MAX_WORDS else "duplicate" if _normalise(task) in seen else None
            )
            if outcome:
                stats[outcome] += 1
                continue
            seen.add(_normalise(task))
            candidates.append(task)

        written: list[str] = []
        if candidates:
            vectors = self.embedder.encode(candidates)  # (m, d), unit rows
            near_heldout = _max_similarity(vectors, self.embedder.encode([p.text for p in avoid]))  # (m,)
            near_pool = _max_similarity(vectors, self.embedder.encode(pool_texts))  # (m,)
            kept_rows: list[int] = []
            for i, task in enumerate(candidates):
                near_batch = float(np.max(vectors[kept_rows] @ vectors[i])) if kept_rows else -1.0
                # Held-out first: its count is the leak that the filter prevented.
                outcome = (
                    "near_heldout" if near_heldout[i] >= cfg.dedup_similarity
                    else "near_pool" if near_pool[i] >= cfg.dedup_similarity
                    else "near_batch" if near_batch >= cfg.dedup_similarity
                    else "over_cap" if len(written) >= room else "kept"
                )
                stats[outcome] += 1
                if outcome == "kept":
                    kept_rows.append(i)
                    written.append(task)

        prompts = [
            Prompt(
                id=f"{self.name}-it{iteration}-{k}",
                task=self.name,
                split="train",
                messages=[{"role": "user", "content": text}],
                meta={"origin": "self_instruct", "iteration": iteration},
            )
            for k, text in enumerate(written)
        ]
        return Grown(prompts, stats)

    @staticmethod
    def _request(engine: Engine, examples: Sequence[str]) -> str:
        listed = "\n".join(f"{i}. {text}" for i, text in enumerate(examples, start=1))
        content = f"Here are some example tasks:\n{listed}\n\n{WRITE_INSTRUCTION}"
        return engine.render([{"role": "user", "content": content}])

    @staticmethod
    def _write(engine: Engine, requests: list[str], params: SamplingParams) -> list[tuple[str, str | None]]:
        """One (text, error) reply per request, in request order.

        Engines give identical prompts identical samples, so a request repeated
        (a small pool shows the same examples) is sent once with n = its count.
        """
        unique = list(dict.fromkeys(requests))
        counts = [requests.count(r) for r in unique]
        completions = engine.generate(unique, replace(params, n=max(counts)), desc="writing prompts")
        taken = dict.fromkeys(unique, 0)
        by_request = dict(zip(unique, completions))
        replies = []
        for request in requests:
            completion = by_request[request][taken[request]]
            taken[request] += 1
            replies.append((completion.text, completion.error))
        return replies


def _max_similarity(vectors: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(m,) highest cosine similarity of each row of `vectors` to any row of `others`; -1 when none."""
    if len(others) == 0:
        return np.full(len(vectors), -1.0)
    return (vectors @ others.T).max(axis=1)
