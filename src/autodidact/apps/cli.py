"""`autodidact` command line: run, resume, eval, compare, report, review, export, chat, init."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from autodidact.apps.log_setup import configure_logging
from autodidact.apps.summary import alerts_table, iteration_table, timing_table
from autodidact.config import example_yaml, load_config
from autodidact.errors import AutodidactError
from autodidact.progress import set_quiet

# Each command imports the loop, the models, the report or the review server in its own body: those
# pull in torch, matplotlib or FastAPI, and `autodidact --help` or a typo should answer in a second.

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A language model that teaches itself.")
out = Console()
err = Console(stderr=True)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every stage.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; warnings only.")] = False,
) -> None:
    configure_logging(verbose, quiet)
    set_quiet(quiet)


def _show_result(result) -> None:
    tasks = sorted({t for row in result.iterations for t in row["tasks"]})
    out.print(iteration_table(result.iterations, tasks))
    out.print(timing_table(result.iterations))
    if result.alerts:
        out.print(alerts_table(result.alerts))
    else:
        out.print("No monitor raised an alert.")
    if result.paused:
        out.print(f"[yellow]Paused:[/yellow] {result.paused}", highlight=False)
        return
    best = f"iteration {result.best_iteration}" + (f" ({result.best_checkpoint})" if result.best_checkpoint else " (the base model)")
    out.print(f"Stopped: {result.stop_reason}. Best: {best}. Run directory: {result.run_dir}")
    out.print(f"Report: `autodidact report {result.run_dir}`", highlight=False)


@app.command()
def run(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config (see `autodidact init`).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a field: --set stopping.max_iterations=2")] = [],
) -> None:
    """Start a self-improvement run."""
    from autodidact.loop import run as run_loop

    _show_result(run_loop(load_config(config, set_)))


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")]) -> None:
    """Continue a killed or interrupted run; finished stages are not redone."""
    from autodidact.loop import resume as resume_loop

    _show_result(resume_loop(run_dir))


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Argument(help="'default', a model directory, a .gguf file, or a run's checkpoint.")],
    task: Annotated[list[str], typer.Option("--task", help="Task to evaluate (repeatable; default: all built-in).")] = [],
    heldout_size: Annotated[int, typer.Option(help="Held-out prompts per task.")] = 48,
    seed: Annotated[int, typer.Option(help="Seed of the task prompts (use the run's seed to match its held-out set).")] = 0,
    judge: Annotated[str, typer.Option(help="Self-judge for the score column ('none' to skip).")] = "direct",
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer (a run uses evaluation.max_new_tokens).")] = 64,
    dtype: Annotated[str, typer.Option(help="Weights dtype: auto, float32, bfloat16 (a run uses model.dtype).")] = "auto",
) -> None:
    """Evaluate a model on held-out prompts of the built-in tasks."""
    from autodidact.apps.evaluate import evaluate_model

    row = evaluate_model(model, task or None, heldout_size, seed, judge, max_new_tokens, dtype)
    out.print(iteration_table([row], sorted(row["tasks"]), title=f"Held-out evaluation of {model}"))


@app.command()
def compare(
    methods: Annotated[
        list[str], typer.Option("--methods", help="Methods to run, comma-separated (default: every judge, SFT).")
    ] = [],
    dpo_best: Annotated[int, typer.Option(help="Also run DPO for this many of the best SFT self-judges.")] = 2,
    budget: Annotated[float, typer.Option(help="Share of training prompts per iteration and held-out prompts.")] = 1.0,
    iterations: Annotated[int, typer.Option(help="Training iterations of every run.")] = 3,
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


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="The run directory.")],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Where to write the HTML (default RUN_DIR/report.html).")
    ] = None,
    examples: Annotated[int, typer.Option(help="Training prompts shown per iteration in the example tables.")] = 5,
) -> None:
    """Write one self-contained HTML report of a run: plots, monitors, alerts, examples."""
    from autodidact.apps.report import write_report

    path = write_report(run_dir, output, examples)
    out.print(f"Wrote {path}")


@app.command()
def review(
    run_dir: Annotated[Path, typer.Argument(help="The run directory whose checkpoint items to rate.")],
    terminal: Annotated[bool, typer.Option("--terminal", help="Rate in the terminal instead of a web page.")] = False,
    import_file: Annotated[
        Optional[Path], typer.Option("--import", help="Import ratings from a CSV/JSONL file (item_id, rating).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address the web page listens on; any but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web page.")] = 8765,
    token: Annotated[
        Optional[str],
        typer.Option(envvar="AUTODIDACT_REVIEW_TOKEN", show_envvar=True,
                     help="Token the page asks for (open /?token=TOKEN once); needed with a --host other than "
                          "loopback. Prefer the environment variable: a command line is visible to other users."),
    ] = None,
) -> None:
    """Human validation checkpoints: rate judged items so the judge's agreement with people is measured."""
    from autodidact.apps.review.cli import review_command

    review_command(run_dir, terminal, import_file, host, port, token=token)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="The run directory.")],
    output: Annotated[Path, typer.Argument(help="New (or empty) directory for the Hugging Face checkpoint.")],
    iteration: Annotated[str, typer.Option(help="'best', 'last' or an iteration number.")] = "best",
    adapter_only: Annotated[
        bool, typer.Option("--adapter-only", help="Write the LoRA adapter instead of merged weights.")
    ] = False,
    push_to_hub: Annotated[
        Optional[str], typer.Option("--push-to-hub", help="Also upload to this hub repo (user/name); needs network.")
    ] = None,
    dtype: Annotated[
        Optional[str],
        typer.Option(help="Weights dtype of a merged export (default: the run's; if 'auto', float32, or float16 "
                     "for gguf)."),
    ] = None,
    out_format: Annotated[
        str,
        typer.Option("--format", help="'hf': a Hugging Face model directory; 'gguf': model.gguf for llama.cpp "
                     "(merged; the base must come from a GGUF file, e.g. model.name 'default')."),
    ] = "hf",
) -> None:
    """Write a run's checkpoint as a standard Hugging Face model (merged adapter, tokenizer, chat template) or GGUF."""
    from autodidact.apps.export import export_run

    path = export_run(run_dir, output, iteration, adapter_only, push_to_hub, dtype, out_format)
    where = f" and pushed to {push_to_hub}" if push_to_hub else ""
    if out_format == "gguf":
        out.print(f"Wrote {path}{where}. Serve it with: llama-server -m {path / 'model.gguf'}", highlight=False)
        return
    out.print(f"Wrote {path}{where}. Load it with AutoModelForCausalLM.from_pretrained('{path}').", highlight=False)


@app.command()
def chat(
    model: Annotated[str, typer.Argument(help="A run directory, a checkpoint or export, 'default', a model dir or .gguf.")],
    compare: Annotated[
        bool, typer.Option("--compare", help="Show the base model's and the improved model's answers side by side.")
    ] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens per reply.")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.7,
    system: Annotated[Optional[str], typer.Option(help="System message that starts the conversation.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first reply (reply k uses seed + k).")] = 0,
) -> None:
    """Chat with a model in the terminal (/reset clears the history, /exit quits)."""
    from autodidact.apps.chat import chat as chat_loop

    chat_loop(model, compare, max_new_tokens, temperature, system, console=out, seed=seed)


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Where to write the example config.")] = Path("autodidact.yaml")) -> None:
    """Write an example config listing every option with a comment."""
    if path.exists():
        raise AutodidactError(f"'{path}' exists; choose another path or delete it first.")
    path.write_text(example_yaml(), encoding="utf-8")
    out.print(f"Wrote {path}. Run it with: autodidact run {path}")


def main() -> None:
    """Entry point: user errors print one line and exit 2, with no traceback."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        # standalone_mode=False: usage errors are raised instead of printed as
        # typer's multi-line usage box, so they get the same one-line form as ours.
        code = app(prog_name="autodidact", standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors, as vendored by typer
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "autodidact"
        _print_error(f"{exc.format_message().rstrip('.')}; check `{where} --help`.")
        sys.exit(2)
    except AutodidactError as exc:
        _print_error(str(exc))
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    if code == 130:  # typer turns Ctrl-C into exit code 130
        err.print("interrupted; continue with `autodidact resume RUN_DIR`")
    sys.exit(code if isinstance(code, int) else 0)


def _print_error(message: str) -> None:
    from rich.markup import escape

    # escape(): the message quotes user text, and '[/b]' in it must print, not raise a MarkupError.
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
