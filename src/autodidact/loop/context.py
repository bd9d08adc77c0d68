"""RunContext: what the stages of a run share, built once from the config, the run directory and the store.

The policy, its engine, the judge (on the policy's engine unless `judge.model`
names another model or server), the held-out and reference judges, the tasks,
the monitors and the embedder they use. Stages read it and never rebuild any
of it; a test builds one with `build_context` and swaps a component with
`dataclasses.replace`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autodidact import embeddings
from autodidact.config import JudgeConfig, RunConfig
from autodidact.embeddings import Embedder
from autodidact.engines import Closes, Engine, ServesCheckpoints, TokenCounter
from autodidact.engines.serving import build_policy_engine
from autodidact.errors import AutodidactError
from autodidact.evaluation import heldout_judge
from autodidact.judges import Judge, build_judge
from autodidact.judges.direct import DirectScoreJudge
from autodidact.judges.external import judge_engine
from autodidact.monitors import Monitor, build_monitors
from autodidact.store import RunStore
from autodidact.tasks import Task, build_tasks
from autodidact.tracking import NullTracker, Tracker
from autodidact.training import init_adapters, load_policy
from autodidact.training.grpo import check_tools

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """Everything a stage needs besides its iteration number."""

    config: RunConfig
    run_dir: Path
    store: RunStore
    policy: Any  # the trained model (a PEFT model with LoRA); training updates it in place
    tokenizer: Any
    engine: Engine  # the policy's engine: in-process, a server, vLLM or Ray replicas
    judge_engine: TokenCounter  # counts the judge's generated tokens
    judge: Judge
    heldout_judge: Judge  # the judge itself, or a direct one where the judge compares samples
    reference_judge: Judge | None  # monitors.reward_hacking.reference_judge, a direct judge on a fixed model
    tasks: dict[str, Task]
    monitors: list[Monitor] = field(default_factory=list)
    tracker: Tracker = field(default_factory=NullTracker)  # the configured one while the runner runs

    def embedder(self) -> Embedder | None:
        """The sentence embedder of the diversity monitor and near-duplicate removal (`load_embedder` caches it)."""
        return _embedder(self.config)

    def serve(self, checkpoint: str | None, iteration: int) -> None:
        """Hand an engine with its own copy of the weights (server, vLLM, Ray) the policy's current checkpoint."""
        if not isinstance(self.engine, ServesCheckpoints):
            return  # the in-process engine shares the trained model: it has the new weights already
        if checkpoint is None:
            self.engine.serve_base()
        else:
            self.engine.load_checkpoint(Path(checkpoint), iteration)

    def close(self) -> None:
        """Release what the engine holds outside this process (Ray replicas, a vLLM engine)."""
        if isinstance(self.engine, Closes):
            self.engine.close()


def build_context(config: RunConfig, run_dir: Path, store: RunStore, policy: tuple[Any, Any] | None = None) -> RunContext:
    """Load (or take) the policy and build every component of a run, resuming from the store's last checkpoint.

    Raises:
        AutodidactError: a model, server, task source or monitor the config names cannot be used.
    """
    last = store.last_checkpoint()
    # One model in memory: the policy, its own judge and the evaluator share these weights.
    model, tokenizer = policy if policy is not None else load_policy(config, last[1] if last else None)
    if last is None and config.training.finetune == "lora":
        # Nothing trained yet: the adapter iteration 1 trains from is drawn from the run's seed, so a fresh
        # run, a resumed one and a rollback to the base model (`restore_policy`) all start from the same one.
        init_adapters(model, config.seed)
    engine = _policy_engine(config, model, tokenizer, last)
    _check_online(config, tokenizer)
    judging = TokenCounter(judge_engine(config, engine))
    tasks = build_tasks(config.tasks, engine, source_embedder(config), judging.engine)

    def engine_for(member: JudgeConfig) -> Engine:
        return judge_engine(config.model_copy(update={"judge": member}), engine)

    # An ensemble member naming its own `model` runs on that model, its generated tokens counted as the judge's.
    judge = build_judge(config.judge, judging, tasks, engine_for=lambda m: TokenCounter(engine_for(m), into=judging))
    scorer = heldout_judge(judge, config.judge, judging)
    if config.evaluation.judge_heldout and scorer is not judge:
        # With -v only: the results table's caption names the held-out judge.
        log.debug("held-out answers are scored by a direct judge: the %s judge compares samples (for some or all "
                  "tasks), which cannot score one answer", judge.name)
    ctx = RunContext(
        config=config, run_dir=run_dir, store=store, policy=model, tokenizer=tokenizer, engine=engine,
        judge_engine=judging, judge=judge, heldout_judge=scorer, reference_judge=None, tasks=tasks,
    )
    if config.monitors.enabled:
        ctx.monitors = build_monitors(config, ctx.embedder())
    ctx.reference_judge = _reference_judge(config, engine_for)
    return ctx


def _policy_engine(config: RunConfig, model: Any, tokenizer: Any, last: tuple[int, str] | None) -> Engine:
    """The engine the policy generates and self-judges on: in-process, a server, vLLM, or Ray replicas."""
    if config.distributed.backend == "ray":
        from autodidact.distributed import RayEngine  # Ray (an extra) only for a Ray run

        return RayEngine.from_config(config, tokenizer, checkpoint=last[1] if last else None)
    engine = build_policy_engine(config, model, tokenizer)
    if last is not None and isinstance(engine, ServesCheckpoints):
        engine.load_checkpoint(Path(last[1]), last[0])  # a resumed run serves its last trained weights
    return engine


def _check_online(config: RunConfig, tokenizer: Any) -> None:
    """What GRPO refuses or leaves out, said before any question is written."""
    if config.training.method != "grpo":
        return
    if any(s.type == "documents" and s.search for s in config.tasks.sources):
        check_tools(tokenizer)  # GRPO hands TRL the search tool: refused now, before questions are written
    deployed = [s.name for s in config.tasks.sources if s.type == "logs" and s.include_deployed]
    if deployed:
        log.warning(
            "training.method 'grpo' samples its own completions: the deployed replies of logs sources %s "
            "are not candidates (they are with sft and dpo)",
            ", ".join(deployed),
        )


def _embedder(config: RunConfig) -> Embedder | None:
    """The sentence embedder of the diversity monitor and near-duplicate removal, or None when neither runs."""
    if not (config.monitors.enabled or config.selection.dedup_similarity is not None):
        return None
    spec = config.monitors.diversity.embedder
    if spec == "none" and config.selection.dedup_similarity is not None:
        spec = "default"  # near-duplicate removal needs one even when the monitor does without
    return embeddings.load_embedder(spec)  # looked up when called: a test may hand in its own embedder


def source_embedder(config: RunConfig) -> Embedder | None:
    """The embedder for task sources that need one (self-written prompts, documents), else None."""
    if not any(s.type in ("self_instruct", "documents") for s in config.tasks.sources):
        return None
    spec = config.monitors.diversity.embedder
    return embeddings.load_embedder("default" if spec == "none" else spec)


def _reference_judge(config: RunConfig, engine_for) -> Judge | None:
    """A direct judge on a fixed model (`monitors.reward_hacking.reference_judge`), or None."""
    spec = config.monitors.reward_hacking.reference_judge
    if spec is None or not config.monitors.enabled:
        return None

    j = config.judge.model_copy(update={"model": spec})
    try:
        engine = engine_for(j)
    except AutodidactError as exc:
        raise AutodidactError(str(exc).replace("judge.model", "monitors.reward_hacking.reference_judge")) from None
    return DirectScoreJudge(engine, mode=j.mode, batch_size=j.batch_size, min_mass=j.min_score_mass)
