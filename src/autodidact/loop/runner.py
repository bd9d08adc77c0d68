"""The self-improvement loop: generate -> judge -> select -> train -> evaluate.

Each stage reads its inputs from the store and commits its outputs together
with its "done" mark in one transaction. A killed run therefore resumes at the
first stage that is not done, and redoing that stage cannot duplicate rows.
Iteration 0 evaluates the base model only.

Critique and revise (`selection.revise`) happens inside the judge stage: the
contrastive judge's decided pairs exist only in memory, so the losers are
rewritten right after judging and the rewrites are stored as samples
(`it{N}-{prompt_id}-rev{k}`) in the judge stage's transaction. The select
stage reads them back from the store like everything else, so a resumed run
neither loses nor regenerates them.

After every evaluation the monitor stage measures the known failure modes
(`autodidact.monitors`), stores their metrics and alerts, and queues the
items of a human validation checkpoint. Between iterations the loop updates
the human-judge agreement from the ratings so far and stops the run when it
is below `review.min_agreement`; with `review.pause` it pauses while a
checkpoint's items wait for ratings (unless the run stops there anyway).
"""

from __future__ import annotations

import logging
import random
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import torch

from autodidact.config import JudgeConfig, RunConfig, load_config, to_yaml, validate_config
from autodidact.engines import Engine, SamplingParams, ServesCheckpoints, TokenCounter
from autodidact.engines.serving import build_policy_engine
from autodidact.errors import AutodidactError
from autodidact.evaluation import evaluate_heldout, heldout_judge, paraphrase_metrics
from autodidact.tasks.answering import answer
from autodidact.judges import JudgeItem, build_judge
from autodidact.judges.contrastive import critique_and_revise_batch, revision_requests
from autodidact.judges.external import judge_engine
from autodidact.judges.health import failure_error, judge_stats
from autodidact.monitors import Evidence, build_monitors, check
from autodidact.monitors.probes import diversity_probe, reference_score
from autodidact.records import PARAPHRASE_SPLIT, STAGES, Alert, Prompt, Sample
from autodidact.review.gate import agreement_stop, pause_message
from autodidact.selection import drop_near_duplicates, revision_examples, select, select_pairs
from autodidact.stopping import best_iteration, stop_reason
from autodidact.store import RunStore
from autodidact.tasks import build_tasks
from autodidact.tracking import NullTracker, Tracker, iteration_payload, require_tracker, run_tracker
from autodidact.training import RolloutRecorder, load_policy, save_checkpoint, train_dpo, train_grpo, train_sft
from autodidact.training.faults import TrainingFault, check_heldout, check_training, restore_policy
from autodidact.training.grpo import check_tools
from autodidact.training.multiprocess import train_multiprocess
from autodidact.training.sft import forward_kept, init_adapters

log = logging.getLogger(__name__)

CONFIG_FILE, STORE_FILE = "config.yaml", "run.sqlite"
ONLINE_SAMPLE = re.compile(r"-g\d+$")  # GRPO's completions, stored by the train stage
_REVISION_ID = re.compile(r"-rev\d+$")  # generated samples end in "-{k}", revisions in "-rev{k}"


def is_revision(sample: Sample) -> bool:
    """Whether a sample is a critique-and-revise rewrite rather than a generated sample."""
    return _REVISION_ID.search(sample.id) is not None


@dataclass
class RunResult:
    """What a finished (or stopped) run reports; the same from the CLI and the API."""

    run_dir: Path
    iterations: list[dict] = field(default_factory=list)  # one row per iteration, see `iteration_rows`
    best_iteration: int = 0
    best_checkpoint: str | None = None
    stop_reason: str | None = None
    alerts: list[Alert] = field(default_factory=list)  # every alert the monitors raised, by iteration
    paused: str | None = None  # why the run waits (human review pending); `resume` continues it


class SelfImprovementLoop:
    """Drives one run directory. Build it with `run()` or `resume()`."""

    def __init__(self, config: RunConfig, run_dir: Path, store: RunStore, policy=None):
        self.config = config
        self.run_dir = run_dir
        self.store = store
        self.tracker: Tracker = NullTracker()  # the configured one while `run()` runs
        last = store.last_checkpoint()
        if policy is None:
            policy = load_policy(config, last[1] if last else None)
        # One model in memory: the policy, its own judge and the evaluator
        # share these weights; training updates them in place.
        self.policy, self.tokenizer = policy
        if last is None and config.training.finetune == "lora":
            # Nothing trained yet: the adapter iteration 1 trains from is drawn from the run's seed, so a fresh
            # run, a resumed one and a rollback to the base model (`restore_policy`) all start from the same one.
            init_adapters(self.policy, config.seed)
        self.engine = self._policy_engine(last)
        self.online = config.training.method == "grpo"  # generation and judging happen inside training
        if self.online and any(s.type == "documents" and s.search for s in config.tasks.sources):
            check_tools(self.tokenizer)  # GRPO hands TRL the search tool: refused now, before questions are written
        deployed = [s.name for s in config.tasks.sources if s.type == "logs" and s.include_deployed]
        if self.online and deployed:
            log.warning(
                "training.method 'grpo' samples its own completions: the deployed replies of logs sources %s "
                "are not candidates (they are with sft and dpo)",
                ", ".join(deployed),
            )
        # The judge runs on the policy's engine unless judge.model names a separate model or server.
        self.judge_engine = TokenCounter(judge_engine(config, self.engine))
        self._embedder_loaded, self._embedder = False, None
        self._prompts_ready = False  # the tasks built (or, on resume, restored) their prompts in this process
        self.tasks = build_tasks(config.tasks, self.engine, self._source_embedder(), self.judge_engine.engine)
        # An ensemble member naming its own `model` runs on that model, its generated tokens counted as the judge's.
        self.judge = build_judge(
            config.judge,
            self.judge_engine,
            self.tasks,
            engine_for=lambda member: TokenCounter(self._judge_engine_for(member), into=self.judge_engine),
        )
        # One greedy answer per held-out prompt: a relative judge cannot score it, a direct one does.
        self.heldout_judge = heldout_judge(self.judge, config.judge, self.judge_engine)
        if config.evaluation.judge_heldout and self.heldout_judge is not self.judge:
            log.info("held-out answers are scored by the direct judge (%s compares samples)", self.judge.name)
        self.monitors = build_monitors(config, self.embedder) if config.monitors.enabled else []
        self.reference_judge = self._reference_judge()

    def _policy_engine(self, last: tuple[int, str] | None) -> Engine:
        """The engine the policy generates and self-judges on: in-process, a server, vLLM, or Ray replicas."""
        if self.config.distributed.backend == "ray":
            from autodidact.distributed import RayEngine

            return RayEngine.from_config(self.config, self.tokenizer, checkpoint=last[1] if last else None)
        engine = build_policy_engine(self.config, self.policy, self.tokenizer)
        if last is not None and isinstance(engine, ServesCheckpoints):
            engine.load_checkpoint(Path(last[1]), last[0])  # a resumed run serves its last trained weights
        return engine

    def _serve(self, checkpoint: str | None, it: int) -> None:
        """Hand an engine with its own copy of the weights (server, vLLM, Ray) the policy's current checkpoint."""
        if not isinstance(self.engine, ServesCheckpoints):
            return  # the in-process engine shares the trained model: it has the new weights already
        if checkpoint is None:
            self.engine.serve_base()
        else:
            self.engine.load_checkpoint(Path(checkpoint), it)

    def close(self) -> None:
        """Release what the engine holds outside this process (Ray replicas, a vLLM engine)."""
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()

    @property
    def embedder(self):
        """The sentence embedder of the diversity monitor and near-duplicate removal, loaded once when needed."""
        if not self._embedder_loaded:
            from autodidact.embeddings import load_embedder

            spec = self.config.monitors.diversity.embedder
            if spec == "none" and self.config.selection.dedup_similarity is not None:
                spec = "default"  # near-duplicate removal needs one even when the monitor does without
            needed = self.config.monitors.enabled or self.config.selection.dedup_similarity is not None
            self._embedder = load_embedder(spec) if needed else None
            self._embedder_loaded = True
        return self._embedder

    def _source_embedder(self):
        """The embedder for task sources that need one (self-written prompts, documents), else None."""
        if not any(s.type in ("self_instruct", "documents") for s in self.config.tasks.sources):
            return None
        from autodidact.embeddings import load_embedder

        spec = self.config.monitors.diversity.embedder
        return load_embedder("default" if spec == "none" else spec)

    def _judge_engine_for(self, j: JudgeConfig) -> Engine:
        """The engine a judge section's `model` names, chosen as the run's judge engine is (`judge_engine`)."""
        return judge_engine(self.config.model_copy(update={"judge": j}), self.engine)

    def _reference_judge(self):
        """A direct judge on a fixed model (`monitors.reward_hacking.reference_judge`), or None."""
        spec = self.config.monitors.reward_hacking.reference_judge
        if spec is None or not self.config.monitors.enabled:
            return None
        from autodidact.judges.direct import DirectScoreJudge

        j = self.config.judge.model_copy(update={"model": spec})
        try:
            engine = self._judge_engine_for(j)
        except AutodidactError as exc:
            raise AutodidactError(str(exc).replace("judge.model", "monitors.reward_hacking.reference_judge")) from None
        return DirectScoreJudge(engine, mode=j.mode, batch_size=j.batch_size, min_mass=j.min_score_mass)

    # --- orchestration ---------------------------------------------------------

    def prepare(self) -> None:
        """Build every task's prompts and store them (once per run)."""
        self._ensure_prompts()

    def run(self) -> RunResult:
        self.tracker = run_tracker(self.config, self.run_dir)
        try:
            return self._iterate()
        finally:
            self.tracker.close()
            self.tracker = NullTracker()
            self.close()

    def _iterate(self) -> RunResult:
        self._ensure_prompts()
        it = 0
        while True:
            try:
                for stage in STAGES if it > 0 else ("evaluate", "monitor"):  # iteration 0: the base model
                    self._stage(it, stage)
            except TrainingFault as fault:
                reason = self._roll_back(it, str(fault))
                if reason:
                    return self._finish(reason)
                continue  # the train stage is redone (its mark was removed), then evaluate and monitor
            if self._continued(it):  # a resumed run: this iteration's stop checks passed before the kill
                it += 1
                continue
            reason = (
                self._monitor_stop(it)
                or agreement_stop(self.store, self.config.review, self.tracker)
                or stop_reason(self._history(it), **self._stop_args())
            )
            if reason:
                return self._finish(reason)
            if self.config.review.pause and self.store.review_items(pending=True):
                return collect_result(self.run_dir, self.store, paused=pause_message(self.store, self.run_dir))
            it += 1

    def _continued(self, it: int) -> bool:
        """Whether iteration `it + 1` has begun: the run already decided not to stop (nor pause) after `it`.

        A resumed run must not decide again on what it knows now: the held-out
        metrics of later iterations, ratings given since. Deciding after
        iteration 0 with the whole history, it stopped before running a
        killed last monitor stage.
        """
        return any(self.store.stage_done(it + 1, stage) for stage in STAGES)

    def _roll_back(self, it: int, reason: str) -> str | None:
        """Undo iteration `it`'s training after a fault; a stop reason, or None to train it again."""
        t = self.config.training
        attempts = len(self.store.faults(it)) + 1
        retry = t.on_fault == "retry" and attempts <= t.max_retries
        action = f"retry at learning rate {self._learning_rate(it, attempts):g}" if retry else "stop"
        log.warning("iteration %d: training fault: %s; rolled back to the previous checkpoint, %s", it, reason, action)
        online = [s.id for s in self.store.samples(it) if ONLINE_SAMPLE.search(s.id)]
        with self.store.transaction():
            self.store.add_fault(it, reason, self._learning_rate(it), action)
            self.store.undo_training(it, online)
        shutil.rmtree(self.run_dir / "checkpoints" / f"iter-{it}", ignore_errors=True)
        previous = self.store.checkpoint(it - 1) if it > 1 else None
        restore_policy(self.policy, self.config, previous)
        self._serve(previous, it - 1)  # the engine still serves the deleted checkpoint
        if retry:
            return None
        return f"training fault at iteration {it} ({reason}); rolled back to iteration {it - 1}'s model"

    def _learning_rate(self, it: int, attempt: int | None = None) -> float:
        """The learning rate of an iteration's training: lowered once per earlier fault of that iteration."""
        faults = len(self.store.faults(it)) if attempt is None else attempt
        return self.config.training.learning_rate * self.config.training.retry_lr_factor**faults

    def _stop_args(self) -> dict:
        s = self.config.stopping
        return {"max_iterations": s.max_iterations, "patience": s.patience, "min_delta": s.min_delta}

    def _stage(self, it: int, stage: str) -> None:
        if self.store.stage_done(it, stage):
            return
        log.info("iteration %d: %s", it, stage)
        start = time.perf_counter()
        getattr(self, f"_{stage}")(it, start)
        if stage == "monitor":  # committed: send the iteration (a resumed run does not resend finished ones)
            self.tracker.log_iteration(it, *iteration_payload(self.store, it))

    def _history(self, last: int | None = None) -> list[float | None]:
        """The held-out metric of every evaluated iteration (up to `last`)."""
        last = self.config.stopping.max_iterations if last is None else last
        done = [it for it in range(last + 1) if self.store.stage_done(it, "evaluate")]
        return [self.store.metric(it, "heldout_metric") for it in done]

    def _finish(self, reason: str) -> RunResult:
        best = best_iteration(self._history())
        with self.store.transaction():
            if best > 0:
                self.store.set_best(best)
            self.store.set_meta("best_iteration", str(best))
            self.store.set_meta("stop_reason", reason)
        return collect_result(self.run_dir, self.store)

    def _ensure_prompts(self) -> None:
        if self._prompts_ready:
            return
        if self.store.get_meta("prompts_ready"):
            # A resumed run: the prompts are stored, what a task built beside them (the documents task's search
            # index) is not. A task with `restore` rebuilds it from its data; no prompt is written again.
            for name, task in self.tasks.items():
                if hasattr(task, "restore"):
                    task.restore(self.store.prompts(task=name), seed=self.config.seed)
            self._prompts_ready = True
            return
        t = self.config.tasks
        prompts: list[Prompt] = []
        for name, task in self.tasks.items():
            train, heldout = task.build(t.train_size, t.heldout_size, seed=self.config.seed)
            prompts += train + heldout
            # The paraphrased held-out set: built-in tasks only (sources have no `build_paraphrased`). Stored
            # in the same transaction as every other prompt, so a resumed run neither lacks nor repeats it.
            paraphrased = getattr(task, "build_paraphrased", None)
            if paraphrased is not None and t.paraphrase_size():
                prompts += paraphrased(t.train_size, t.heldout_size, t.paraphrase_size(), seed=self.config.seed)
        with self.store.transaction():
            self.store.add_prompts(prompts)
            self.store.set_meta("prompts_ready", "1")
        self._prompts_ready = True

    # --- stages ------------------------------------------------------------------

    def _iteration_prompts(self, it: int, written: Sequence[Prompt] = ()) -> list[Prompt]:
        """Each iteration trains on a fresh draw from each task's training pool (this iteration's written prompts included).

        A task contributes `prompts_per_iteration` x its weight prompts.
        """
        rng = random.Random(self.config.seed * 1_000_003 + it)
        by_task: dict[str, list[Prompt]] = defaultdict(list)
        for p in [*self.store.prompts(split="train"), *written]:
            by_task[p.task].append(p)
        t = self.config.tasks
        drawn = []
        for name in t.all_names():
            k = max(1, round(t.prompts_per_iteration * t.weight(name)))
            drawn += rng.sample(by_task[name], min(k, len(by_task[name])))
        return drawn

    def _grow(self, it: int) -> tuple[list[Prompt], dict[str, int]]:
        """New training prompts from tasks that write their own (self-instruct), and their filter counts."""
        written: list[Prompt] = []
        info: dict[str, int] = {}
        avoid = self.store.prompts(split="heldout") + self.store.prompts(split=PARAPHRASE_SPLIT)
        for name, task in self.tasks.items():
            if not hasattr(task, "grow"):
                continue
            new = task.grow(self.engine, self.store.prompts(split="train", task=name), avoid, it, self.config.seed)
            written += new
            info |= {f"{name}/{key}": value for key, value in getattr(task, "last_stats", {}).items()}
            info[f"{name}/written"] = len(new)
        return written, info

    def _generate(self, it: int, start: float) -> None:
        g = self.config.generation
        written, grow_info = self._grow(it)  # stored with the samples, so a killed stage writes them again
        prompts = self._iteration_prompts(it, written)
        if self.online:  # GRPO samples inside training; the draw is kept for the train stage
            info = {"prompts": len(prompts), "prompt_ids": [p.id for p in prompts], "online": True}
            with self.store.transaction():
                self.store.add_prompts(written)
                self.store.finish_stage(it, "generate", time.perf_counter() - start, info | grow_info)
            return
        params = SamplingParams(
            g.samples_per_prompt, g.temperature_at(it), g.top_p, g.max_new_tokens, seed=self.config.seed * 1000 + it
        )
        outputs = answer(self.engine, self.tasks, prompts, params, desc=f"generating (iter {it})")
        samples = [
            Sample(f"it{it}-{p.id}-{k}", p.id, it, k, c.text, c.num_tokens)
            for p, completions in zip(prompts, outputs)
            for k, c in enumerate(completions)
        ]
        samples += self._deployed_samples(it, prompts)
        info = {"prompts": len(prompts), "samples": len(samples), "tokens": sum(s.num_tokens for s in samples)}
        with self.store.transaction():
            self.store.add_prompts(written)
            self.store.add_samples(samples)
            self.store.finish_stage(it, "generate", time.perf_counter() - start, info | grow_info)

    def _deployed_samples(self, it: int, prompts: list[Prompt]) -> list[Sample]:
        """The reply already given in deployment (logged conversations), as one more candidate per prompt."""
        index = self.config.generation.samples_per_prompt  # after the generated samples' indices
        samples = []
        for p in prompts:
            text = p.meta.get("deployed_response")
            if text:
                num_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                samples.append(Sample(f"it{it}-{p.id}-deployed", p.id, it, index, text, num_tokens))
        return samples

    def _train_samples(self, it: int) -> tuple[dict[str, Prompt], list[Sample]]:
        prompts = {p.id: p for p in self.store.prompts(split="train")}
        return prompts, [s for s in self.store.samples(it) if s.prompt_id in prompts]

    def _judge(self, it: int, start: float) -> None:
        if self.online:  # GRPO judges inside training (the reward); its judgments are stored by the train stage
            with self.store.transaction():
                self.store.finish_stage(it, "judge", time.perf_counter() - start, {"online": True})
            return
        prompts, samples = self._train_samples(it)
        tokens_before = self.judge_engine.tokens
        judgments = self.judge.judge([JudgeItem(s.id, prompts[s.prompt_id], s.text) for s in samples])
        judge_tokens = self.judge_engine.tokens - tokens_before
        failed = sum(1 for j in judgments if j.score is None)
        if failed:
            log.warning(
                "iteration %d: %d of %d judgments failed (score None); they are excluded", it, failed, len(judgments)
            )
        error = failure_error(it, judgments, self.config.judge.max_failed_share)
        if error is not None:
            raise error  # before anything is stored: the stage is redone on resume
        stats = judge_stats(self.judge)  # e.g. position consistency, vote margin: per-iteration metrics
        info = {**stats, "judgments": len(judgments), "failed": failed, "judge_tokens": judge_tokens}
        revisions: list[Sample] = []
        if self.config.selection.revise:
            revisions, requested = self._revise(it)
            info |= {"revisions": len(revisions), "revisions_empty": requested - len(revisions)}
            info["revision_tokens"] = sum(s.num_tokens for s in revisions)
        with self.store.transaction():
            self.store.add_judgments(judgments)
            self.store.add_samples(revisions)
            if stats:
                self.store.add_metrics(it, stats)
            self.store.finish_stage(it, "judge", time.perf_counter() - start, info)

    def _revise(self, it: int) -> tuple[list[Sample], int]:
        """The policy rewrites the loser of each decided pair of the last judging, using the judge's explanation.

        Returns the non-empty rewrites as samples, `k` counting them per prompt,
        and how many rewrites were asked for.
        """
        requests = revision_requests(self.judge.last_outcomes)
        params = SamplingParams(n=1, temperature=0.0, max_new_tokens=self.config.generation.max_new_tokens)
        texts = critique_and_revise_batch(self.engine, requests, params)
        first_index = self.config.generation.samples_per_prompt + 1  # after the generated and deployed samples
        per_prompt: Counter[str] = Counter()
        samples = []
        for request, text in zip(requests, texts):
            if not text:
                continue
            prompt_id, k = request.prompt.id, per_prompt[request.prompt.id]
            per_prompt[prompt_id] += 1
            num_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            samples.append(Sample(f"it{it}-{prompt_id}-rev{k}", prompt_id, it, first_index + k, text, num_tokens))
        return samples, len(requests)

    def _select(self, it: int, start: float) -> None:
        if self.online:
            with self.store.transaction():
                self.store.finish_stage(it, "select", time.perf_counter() - start, {"online": True})
            return
        prompts, samples = self._train_samples(it)
        revisions = [s for s in samples if is_revision(s)]  # stored by the judge stage with selection.revise
        samples = [s for s in samples if not is_revision(s)]
        judgments = self.store.judgments(it, self.judge.name)
        s = self.config.selection
        if self.config.training.method == "dpo":
            pairs = select_pairs(prompts, samples, judgments, s.min_margin, s.length_band)
            with self.store.transaction():
                self.store.add_pairs(it, pairs)
                self.store.finish_stage(it, "select", time.perf_counter() - start, {"pairs": len(pairs)})
            return
        examples = select(prompts, samples, judgments, s.strategy, s.top_k, s.min_score, s.length_band)
        revised = revision_examples(prompts, revisions, examples)  # none unless selection.revise stored rewrites
        examples += revised
        info = {"revisions": len(revised)} if s.revise else {}
        if s.dedup_similarity is not None:
            before = len(examples)
            examples = drop_near_duplicates(examples, s.dedup_similarity, self.embedder)
            info["near_duplicates"] = before - len(examples)
        info["kept"] = len(examples)
        with self.store.transaction():
            self.store.add_selection(it, examples)
            self.store.finish_stage(it, "select", time.perf_counter() - start, info)

    def _train(self, it: int, start: float) -> None:
        seed = self.config.seed + it
        t = self.config.training.model_copy(update={"learning_rate": self._learning_rate(it)})
        rollouts = RolloutRecorder(it, self.judge, self.tokenizer)
        # The trainer's own logs (loss, learning rate) go to the tracker too. TRL leaves its fused-LM-head forward
        # on the policy: `forward_kept` takes it off, so the trained policy computes as its checkpoint loaded would.
        sleep = getattr(self.engine, "sleep", None)
        if sleep is not None:
            sleep()  # vLLM: weights and KV cache off the GPU while the trainer needs it; woken by the next request
        with self.tracker.training(it) as report, forward_kept(self.policy):
            if t.num_processes > 1:  # data parallel through `accelerate launch`; the weights come back into the policy
                data = self.store.pairs(it) if t.method == "dpo" else self.store.selection(it)
                result = train_multiprocess(
                    self.config, self.policy, self.tokenizer, data, t, seed, self.run_dir, report=report
                )
            elif t.method == "dpo":
                result = train_dpo(self.policy, self.tokenizer, self.store.pairs(it), t, seed=seed, report=report)
            elif t.method == "grpo":
                ids = set((self.store.stage_info(it, "generate") or {}).get("prompt_ids", []))
                prompts = [p for p in self.store.prompts(split="train") if p.id in ids]
                g = self.config.generation
                # A documents source's search index becomes a `search` function that TRL calls for the model.
                search = next((task for task in self.tasks.values() if hasattr(task, "search_tool")), None)
                if search is not None:
                    prompts = [search.tool_prompt(p) if p.task == search.name else p for p in prompts]
                result = train_grpo(
                    self.policy,
                    self.tokenizer,
                    prompts,
                    rollouts,
                    t,
                    g,
                    seed,
                    temperature=g.temperature_at(it),
                    tools=[search.search_tool()] if search is not None else None,
                    max_tool_calls=search.config.max_turns if search is not None else None,
                    report=report,
                )
            else:
                result = train_sft(self.policy, self.tokenizer, self.store.selection(it), t, seed=seed, report=report)
        if t.method == "grpo":  # the rewards were this iteration's training judgments: the judge stage's policy
            error = failure_error(it, rollouts.judgments, self.config.judge.max_failed_share)
            if error is not None:
                # Trained in place on the rest: back to the last committed weights, nothing stored, so a
                # resumed run redoes this stage (as after a failed judge stage).
                restore_policy(self.policy, self.config, self.store.checkpoint(it - 1) if it > 1 else None)
                raise error
        check_training(self.policy, result.loss)  # a NaN must never reach a checkpoint
        path = save_checkpoint(self.policy, self.tokenizer, self.run_dir / "checkpoints" / f"iter-{it}")
        with self.store.transaction():
            self.store.add_samples(rollouts.samples)  # GRPO's completions and their rewards; none otherwise
            self.store.add_judgments(rollouts.judgments)
            self.store.add_checkpoint(it, str(path))
            info = asdict(result) | {"learning_rate": t.learning_rate}
            self.store.finish_stage(it, "train", time.perf_counter() - start, info)
        if sleep is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()  # the trainer's cached blocks, so vLLM's KV cache fits again
        # After the commit: a kill before the handover is redone by a resume, which serves the last checkpoint.
        self._serve(str(path), it)

    def _monitor(self, it: int, start: float) -> None:
        evidence = self._evidence(it)
        metrics: dict[str, float | None] = {}
        if self.reference_judge is not None:
            heldout = self.store.prompts(split="heldout")
            metrics["reference_judge_score"] = reference_score(self.reference_judge, heldout, self.store.samples(it))
            evidence.history[-1] |= metrics
        measured, alerts = check(self.monitors, evidence)
        metrics |= measured
        for alert in alerts:
            log.warning("iteration %d: %s alert: %s", it, alert.monitor, alert.message)
        items = self._checkpoint_items(it)
        info = {"alerts": len(alerts), "review_items": len(items), "probe_prompts": len(evidence.probe_groups)}
        with self.store.transaction():
            self.store.add_metrics(it, metrics)
            self.store.add_alerts(alerts)
            self.store.add_review_items(items)
            self.store.finish_stage(it, "monitor", time.perf_counter() - start, info)

    def _evidence(self, it: int) -> Evidence:
        history = []
        for i in range(it + 1):
            history.append({row["name"]: row["value"] for row in self.store.metrics(i) if not row["task"]})
        by_task: dict[str, dict[str, float | None]] = defaultdict(dict)
        for row in self.store.metrics(it):
            if row["task"]:
                by_task[row["task"]][row["name"]] = row["value"]
        evidence = Evidence(it, history, task_metrics=dict(by_task))
        if it > 0:
            _, samples = self._train_samples(it)
            evidence.train_samples = [s for s in samples if not is_revision(s)]
            train_ids = {s.id for s in evidence.train_samples}  # not the held-out answers the same judge scored
            evidence.train_judgments = [
                j for j in self.store.judgments(it, self.judge.name) if j.sample_id in train_ids
            ]
        if self.monitors and self.config.monitors.diversity.prompts:
            evidence.probe_groups = diversity_probe(
                self.engine,
                self.store.prompts(split="heldout"),
                self.config.monitors.diversity,
                self.config.generation,
                self.config.seed,
                desc=f"diversity probe (iter {it})",
            )
        return evidence

    def _checkpoint_items(self, it: int):
        r = self.config.review
        if not r.every or it == 0 or it % r.every:
            return []
        from autodidact.review import build_checkpoint

        relative = getattr(self.judge, "relative", False)
        return build_checkpoint(self.store, it, self.judge.name, r, relative, seed=self.config.seed + it)

    def _monitor_stop(self, it: int) -> str | None:
        stopping = [a for a in self.store.alerts(it) if a.stop]
        if not stopping:
            return None
        return "; ".join(f"monitor {a.monitor} raised an alert (its stop is set): {a.message}" for a in stopping)

    def _evaluate(self, it: int, start: float) -> None:
        judge = self.heldout_judge if self.config.evaluation.judge_heldout else None
        heldout = self.store.prompts(split="heldout")
        max_new_tokens = self.config.evaluation.max_new_tokens
        result = evaluate_heldout(self.engine, judge, self.tasks, heldout, it, max_new_tokens)
        if it > 0:  # before anything is stored: a collapsed iteration is rolled back, not recorded
            previous = self.store.metric(it - 1, "heldout_metric")
            check_heldout(previous, result.metrics[""].get("heldout_metric"), self.config.stopping.max_metric_drop)
        metrics = result.metrics
        samples = result.samples
        # The paraphrased held-out set (none in a run begun before it existed): the same greedy answers and
        # verifiers, no judge; its figures are stored as paraphrase_*, and early stopping never reads them.
        paraphrased = self.store.prompts(split=PARAPHRASE_SPLIT)
        if paraphrased:
            desc = f"paraphrased held-out eval (iter {it})"
            reworded = evaluate_heldout(self.engine, None, self.tasks, paraphrased, it, max_new_tokens, desc=desc)
            samples = samples + reworded.samples
            for task, values in paraphrase_metrics(reworded.metrics).items():
                metrics[task] = metrics.get(task, {}) | values
        with self.store.transaction():
            self.store.add_samples(samples)
            self.store.add_judgments(result.judgments)
            for task, values in metrics.items():
                self.store.add_metrics(it, values, task=task)
            info = {"heldout_judge": judge.name if judge is not None else None}
            self.store.finish_stage(it, "evaluate", time.perf_counter() - start, info)


# --- entry points -------------------------------------------------------------


def iteration_rows(store: RunStore) -> list[dict]:
    """One dict per evaluated iteration: metrics by task, samples (SFT) or pairs (DPO) kept, stage seconds,
    and which judge scored the held-out answers."""
    by_iter: dict[int, dict] = defaultdict(lambda: {"tasks": defaultdict(dict)})
    for row in store.metrics():
        target = by_iter[row["iteration"]]
        if row["task"]:
            target["tasks"][row["task"]][row["name"]] = row["value"]
        else:
            target[row["name"]] = row["value"]
    rows = []
    for it in sorted(by_iter):
        row = by_iter[it] | {"iteration": it, "tasks": dict(by_iter[it]["tasks"])}
        select_info = store.stage_info(it, "select") or {}
        judge_info = store.stage_info(it, "judge") or {}
        row["kept"] = select_info.get("pairs", select_info.get("kept"))
        row["judge_failed_train"] = judge_info.get("failed")
        row["heldout_judge"] = (store.stage_info(it, "evaluate") or {}).get("heldout_judge")
        row["seconds"] = store.stage_seconds(it)
        rows.append(row)
    return rows


def collect_result(run_dir: Path, store: RunStore, paused: str | None = None) -> RunResult:
    best = int(store.get_meta("best_iteration") or 0)
    checkpoint = store.best_checkpoint()
    return RunResult(
        run_dir=run_dir,
        iterations=iteration_rows(store),
        best_iteration=best,
        best_checkpoint=checkpoint[1] if checkpoint and best > 0 else None,
        stop_reason=store.get_meta("stop_reason"),
        alerts=store.alerts(),
        paused=paused,
    )


def run(config: RunConfig | dict | str | Path) -> RunResult:
    """Start a new run. `config` is a `RunConfig`, a dict, or a YAML path.

    Everything that can fail on bad input (config, model, run directory) is
    checked before anything is written.
    """
    config = load_config(config) if isinstance(config, (str, Path)) else validate_config(config)
    require_tracker(config.tracking)  # a missing tracker package fails before anything loads or is written
    if config.name is None:
        config = config.model_copy(update={"name": datetime.now().strftime("run-%Y%m%d-%H%M%S")})
    run_dir = config.run_dir()
    if (run_dir / STORE_FILE).exists() or (run_dir / CONFIG_FILE).exists():
        raise AutodidactError(
            f"run directory '{run_dir}' already holds a run. Continue it with `autodidact resume {run_dir}` "
            "or choose another name (--set name=...)."
        )
    policy = load_policy(config, None)  # before writing anything: a bad model must leave no trace
    # The topmost folder this start creates (output_dir itself may be new): a failed start removes it.
    created = next((p for p in reversed([run_dir, *run_dir.parents]) if not p.exists()), None)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (CONFIG_FILE + ".tmp")
    tmp.write_text(to_yaml(config), encoding="utf-8")
    tmp.rename(run_dir / CONFIG_FILE)
    with RunStore(run_dir / STORE_FILE) as store:
        loop = None
        try:  # building the tasks reads the user's files: a bad one must leave no run behind either
            loop = SelfImprovementLoop(config, run_dir, store, policy)
            loop.prepare()
        except AutodidactError:
            if loop is not None:
                loop.close()
            store.close()
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            else:
                for name in (CONFIG_FILE, STORE_FILE, STORE_FILE + "-wal", STORE_FILE + "-shm"):
                    (run_dir / name).unlink(missing_ok=True)
            raise
        return loop.run()


def _killed_before_store(run_dir: Path) -> bool:
    """Whether `run()` was killed between writing config.yaml and creating run.sqlite.

    Nothing else was written then (`run` refuses the directory from now on),
    so resuming starts the run from the beginning. A directory with
    checkpoints but no store lost its store: that is not resumed.
    """
    checkpoints = run_dir / "checkpoints"
    return not (run_dir / STORE_FILE).exists() and not (checkpoints.is_dir() and any(checkpoints.iterdir()))


def resume(run_dir: str | Path) -> RunResult:
    """Continue a run where it stopped: finished stages are not redone."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not ((run_dir / STORE_FILE).is_file() or _killed_before_store(run_dir)):
        raise AutodidactError(
            f"'{run_dir}' is not a run directory (no {CONFIG_FILE} and {STORE_FILE}). Check the path."
        )
    config = load_config(run_dir / CONFIG_FILE)
    require_tracker(config.tracking)
    with RunStore(run_dir / STORE_FILE) as store:
        if store.get_meta("stop_reason"):
            return collect_result(run_dir, store)
        return SelfImprovementLoop(config, run_dir, store).run()
