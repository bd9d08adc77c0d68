"""One training process of a multi-process training: `python -m autodidact.training.worker JOB_FOLDER`.

Started N times by `accelerate launch` (see `training.multiprocess`), never by
hand. Each process rebuilds the policy the parent wrote to the job folder,
runs the same `train_sft` / `train_dpo` as one-process training (TRL's
trainer, under accelerate, shards each global batch over the processes and
all-reduces the gradients), and saves the trained weights through the
trainer, which gathers them where DeepSpeed ZeRO-3 or FSDP shard them; only
the main process writes. A failure is written to `error-RANK.json` for the
parent to report in one line.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autodidact.compat.datasets import shared_from_list
from autodidact.config import TrainingConfig
from autodidact.errors import AutodidactError
from autodidact.progress import set_quiet
from autodidact.records import PreferencePair, SFTExample
from autodidact.tracking import TrainerReport
from autodidact.training.dpo import train_dpo
from autodidact.training.multiprocess import JobFolder
from autodidact.training.policy import policy_from
from autodidact.training.sft import train_sft


@dataclass(frozen=True)
class _TrainerKept(TrainerReport):
    """A report that also keeps the trainer: `run_trainer` hands it to `attach`, and we save through it."""

    trainers: list = field(default_factory=list, compare=False, repr=False)

    def attach(self, trainer) -> None:
        super().attach(trainer)
        self.trainers.append(trainer)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m autodidact.training.worker JOB_FOLDER (started by accelerate launch)", file=sys.stderr)
        return 2
    job = JobFolder(Path(args[0]))
    rank = int(os.environ.get("RANK", "0"))
    try:
        train(job, rank)
    except AutodidactError as exc:
        _report(job, rank, "AutodidactError", str(exc))
        print(f"autodidact: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:
        _report(job, rank, type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise
    finally:
        _leave_process_group()
    return 0


def train(job: JobFolder, rank: int) -> None:
    """Rebuild the policy, train it on the job's data, save it (main process) with the `TrainResult`."""
    from accelerate import PartialState

    spec = json.loads(job.job.read_text(encoding="utf-8"))
    if rank != 0:
        _quiet()
    set_quiet(rank != 0)  # one progress bar, not one per process
    # The process group, now rather than when the trainer starts: `shared_from_list` below needs its barrier.
    # The trainer's own `PartialState` is this one (a shared singleton).
    state = PartialState(cpu=spec["device"] == "cpu")
    training = TrainingConfig(**spec["training"])
    # The policy as the parent had it, on this process's device: base + adapter (LoRA), or the whole model.
    device = "cpu" if spec["device"] == "cpu" else f"{spec['device']}:{int(os.environ.get('LOCAL_RANK', '0'))}"
    policy, tokenizer = policy_from(spec["base_model"], str(job.policy), training, spec["dtype"], device)
    record = PreferencePair if spec["method"] == "dpo" else SFTExample
    with job.data.open(encoding="utf-8") as lines:
        data = [record(**json.loads(line)) for line in lines if line.strip()]
    report = _TrainerKept(**spec["report"])
    if spec["method"] == "dpo":
        with shared_from_list(job.root / "datasets", state):  # DPO's reference cache, one file for all processes
            result = train_dpo(policy, tokenizer, data, training, spec["seed"], report)
    else:
        result = train_sft(policy, tokenizer, data, training, spec["seed"], report)
    (trainer,) = report.trainers
    # Every process calls it (ZeRO-3 and FSDP gather the shards collectively); the trainer writes on the main one.
    trainer.save_model(str(job.trained))
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        partial = job.result.with_suffix(".tmp")
        partial.write_text(json.dumps(result.__dict__), encoding="utf-8")
        partial.rename(job.result)  # the parent reads the result only once it is whole


def _quiet() -> None:
    """Warnings and progress bars from the main process only: the other processes would repeat them."""
    import warnings

    import datasets
    import transformers

    warnings.simplefilter("ignore")
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.disable_progress_bar()


def _report(job: JobFolder, rank: int, kind: str, message: str) -> None:
    try:
        job.error(rank).write_text(json.dumps({"rank": rank, "kind": kind, "message": message}), encoding="utf-8")
    except OSError:
        pass  # the folder is gone (the parent was stopped): nobody to tell


def _leave_process_group() -> None:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:
        pass  # exiting anyway; a peer that already died can make this fail


if __name__ == "__main__":
    sys.exit(main())
