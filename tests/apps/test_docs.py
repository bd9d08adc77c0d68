"""The docs stay true to the code.

- docs/CONFIG.md is exactly what `autodidact.apps.config_reference` generates;
- every relative link (and anchor) in the README, docs/ and the examples' READMEs resolves;
- every shipped YAML config validates, its built-in tasks can supply its prompts, and its
  header names the command that runs it;
- every `autodidact ...` command line in the docs names a real command and real options,
  with `--set` overrides that validate; every `autodidact.run({...})` example validates.
"""

from __future__ import annotations

import ast
import difflib
import re
import shlex
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel

from autodidact.apps.cli import app
from autodidact.apps.config_reference import REGENERATE, reference_markdown, source_types
from autodidact.config import RunConfig, TasksConfig, load_config, validate_config
from autodidact.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
DOC_PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").glob("**/README.md")])
ACCELERATE_CONFIGS = ROOT / "configs" / "accelerate"  # `accelerate launch` configs: test_multiprocess_training.py
CONFIGS = sorted(
    p for p in [*(ROOT / "configs").glob("**/*.yaml"), *(ROOT / "examples").glob("**/*.yaml")]
    if ACCELERATE_CONFIGS not in p.parents
)
GPU_CONFIGS = sorted((ROOT / "configs" / "gpu").glob("*.yaml"))

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _split_fences(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(prose lines, [(fence info, code lines)]) of a Markdown page."""
    prose: list[str] = []
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
                blocks.append((line.strip().lstrip("`~").strip(), current))
            else:
                current = None
            continue
        (prose if current is None else current).append(line)
    return prose, blocks


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as '-', repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _split_fences(text)[0]:
        match = HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", re.sub(r"<[^>]+>", "", match.group(2)).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


# --- the configuration reference ----------------------------------------------------------------


def test_config_reference_is_current():
    path = ROOT / "docs" / "CONFIG.md"
    expected = reference_markdown()
    actual = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual != expected:
        diff = "".join(
            list(
                difflib.unified_diff(actual.splitlines(True), expected.splitlines(True), "docs/CONFIG.md", "generated")
            )[:40]
        )
        pytest.fail(f"docs/CONFIG.md is out of date with src/autodidact/config/__init__.py. Regenerate it: {REGENERATE}\n{diff}")


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key a config accepts, dotted; fields of a source type as `tasks.sources[].field`."""
    keys = []
    for name, field in model.model_fields.items():
        if f"{prefix}{name}" == "judge":  # the union on judge.method: every method's class
            from autodidact.config.judge import RUN_CLASSES

            keys += sorted({key for cls in RUN_CLASSES for key in _leaf_keys(cls, "judge.")})
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys += _leaf_keys(field.annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    if model is TasksConfig:
        keys += [f"tasks.sources[].{name}" for source in source_types() for name in source.model_fields]
    return keys


def test_config_reference_lists_every_key_with_its_help():
    page = reference_markdown()
    keys = _leaf_keys(RunConfig)
    assert len(keys) > 100  # every section was walked, not just the top level
    missing = [key for key in keys if f"| `{key}` |" not in page]
    assert not missing, f"keys missing from the reference: {missing}"
    assert page.count("### `tasks.sources`: `type: ") == 4  # one table per source type
    assert reference_markdown() == page  # deterministic


def test_config_reference_renders_types_and_defaults():
    page = reference_markdown()
    assert "| `judge.mode` | one of `logprobs`, `generate` | `logprobs` |" in page
    assert (
        "| `tasks.names` | list of string, each one of `arithmetic`, `instructions` | `[arithmetic, instructions]` |"
        in page
    )
    assert "| `generation.top_p` | number in (0, 1] | `0.95` |" in page
    assert "| `tasks.sources[].path` | string | required |" in page
    assert "| `selection.min_score` | number in [0, 10], or null | `null` |" in page
    assert "type: file \\| self_instruct" in page  # pipes in help texts do not break the table


# --- links --------------------------------------------------------------------------------------


def test_doc_pages_found():
    names = {_rel(p) for p in DOC_PAGES}
    expected = {
        "README.md",
        "docs/QUICKSTART.md",
        "docs/CONCEPTS.md",
        "docs/CONFIG.md",
        "docs/GPU.md",
        "docs/JUDGES.md",
    }
    assert expected <= names, expected - names


def _relative_links(page: Path) -> list[str]:
    """Link and image targets in a page's prose (not in code), other than URLs with a scheme."""
    targets = []
    for line in _split_fences(page.read_text(encoding="utf-8"))[0]:
        for target in LINK.findall(re.sub(r"`[^`]*`", "``", line)):  # code spans hold no links
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
                targets.append(target)
    return targets


def test_relative_links_found():
    assert sum(len(_relative_links(page)) for page in DOC_PAGES) >= 60


@pytest.mark.parametrize("page", DOC_PAGES, ids=_rel)
def test_relative_links_resolve(page: Path):
    broken = []
    for target in _relative_links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in github_anchors(dest.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with anchor #{anchor} in {_rel(dest)}")
    assert not broken, f"{_rel(page)}: broken links: {broken}"


# --- shipped configs ----------------------------------------------------------------------------


def test_configs_found():
    names = {_rel(p) for p in CONFIGS}
    assert "configs/default.yaml" in names and "examples/apollo13/config.yaml" in names
    assert {_rel(p) for p in GPU_CONFIGS} == {
        "configs/gpu/llama31-8b-lora.yaml",
        "configs/gpu/qwen25-7b-lora.yaml",
        "configs/gpu/mistral-7b-lora.yaml",
        "configs/gpu/qwen25-7b-vllm-judge.yaml",
        "configs/gpu/llama31-8b-vllm-server.yaml",
        "configs/gpu/mistral-7b-vllm-judge.yaml",
        "configs/gpu/qwen25-7b-ray.yaml",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=_rel)
def test_shipped_config_validates(path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in the configs are relative to the repository root
    config = load_config(path)
    t = config.tasks
    for name in t.names:  # checked when the run builds its prompts, not by the config: check here
        capacity = TASKS[name]().capacity()
        wanted = t.train_size + t.heldout_size + t.paraphrase_size()  # the paraphrased held-out set comes from the pool
        assert wanted <= capacity, f"{name}: {t.train_size}+{t.heldout_size}+{t.paraphrase_size()} > {capacity}"
    for source in t.sources:
        if source.type in ("documents", "logs") or Path(source.path).suffix:
            assert Path(source.path).exists(), f"{source.name}: {source.path} does not exist"
    command = f"autodidact run {_rel(path)}"
    assert command in path.read_text(encoding="utf-8"), f"{_rel(path)}: its header comment must give `{command}`"


@pytest.mark.parametrize("path", GPU_CONFIGS, ids=_rel)
def test_gpu_configs_are_marked_not_run(path: Path):
    head = path.read_text(encoding="utf-8")[:600]
    assert "NOT RUN" in head
    gpu_doc = (ROOT / "docs" / "GPU.md").read_text(encoding="utf-8")
    assert f"../configs/gpu/{path.name}" in gpu_doc, f"docs/GPU.md does not describe {path.name}"
    config = load_config(path)
    assert config.model.device == "cuda" and config.model.dtype == "bfloat16"
    assert config.training.finetune == "lora" and 16 <= config.training.lora_r <= 64


# --- commands and examples in the docs ----------------------------------------------------------


def _command_lines(page: Path) -> list[str]:
    """Lines of code blocks that run `autodidact` (env assignments and comments stripped, continuations joined)."""
    lines = []
    for _, block in _split_fences(page.read_text(encoding="utf-8"))[1]:
        joined = "\n".join(block).replace("\\\n", " ")
        for line in joined.splitlines():
            words = line.strip().split()
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
                words.pop(0)
            if words and words[0] == "autodidact":
                lines.append(" ".join(words))
    return lines


def _cli_commands() -> dict[str, set[str]]:
    """Each command's name -> the option strings it accepts."""
    group = typer.main.get_command(app)
    return {
        name: {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
        for name, command in group.commands.items()
    }


ALL_COMMAND_LINES = [(page, line) for page in DOC_PAGES for line in _command_lines(page)]


def test_command_lines_found():
    assert len(ALL_COMMAND_LINES) >= 20
    assert any(_rel(page) == "docs/QUICKSTART.md" for page, _ in ALL_COMMAND_LINES)


@pytest.mark.parametrize(
    "page,line", ALL_COMMAND_LINES, ids=[f"{_rel(p)}:{i}" for i, (p, _) in enumerate(ALL_COMMAND_LINES)]
)
def test_documented_command_lines_are_valid(page: Path, line: str, monkeypatch):
    monkeypatch.chdir(ROOT)
    words = shlex.split(line, comments=True)[1:]
    while words and words[0] in ("-v", "--verbose", "-q", "--quiet"):
        words.pop(0)
    commands = _cli_commands()
    assert words and words[0] in commands, f"{_rel(page)}: `{line}`: unknown command; known: {sorted(commands)}"
    command, args = words[0], words[1:]
    sets = []
    for i, word in enumerate(args):
        if word.startswith("-"):
            option = word.split("=", 1)[0]
            assert option in commands[command], f"{_rel(page)}: `{line}`: `{command}` has no option {option}"
            if option == "--set":
                sets.append(word.split("=", 1)[1] if "=" in word else args[i + 1])
    if command == "run":
        config = args[0] if args and not args[0].startswith("-") and (ROOT / args[0]).is_file() else None
        load_config(config, sets)
    elif sets:
        load_config(None, sets)


def _run_examples(page: Path) -> list[str]:
    """Source of the dict given to `autodidact.run(...)` in a page's Python blocks."""
    found = []
    for info, block in _split_fences(page.read_text(encoding="utf-8"))[1]:
        if info != "python":
            continue
        for node in ast.walk(ast.parse("\n".join(block))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "autodidact"
            ):
                found.append(ast.unparse(node.args[0]))
    return found


def test_python_run_examples_validate():
    examples = [(page, source) for page in DOC_PAGES for source in _run_examples(page)]
    assert any(page.name == "QUICKSTART.md" for page, _ in examples)  # the Python API's example (the README links it)
    for page, source in examples:
        try:
            validate_config(ast.literal_eval(source))
        except Exception as exc:
            pytest.fail(f"{_rel(page)}: autodidact.run({source}): {exc}")


# --- the architecture page ------------------------------------------------------------------------

ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
SOURCE = ROOT / "src" / "autodidact"
TOP_FOLDERS = ("tests/", "configs/", "docs/", "benchmarks/", "examples/", "src/")
NAMED_PATH = re.compile(r"`([\w./-]+(?:\.py|/))`")
NAMED_MODULE = re.compile(r"\bautodidact(?:\.\w+)+")


def _architecture_names() -> tuple[list[str], list[str]]:
    """(paths, dotted modules) that docs/ARCHITECTURE.md names, in backticks or in its diagrams.

    In a line that names a folder (`judges/`), a bare file name after it (`direct.py`) is in that folder.
    """
    text = ARCHITECTURE.read_text(encoding="utf-8")
    prose, blocks = _split_fences(text)
    paths = []
    for line in prose:
        names = NAMED_PATH.findall(line)
        base = next((n for n in names if n.endswith("/")), "")
        bare = [n for n in names if "/" not in n.rstrip("/") and not n.startswith(TOP_FOLDERS)]
        paths += [base + n if base and n in bare and n != base else n for n in names]
    for _, lines in blocks:
        paths += [word for line in lines for word in line.split() if word.endswith((".py", "/")) and "/" in word]
    return sorted(set(paths)), sorted(set(NAMED_MODULE.findall(text)))


def _exists(path: str) -> bool:
    if path.startswith(TOP_FOLDERS):
        return (ROOT / path).exists()
    return (SOURCE / path).exists()


def test_architecture_names_only_modules_that_exist():
    paths, modules = _architecture_names()
    assert len(paths) > 60, f"found only {len(paths)} paths in {ARCHITECTURE.name}: {paths}"
    missing = [p for p in paths if not _exists(p)]
    for module in modules:
        parts = Path(*module.split(".")[1:])
        if not ((SOURCE / parts).with_suffix(".py").is_file() or (SOURCE / parts / "__init__.py").is_file()):
            missing.append(module)
    assert not missing, f"docs/ARCHITECTURE.md names what is not in the tree (paths under src/autodidact/): {missing}"
