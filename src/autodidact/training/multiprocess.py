"""Training in several processes: DDP (DeepSpeed ZeRO or FSDP on GPUs) through `accelerate launch`.

With `training.num_processes > 1` the loop's train step does not train in its
own process. `train_multiprocess` writes what the workers need into a job
folder under the run directory, runs

    python -m accelerate.commands.launch --num_processes N [launcher flags] -m autodidact.training.worker JOB

and waits, streaming the workers' output. Every worker rebuilds the policy as
it is now, trains it with the same `train_sft` / `train_dpo` the loop calls in
one process (TRL's trainers run data parallel under accelerate), and the
trainer saves the result once. The parent then loads those weights into its
live policy in place, so its engine and judge see them as after an in-process
training, and the job folder is removed.

Job folder (`JobFolder`): `job.json` (method, training config, seed, base
model, dtype, device, tracker), `data.jsonl` (the iteration's SFT examples or
preference pairs), `policy/` (the current adapter, or the whole model with
full fine-tuning), `trained/` (what the trainer saved), `result.json` (the
`TrainResult`, from the main process), `error-RANK.json` (a worker's error).

Launchers: without `training.accelerate_config`, `--multi_gpu` (accelerate's
torchrun launcher: N processes on this machine; DDP over NCCL on GPUs, and,
with ACCELERATE_USE_CPU set, over gloo on the CPU: `--cpu` alone would start
one process). With a config file, what it names (DDP, DeepSpeed, FSDP), with
`training.num_processes` processes.

Batches: `training.batch_size` is per process, so N processes step on N x
batch_size examples. accelerate deals the global batches of one seeded
shuffle to the ranks, batch i to rank i mod N, and transformers averages the
loss over the tokens of all ranks (`average_tokens_across_devices`): a run with
N processes of batch b takes the same optimizer steps, on the same examples,
as one process of batch N x b (`tests/test_multiprocess_training.py`). Only a
last, partial global batch differs: accelerate fills the ranks that would get
nothing with examples from the start of the epoch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from autodidact.config import RunConfig, TrainingConfig
from autodidact.errors import AutodidactError
from autodidact.models import resolve_model
from autodidact.records import PreferencePair, SFTExample
from autodidact.tracking import TrainerReport
from autodidact.training.dpo import train_dpo
from autodidact.training.policy import restore_policy
from autodidact.training.sft import train_sft
from autodidact.training.trainer import TrainResult

log = logging.getLogger(__name__)

WORKER_MODULE = "autodidact.training.worker"
METHODS = ("sft", "dpo")  # GRPO generates inside its trainer: it trains in the loop's process only
JOB_PREFIX = ".multiprocess-train-"  # the job folder's name in the run directory
TAIL_LINES = 200  # of the workers' output, kept to name the error when one crashes


@dataclass(frozen=True)
class JobFolder:
    """The files the parent and the workers exchange, under one folder."""

    root: Path

    @property
    def job(self) -> Path:
        return self.root / "job.json"

    @property
    def data(self) -> Path:
        return self.root / "data.jsonl"

    @property
    def policy(self) -> Path:
        return self.root / "policy"

    @property
    def trained(self) -> Path:
        return self.root / "trained"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    def error(self, rank: int) -> Path:
        return self.root / f"error-{rank}.json"

    def first_error(self) -> dict | None:
        """The error a worker wrote first: the cause, where the others died of its crash."""
        reports = sorted(self.root.glob("error-*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        for path in reports:
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
        return None


def train_multiprocess(
    config: RunConfig,
    policy,
    tokenizer,
    data: Sequence[SFTExample] | Sequence[PreferencePair],
    training: TrainingConfig,
    seed: int,
    work_dir: Path,
    report: TrainerReport = TrainerReport(),
) -> TrainResult:
    """One SFT or DPO pass over `data` in `training.num_processes` processes; `policy` is updated in place.

    Args:
        config: the run's config (the model spec the workers load the base weights from).
        policy: the live policy (a `PeftModel` with LoRA, the plain model with full fine-tuning).
        tokenizer: its tokenizer.
        data: SFT examples (method 'sft') or preference pairs (method 'dpo').
        training: this iteration's training config (`training.method`, `num_processes`, `accelerate_config`,
            and the learning rate of this attempt).
        seed: training seed.
        work_dir: where the job folder is made (the run directory); it is removed on return.
        report: where the trainer logs. TensorBoard works from the workers; W&B and MLflow runs live in this
            process, so the workers' per-step logs are not sent to them (the per-iteration metrics still are).

    Returns:
        What `train_sft` / `train_dpo` return, computed by the main worker; `seconds` is the whole
        call here (writing the job, starting the processes, loading the model, training, loading back).

    Raises:
        AutodidactError: a config the launch cannot work with (before anything starts), or a worker that
            failed (its error, and what to do).
    """

    start = time.perf_counter()
    if training.method not in METHODS:
        raise AutodidactError(
            f"training.method '{training.method}' trains in the loop's process only; set training.num_processes=1 "
            f"or use training.method {' or '.join(METHODS)}."
        )
    if not data:  # nothing to train on: the in-process function says so and returns at once
        return (train_dpo if training.method == "dpo" else train_sft)(policy, tokenizer, data, training, seed, report)
    device = next(policy.parameters()).device.type
    command, env = launch_command(training, device)
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    for stale in Path(work_dir).glob(JOB_PREFIX + "*"):  # left by a killed run: one training at a time per run
        shutil.rmtree(stale, ignore_errors=True)
    job = JobFolder(Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=work_dir)))
    try:
        _write_job(job, config, policy, tokenizer, data, training, seed, device, report)
        log.info("training in %d processes: %s", training.num_processes, " ".join(command))
        returncode, tail = _run_workers([*command, str(job.root)], env)
        if returncode != 0 or not job.result.is_file():
            raise _worker_failure(job, returncode, tail)

        restore_policy(policy, config.model_copy(update={"training": training}), str(job.trained))
        result = TrainResult(**json.loads(job.result.read_text(encoding="utf-8")))
    finally:
        shutil.rmtree(job.root, ignore_errors=True)
    policy.eval()
    return replace(result, seconds=time.perf_counter() - start)


def launch_command(training: TrainingConfig, device: str) -> tuple[list[str], dict[str, str]]:
    """The `accelerate launch` command line (without the job folder) and its environment.

    Raises:
        AutodidactError: `training.accelerate_config` is missing, unreadable or does not fit `device`, or
            more GPU processes are asked for than GPUs are visible.
    """
    n = training.num_processes
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n)]
    if training.accelerate_config is not None:
        cluster = read_accelerate_config(training.accelerate_config, device, n)
        command += ["--config_file", str(Path(training.accelerate_config).expanduser())]
        if cluster.main_process_port is None:
            command += ["--main_process_port", str(_free_port())]
    else:
        if device != "cpu":
            _check_gpus(n)
        # `--multi_gpu` is accelerate's torchrun launcher; with ACCELERATE_USE_CPU (below) its processes run
        # DDP over gloo. The explicit values keep a user's default accelerate config out of it.
        command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        command += ["--main_process_port", str(_free_port())]
        command += ["--multi_gpu"] if n > 1 else (["--cpu"] if device == "cpu" else [])
    command += ["-m", WORKER_MODULE]
    return command, _worker_env(n, device)


def read_accelerate_config(path: str, device: str, num_processes: int):
    """Load `training.accelerate_config` with accelerate's own loader; AutodidactError if it cannot be used here."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    field = f"training.accelerate_config '{path}'"
    file = Path(path).expanduser()
    if not file.is_file():
        raise AutodidactError(
            f"{field} is not a file; give an accelerate config (see configs/accelerate/) or leave it unset for DDP."
        )
    try:
        cluster = load_config_from_file(str(file))
    except Exception as exc:  # accelerate raises ValueError, TypeError, yaml errors...
        raise AutodidactError(
            f"{field} is not a valid accelerate config ({_first_line(exc)}); fix it, or write one with "
            "`accelerate config`."
        ) from None
    kind = cluster.distributed_type
    if kind in (DistributedType.DEEPSPEED, DistributedType.FSDP) and device == "cpu":
        raise AutodidactError(
            f"{field} asks for {kind.value}, which needs GPUs, but the policy is on the CPU; leave "
            "training.accelerate_config unset to train with DDP over gloo."
        )
    if kind == DistributedType.FSDP and "FULL_STATE_DICT" not in str(
        (cluster.fsdp_config or {}).get("fsdp_state_dict_type", "FULL_STATE_DICT")
    ):
        raise AutodidactError(
            f"{field} saves a sharded FSDP state dict, which the loop cannot load back into its policy; set "
            "fsdp_config.fsdp_state_dict_type: FULL_STATE_DICT."
        )
    ds = cluster.deepspeed_config or {}
    if kind == DistributedType.DEEPSPEED and str(ds.get("zero_stage")) == "3" and not ds.get("zero3_save_16bit_model"):
        raise AutodidactError(
            f"{field} runs ZeRO-3 without gathering the weights at save time, so no loadable checkpoint would be "
            "written; set deepspeed_config.zero3_save_16bit_model: true."
        )
    if num_processes > 1 and kind not in (DistributedType.MULTI_GPU, DistributedType.DEEPSPEED, DistributedType.FSDP):
        raise AutodidactError(
            f"{field} has distributed_type {kind.value}, which accelerate runs as a single process; use MULTI_GPU "
            "(DDP, gloo on the CPU), DEEPSPEED or FSDP, or leave it unset."
        )
    if cluster.num_machines != 1:
        raise AutodidactError(
            f"{field} spans {cluster.num_machines} machines; the loop launches training on its own machine only. "
            "Set num_machines: 1."
        )
    if device != "cpu" and kind != DistributedType.NO:
        _check_gpus(num_processes)
    return cluster


def _check_gpus(num_processes: int) -> None:
    import torch

    visible = torch.cuda.device_count()
    if num_processes > visible:
        raise AutodidactError(
            f"training.num_processes={num_processes} but {visible} GPU(s) are visible; one process per GPU: "
            f"lower training.num_processes to {max(visible, 1)}."
        )


def _worker_env(num_processes: int, device: str) -> dict[str, str]:
    env = dict(os.environ)
    source = str(Path(__file__).resolve().parents[2])  # src/: the workers import this autodidact
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # their lines arrive as they are written
    env["TOKENIZERS_PARALLELISM"] = "false"
    if device == "cpu":
        env["ACCELERATE_USE_CPU"] = "true"
        # N processes each with torch's default thread count would fight over the same cores.
        threads = str(max(1, _cpu_count() // num_processes))
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = threads
    return env


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _free_port() -> int:
    """A port free now, for the processes' rendezvous (torchrun's default, 29500, is shared by every job here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_job(job: JobFolder, config, policy, tokenizer, data, training, seed, device, report) -> None:

    with job.data.open("w", encoding="utf-8") as out:
        for record in data:
            out.write(json.dumps(asdict(record)) + "\n")
    # The policy as it is now: with LoRA only the adapter (the base comes from the model spec), with full
    # fine-tuning the whole model. Not the last checkpoint: iteration 1 has none, a retry has a new one.
    policy.save_pretrained(job.policy)
    tokenizer.save_pretrained(job.policy)
    dtype = str(policy.dtype).removeprefix("torch.")
    tracked = report if report.report_to == "tensorboard" else TrainerReport()
    spec = {
        "method": training.method,
        "training": training.model_dump(mode="json"),
        "seed": seed,
        "base_model": resolve_model(config.model.name) if training.finetune == "lora" else None,
        "dtype": dtype,
        "device": device,
        "report": asdict(tracked),
    }
    job.job.write_text(json.dumps(spec, indent=1), encoding="utf-8")


def _run_workers(command: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the launcher, copying its processes' output to our stderr; its exit status and last lines."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    # Its own session: on an interrupt we stop the launcher and every worker it started, and only those.
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)
            tail.append(line.rstrip())
        return process.wait(), list(tail)
    except BaseException:
        _stop(process)
        raise


def _stop(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _worker_failure(job: JobFolder, returncode: int, tail: list[str]) -> AutodidactError:
    """One line: what failed in the workers and what to do."""
    reported = job.first_error()
    if reported and reported.get("kind") == "AutodidactError":
        return AutodidactError(_one_line(reported["message"]))  # already names its fix
    if reported:
        what = f"{reported['kind']}: {reported['message']}"
    else:
        what = _last_error_line(tail) or f"the launcher exited with status {returncode}"
    return AutodidactError(_one_line(f"multi-process training failed: {what}; {_fix(what, returncode, tail)}"))


def _fix(what: str, returncode: int, tail: list[str]) -> str:
    text = "\n".join(tail[-40:]) + "\n" + what
    if returncode in (-9, 137) or "Signal 9" in text or "SIGKILL" in text or "exitcode  : -9" in text:
        return "a worker was killed, most often for lack of memory: lower training.batch_size or training.num_processes"
    if "EADDRINUSE" in text or "address already in use" in text.lower():
        return "another job took the processes' rendezvous port; run again"
    if "No module named 'deepspeed'" in text:
        return "pip install deepspeed for a DeepSpeed accelerate config"
    if "out of memory" in text.lower():
        return "lower training.batch_size, or use a DeepSpeed ZeRO-3 / FSDP training.accelerate_config"
    return "the workers' output above has the traceback; training.num_processes=1 trains in this process"


def _last_error_line(tail: list[str]) -> str | None:
    for line in reversed(tail):
        text = line.strip()
        head = text.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt")) or head.startswith("autodidact"):
            return text
    return next((line.strip() for line in reversed(tail) if line.strip()), None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
