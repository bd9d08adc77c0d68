"""`autodidact` command line: run, resume, eval, documents, report, review, export, chat, init; the study's
compare, screen and decay live in cli_study.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from autodidact.apps.cli_study import STUDY_COMMANDS
from autodidact.apps.log_setup import configure_logging
from autodidact.apps.summary import (
    alerts_table,
    control_notes,
    documents_sources,
    documents_table,
    iteration_table,
    read_config,
    timing_table,
)
from autodidact.config import example_yaml, load_config, to_yaml
from autodidact.config.base import MAX_SEED
from autodidact.errors import AutodidactError
from autodidact.progress import set_quiet
from autodidact.stopping import best_phrase

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
    config = read_config(result.run_dir)
    if documents := [str(s.get("name", "documents")) for s in documents_sources(config)]:
        out.print(documents_table(result.iterations, documents))
    for line in control_notes(config):
        out.print(line, highlight=False)
    if result.alerts:
        out.print(alerts_table(result.alerts))
    else:
        out.print("No monitor raised an alert.")
    if result.paused:
        out.print(f"[yellow]Paused:[/yellow] {result.paused}", highlight=False)
        return
    trained = sum(1 for row in result.iterations if row["iteration"] > 0)
    best = best_phrase(result.best_iteration, trained)
    if result.best_checkpoint:
        best += f", checkpoint {result.best_checkpoint}"
    out.print(f"Stopped: {result.stop_reason}. Best: {best}. Run directory: {result.run_dir}", highlight=False)
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
    model: Annotated[
        str,
        typer.Argument(help="'default', a model directory, a .gguf file, a checkpoint, or a run directory "
                       "(see --iteration)."),
    ],
    config: Annotated[
        Optional[Path],
        typer.Option(help="Evaluate on the held-out prompts a run with this config makes (every task and source)."),
    ] = None,
    source: Annotated[
        Optional[Path],
        typer.Option(help="Evaluate on every row of this prompt file (.jsonl, .csv, .parquet; columns prompt, "
                     "reference)."),
    ] = None,
    verifier: Annotated[
        Optional[str],
        typer.Option(help="With --source: how a row's reference grades the answer: exact (default), number, regex, "
                     "json_keys, python_tests or 'pkg.mod:fn'."),
    ] = None,
    iteration: Annotated[
        Optional[str], typer.Option(help="With a run directory: 'best' (default), 'last', 'base' or a number.")
    ] = None,
    compare: Annotated[
        Optional[str],
        typer.Option(help="A second model on the same prompts (a spec, a run directory, or with a run directory "
                     "as MODEL: base, last, N); prints the paired difference and its 95% interval."),
    ] = None,
    task: Annotated[list[str], typer.Option("--task", help="Only this task (repeatable; default: every task).")] = [],
    heldout_size: Annotated[
        Optional[int], typer.Option(min=1, max=100_000, help="Held-out prompts per built-in task (default 48).")
    ] = None,
    seed: Annotated[
        Optional[int],
        typer.Option(min=0, max=MAX_SEED, help="Seed of the prompts (default 0, or the config's)."),
    ] = None,
    judge: Annotated[
        Optional[str], typer.Option(help="Held-out judge method, 'none' to skip (default: the config's, or direct).")
    ] = None,
    max_new_tokens: Annotated[
        Optional[int], typer.Option(min=1, max=8192, help="Longest answer (default: evaluation.max_new_tokens, 64).")
    ] = None,
    dtype: Annotated[
        Optional[str], typer.Option(help="Weights dtype: auto, float32, bfloat16, float16 (default: model.dtype).")
    ] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a key of --config: --set seed=3")] = [],
) -> None:
    """Evaluate a model or a run's checkpoint on held-out prompts; with --compare, two models paired."""
    from autodidact.apps.evaluate import comparison_table, evaluate

    report = evaluate(
        model, config=config, source=source, verifier=verifier, overrides=set_, tasks=task, iteration=iteration,
        compare=compare, heldout_size=heldout_size, seed=seed, judge=judge, max_new_tokens=max_new_tokens, dtype=dtype,
    )
    names = report.task_names()
    first = report.evaluations[0]
    if compare is None:
        label = "-" if first.target.iteration is None else str(first.target.iteration)
        title = f"Held-out evaluation of {first.target.label} on {report.heldout.describe}"
        out.print(iteration_table([first.row(label)], names, title=title))
        return
    rows = [e.row(label) for e, label in zip(report.evaluations, ("A", "B"), strict=True)]
    out.print(iteration_table(rows, names, title=f"Held-out evaluation on {report.heldout.describe}"))
    out.print(comparison_table(report))


for _command in STUDY_COMMANDS:  # compare, screen, decay: apps/cli_study.py
    app.command()(_command)


@app.command()
def documents(
    folder: Annotated[Path, typer.Argument(help="Folder of .md, .txt and .html documents (searched recursively).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that holds the run directory.")] = Path("runs"),
    name: Annotated[
        Optional[str], typer.Option(help="Task name of the documents (default: the folder's name).")
    ] = None,
    iterations: Annotated[int, typer.Option(min=1, max=1000, help="Training iterations.")] = 3,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed of the questions, sampling and training.")] = 0,
    set_: Annotated[
        list[str], typer.Option("--set", help="Override a field: --set tasks.sources.0.chunk_chars=800")
    ] = [],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the run's config as YAML and stop.")] = False,
) -> None:
    """Teach the model a folder of your documents: it writes questions about them, answers by searching, learns."""
    from autodidact.apps.documents_cmd import check_folder, documents_config

    config = documents_config(folder, name=name, output_dir=out_dir, iterations=iterations, seed=seed, overrides=set_)
    found = check_folder(config)  # before the run directory is made: a bad folder is one line, nothing written
    summary = f"{folder}: {len(found.documents)} document(s) read, {found.describe_skipped()}"
    if dry_run:
        out.print(f"# {summary}\n{to_yaml(config)}", markup=False, highlight=False, soft_wrap=True)
        return
    out.print(summary, markup=False, highlight=False)
    from autodidact.loop import run as run_loop

    _show_result(run_loop(config))


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="The run directory.")],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Where to write the HTML (default RUN_DIR/report.html).")
    ] = None,
    examples: Annotated[
        int, typer.Option(min=0, max=1000, help="Training prompts shown per iteration in the example tables.")
    ] = 5,
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
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web page.")] = 8765,
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
    max_new_tokens: Annotated[int, typer.Option(min=1, max=8192, help="Most tokens per reply.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, max=5.0, help="Sampling temperature (0: greedy).")] = 0.7,
    system: Annotated[Optional[str], typer.Option(help="System message that starts the conversation.")] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of the first reply (reply k uses seed + k).")
    ] = 0,
) -> None:
    """Chat with a model in the terminal (/reset clears the history, /exit quits)."""
    from autodidact.apps.chat import chat as chat_loop

    chat_loop(model, compare, max_new_tokens, temperature, system, console=out, seed=seed)


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Where to write the example config.")] = Path("autodidact.yaml")) -> None:
    """Write an example config listing every option with a comment (missing folders are created)."""
    if path.is_dir():
        raise AutodidactError(f"'{path}' is a folder; give a file path such as {path / 'autodidact.yaml'}.")
    if path.exists():
        raise AutodidactError(f"'{path}' exists; choose another path or delete it first.")
    folder = next(p for p in path.parents if p.exists())  # missing folders are created
    if not folder.is_dir():
        raise AutodidactError(f"'{folder}' is a file, so {path} cannot be written; choose another path.")
    _write_new(path, example_yaml(), "choose another path")
    out.print(f"Wrote {path}. Run it with: autodidact run {path}")


def _write_new(path: Path, text: str, fix: str) -> None:
    """Write a new file whole or not at all: missing folders made, a temporary name renamed when complete.

    A failure (read-only folder, full disk) removes what was made and raises one line ending in `fix`.
    """
    import shutil
    from contextlib import suppress

    from autodidact.errors import file_error

    created = next((p for p in reversed([path.parent, *path.parent.parents]) if not p.exists()), None)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.rename(path)
    except OSError as exc:
        with suppress(OSError):  # nothing to remove when the folder could not be made
            tmp.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise file_error(exc, fix, path) from None


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
        _print_error(f"{_usage_message(exc)}; check `{where} --help`.")
        sys.exit(2)
    except AutodidactError as exc:
        _print_error(str(exc))
        sys.exit(2)
    except OSError as exc:  # the last resort: the commands turn the ones they expect into a specific fix
        from autodidact.errors import file_error

        _print_error(str(file_error(exc, "check the path, its permissions and the free space")))
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    if code == 130:  # typer turns Ctrl-C into exit code 130
        err.print("interrupted; continue with `autodidact resume RUN_DIR`")
    sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc: typer.TyperException) -> str:
    """Click's message, with the value given where typer's pydantic check left it out ('... (got -3)')."""
    message = exc.format_message().rstrip(".")
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors() and "input" in cause.errors()[0]:
        given = str(cause.errors()[0]["input"])
        message += f" (got {given if len(given) <= 40 else given[:37] + '...'})"
    return message


def _print_error(message: str) -> None:
    from rich.markup import escape

    # escape(): the message quotes user text, and '[/b]' in it must print, not raise a MarkupError.
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
