"""One process of the crash harness: `autodidact.run` or `autodidact.resume`, reporting on a pipe and killing itself.

    python benchmarks/crash_child.py run CONFIG.json --marker-fd FD [--hook HOOK]
    python benchmarks/crash_child.py resume RUN_DIR --marker-fd FD [--hook HOOK]

Started by benchmarks/crash_harness.py, never by hand. It writes "start IT:STAGE"
as a stage that is not done starts, "load {json}" for every checkpoint file
loaded, and "done" at the end; with a hook it SIGKILLs itself at that exact
point (see the harness's docstring for the hooks).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from crash_run import checkpoint_state


def child(mode: str, target: str, marker_fd: int, hook: str | None) -> None:
    """`autodidact.run` (mode 'run', target a JSON config) or `autodidact.resume` (target a run directory)."""
    markers = os.fdopen(marker_fd, "w", buffering=1)
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    name, *where = (hook or "").split(":")

    # Before anything imports them by name: peft binds safetensors' functions at import.
    import safetensors.torch as st

    original_load, original_save = st.load_file, st.save_file

    def load_file(filename, *a, **kw):
        path = Path(filename)
        if "checkpoints" in path.parts:
            state = checkpoint_state(path.parent)
            markers.write("load " + json.dumps({"path": str(path), **state}) + "\n")
        return original_load(filename, *a, **kw)

    def save_file(tensors, filename, *a, **kw):
        original_save(tensors, filename, *a, **kw)
        if name == "ckpt-torn" and Path(filename).parent.name == f"iter-{where[0]}.tmp":
            with open(filename, "r+b") as f:
                f.truncate(os.path.getsize(filename) // 2)
            die()

    st.load_file, st.save_file = load_file, save_file

    if name in ("ckpt-renamed", "config-written"):
        original_rename = Path.rename
        watched = f"iter-{where[0]}.tmp" if name == "ckpt-renamed" else "config.yaml.tmp"

        def rename(self, target):
            moved = original_rename(self, target)
            if self.name == watched:
                die()
            return moved

        Path.rename = rename
    if name == "ckpt-partial":
        from transformers import PreTrainedTokenizerBase

        original_tokenizer_save = PreTrainedTokenizerBase.save_pretrained

        def tokenizer_save(self, save_directory, *a, **kw):
            if Path(save_directory).name == f"iter-{where[0]}.tmp":
                die()
            return original_tokenizer_save(self, save_directory, *a, **kw)

        PreTrainedTokenizerBase.save_pretrained = tokenizer_save

    import logging

    import autodidact
    from autodidact.store import RunStore

    if name == "before-commit":
        original_finish = RunStore.finish_stage

        def finish_stage(self, iteration, stage, *a, **kw):
            original_finish(self, iteration, stage, *a, **kw)
            if (str(iteration), stage) == (where[0], where[1]):
                die()  # the stage's rows and its mark are inserted; COMMIT never comes

        RunStore.finish_stage = finish_stage

    running = [None]  # the stage in progress, "it:stage"

    class StageStarts(logging.Handler):
        """The runner logs "iteration N: stage" (at DEBUG) as a stage that is not done yet starts: a marker."""

        def emit(self, record):
            if record.msg == "iteration %d: %s":
                running[0] = "%d:%s" % record.args
                markers.write(f"start {running[0]}\n")

    runner_log = logging.getLogger("autodidact.loop.runner")
    runner_log.setLevel(logging.DEBUG)
    runner_log.addHandler(StageStarts(logging.DEBUG))

    if name == "train-step":
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        def step(optimizer, args, kwargs):
            if running[0] == f"{where[0]}:train":
                die()  # the first optimizer step: gradients computed, no weight updated yet

        register_optimizer_step_pre_hook(step)

    if mode == "run":
        autodidact.run(json.loads(Path(target).read_text()))
    else:
        autodidact.resume(target)
    markers.write("done\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("run", "resume"))
    parser.add_argument("target", help="the run's JSON config (run) or its run directory (resume)")
    parser.add_argument("--marker-fd", type=int, required=True)
    parser.add_argument("--hook")
    args = parser.parse_args()
    child(args.mode, args.target, args.marker_fd, args.hook)


if __name__ == "__main__":
    main()
