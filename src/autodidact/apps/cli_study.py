"""The study's commands: `compare` (every judging method, paired runs), `screen` (label-free signals against
the verifier on one set of samples) and `decay` (what a run kept, by the verifier afterwards).

Plain functions with typer annotations; cli.py registers them on the `autodidact` app (STUDY_COMMANDS). As
there, each imports its heavy modules in its own body, so `autodidact --help` answers in a second.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from autodidact.config import load_config

out = Console()


def compare(
    methods: Annotated[
        list[str], typer.Option("--methods", help="Methods to run, comma-separated (default: every judge, SFT).")
    ] = [],
    dpo_best: Annotated[
        int, typer.Option(min=0, max=100, help="Also run DPO for this many of the best SFT self-judges.")
    ] = 2,
    budget: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of training prompts per iteration and held-out prompts.")
    ] = 1.0,
    iterations: Annotated[int, typer.Option(min=1, max=1000, help="Training iterations of every run.")] = 3,
    config: Annotated[Path, typer.Option(help="Base config of every run.")] = Path("configs/default.yaml"),
    output_dir: Annotated[Path, typer.Option(help="Folder of the run directories and compare.json.")] = Path(
        "runs/compare"
    ),
    results: Annotated[Path, typer.Option(help="Markdown file whose compare section is replaced.")] = Path(
        "docs/RESULTS.md"
    ),
    set_: Annotated[list[str], typer.Option("--set", help="Override a field of every run.")] = [],
) -> None:
    """Run every judging method with the same seeds and budget; write the comparison table.

    A method whose run directory already holds its run is resumed, not redone.
    """
    import shlex

    from autodidact.apps.compare import compare as compare_methods

    names = [name.strip() for item in methods for name in item.split(",") if name.strip()]
    command = shlex.join(["autodidact", *sys.argv[1:]])
    comparison = compare_methods(config, names, dpo_best, budget, iterations, output_dir, results, set_, command)
    out.print(comparison.table, markup=False, highlight=False, soft_wrap=True)
    out.print(f"Wrote the table into {results} and every number into {comparison.settings['json']}.")


def screen(
    config: Annotated[Path, typer.Option(help="Run config: model, tasks, seed, generation settings.")] = Path(
        "configs/default.yaml"
    ),
    prompts: Annotated[int, typer.Option(min=1, max=100_000, help="Training prompts per task.")] = 32,
    samples: Annotated[int, typer.Option(min=1, max=64, help="Samples of the base model per prompt.")] = 8,
    signals: Annotated[
        list[str], typer.Option("--signals", help="Signals to screen, comma-separated (default: every one).")
    ] = [],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of the cached samples, scores and tables.")] = Path(
        "runs/screen"
    ),
    set_: Annotated[list[str], typer.Option("--set", help="Override a field of the config.")] = [],
) -> None:
    """Score one set of base-model samples with every label-free signal; AUC and top-1 precision vs the verifier.

    Samples and each signal's scores are cached in OUT, so a rerun redoes nothing.
    """
    from autodidact.apps.screen_signals import signal_names  # no torch: a misspelt name answers at once

    names = signal_names([name.strip() for item in signals for name in item.split(",") if name.strip()])
    from autodidact.apps.screen import screen as screen_signals

    result = screen_signals(load_config(config, set_), prompts, samples, names, out_dir,
                            note=lambda text: out.print(text, markup=False, highlight=False))  # fmt: skip
    out.print(result.markdown, markup=False, highlight=False, soft_wrap=True)
    out.print(f"Wrote {out_dir / 'screen.md'} and {out_dir / 'screen.json'}.", highlight=False)


def decay(
    run_dir: Annotated[Path, typer.Argument(help="The run directory.")],
    floors: Annotated[
        str, typer.Option(help="Also: right / kept among each prompt's top sample at these score floors, e.g. 5,7.5.")
    ] = "",
) -> None:
    """Per task and iteration, by the verifier after the run: right / kept among the samples trained on, majority flips."""
    from autodidact.apps.decay import decay_figures, decay_lines, floor_figures

    try:
        levels = [float(f) for f in floors.split(",") if f.strip()]
    except ValueError:
        raise typer.BadParameter(f"{floors!r}: expected numbers separated by commas, e.g. 5,7.5", param_hint="--floors")
    lines = decay_lines(decay_figures(run_dir)) + (floor_figures(run_dir, levels) if levels else [])
    out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)  # one figure a line, unwrapped


STUDY_COMMANDS = (compare, screen, decay)
