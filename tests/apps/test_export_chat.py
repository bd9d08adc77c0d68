"""`export` and `chat` on a real tiny run: plain-transformers loading, errors, streaming, history, compare."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from tests.loop.test_loop import tiny_config
from typer.testing import CliRunner

import autodidact
import autodidact.apps.chat as chat_module
import autodidact.apps.cli as cli
from autodidact.apps.chat import chat, chat_once
from autodidact.apps.export import export_run
from autodidact.apps.log_setup import NOISY_LOGGERS
from autodidact.config import load_config
from autodidact.errors import AutodidactError
from autodidact.store import RunStore
from autodidact.training import load_policy

MESSAGES = [{"role": "user", "content": "What is 7 + 14? Answer with just the number."}]

# Runs with no autodidact on sys.path (-I, cwd elsewhere) and proves it never imported it.
PLAIN_LOAD = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
out, messages = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(out)
tokenizer = AutoTokenizer.from_pretrained(out)
text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
with torch.no_grad():
    logits = model(ids).logits[0]
    greedy = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
assert "autodidact" not in sys.modules, "loading imported autodidact"
print(json.dumps({"ids": ids[0].tolist(), "logits": logits.tolist(), "greedy": greedy[0].tolist()}))
"""


@pytest.fixture(scope="module")
def run_dir(tiny_llama, tmp_path_factory):
    """A finished 1-iteration run; a high learning rate so the adapter visibly changes the model."""
    root = tmp_path_factory.mktemp("runs")
    config = tiny_config(tiny_llama, root, name="r", max_iterations=1)
    config["training"]["learning_rate"] = 0.05
    autodidact.run(config)
    return root / "r"


# The tiny run's one trained iteration does not beat its base model on held-out prompts (its best is 0):
# chat names the checkpoint by its iteration, never "improved" (see test_chat_says_improved_only_for_a_better_best).
LAST = "iter 1 (not better than the base model)"


def test_the_tiny_runs_best_is_its_base_model(run_dir):
    with RunStore(run_dir / "run.sqlite") as store:
        assert store.get_meta("best_iteration") == "0" and store.best_checkpoint() is None


def test_chat_says_improved_only_for_a_better_best(run_dir, tmp_path):
    from autodidact.apps.chat import load_chat_model

    run = shutil.copytree(run_dir, tmp_path / "run")
    with RunStore(run / "run.sqlite") as store, store.transaction():
        store.set_best(1)
        store.set_meta("best_iteration", "1")  # what the loop records when iteration 1 beat the base model
    assert load_chat_model(str(run)).title == "improved (iter 1)"
    assert load_chat_model(str(run_dir)).title == LAST
    exported = export_run(run, tmp_path / "exported", iteration="1")
    assert load_chat_model(str(exported)).title == "improved (iter 1)"


def _adapter_policy(run_dir):
    config = load_config(run_dir / "config.yaml")
    model, tokenizer = load_policy(config, str(run_dir / "checkpoints" / "iter-1"))
    return model.eval(), tokenizer


def _ids(tokenizer, messages=MESSAGES) -> torch.Tensor:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids


def test_merged_export_loads_with_plain_transformers(run_dir, tiny_llama, tmp_path):
    out = export_run(run_dir, tmp_path / "exported", iteration="1")
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "autodidact_export.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "adapter_config.json").exists()
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    provenance = json.loads((out / "autodidact_export.json").read_text())
    assert (provenance["run"], provenance["iteration"], provenance["kind"]) == ("r", 1, "merged")
    assert "heldout_metric" in provenance["metrics"]
    assert set(provenance["metrics"]["tasks"]) == {"arithmetic", "instructions"}

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", PLAIN_LOAD, str(out), json.dumps(MESSAGES)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    plain = json.loads(proc.stdout.strip().splitlines()[-1])

    policy, tokenizer = _adapter_policy(run_dir)
    ids = _ids(tokenizer)
    assert plain["ids"] == ids[0].tolist()  # same tokenizer and chat template
    with torch.no_grad():
        expected = policy(ids).logits[0]
        greedy = policy.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        with policy.disable_adapter():
            base = policy(ids).logits[0]
    exported = torch.tensor(plain["logits"])
    assert (exported - expected).abs().max() < 1e-4
    assert (exported - base).abs().max() > 1e-2  # the merge is really there, not the base model
    assert plain["greedy"] == greedy[0].tolist()


def test_adapter_only_export_loads_with_peft(run_dir, tiny_llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = export_run(run_dir, tmp_path / "adapter", iteration="last", adapter_only=True)
    assert not (out / "model.safetensors").exists()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_llama
    assert tiny_llama in (out / "README.md").read_text()
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(out)).eval()
    policy, tokenizer = _adapter_policy(run_dir)
    ids = _ids(tokenizer)
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, policy(ids).logits, atol=1e-6)


def test_export_errors_leave_nothing_behind(run_dir, tmp_path, monkeypatch):
    run = shutil.copytree(run_dir, tmp_path / "run")  # the best is changed below
    with RunStore(run / "run.sqlite") as store, store.transaction():
        store.set_meta("best_iteration", "0")  # what the loop records when no checkpoint beat the base
    refusal = r"best is iteration 0, the base model \(no trained iteration beat it.*--iteration last or a number \(have: 1\)"
    with pytest.raises(AutodidactError, match=refusal):
        export_run(run, tmp_path / "a")
    with pytest.raises(AutodidactError, match=r"iteration 5 has no checkpoint\. Choose one of: 1"):
        export_run(run, tmp_path / "a", iteration="5")
    with pytest.raises(AutodidactError, match="iteration 0 is the base model"):
        export_run(run, tmp_path / "a", iteration="0")
    with pytest.raises(AutodidactError, match="'best', 'last' or an iteration number"):
        export_run(run, tmp_path / "a", iteration="newest")
    with pytest.raises(AutodidactError, match="not a run directory"):
        export_run(tmp_path, tmp_path / "a", iteration="1")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(AutodidactError, match="not empty"):
        export_run(run, busy, iteration="1")
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AutodidactError, match="HF_HUB_OFFLINE"):
        export_run(run, tmp_path / "a", iteration="1", push_to_hub="someone/model")

    def crash(config, checkpoint, target, dtype):
        target.mkdir()
        (target / "model.safetensors").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr("autodidact.apps.export._write_merged", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_run(run, tmp_path / "a", iteration="1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "run"]  # no output, no temp dir
    monkeypatch.undo()

    with RunStore(run / "run.sqlite") as store, store.transaction():
        store.set_best(1)
        store.set_meta("best_iteration", "1")
    (tmp_path / "empty").mkdir()  # an existing empty directory is fine
    out = export_run(run, tmp_path / "empty", adapter_only=True)
    assert json.loads((out / "autodidact_export.json").read_text())["iteration"] == 1


def _spy(monkeypatch) -> list[dict]:
    """Record every chat_once call the chat makes: its arguments, streamed pieces and reply."""
    calls: list[dict] = []

    def spy(model, tokenizer, messages, max_new_tokens, temperature, seed, on_token=None):
        call = {"model": model, "tokenizer": tokenizer, "messages": [dict(m) for m in messages],
                "args": (max_new_tokens, temperature, seed), "pieces": []}

        def record(piece):
            call["pieces"].append(piece)
            on_token(piece)

        call["reply"] = chat_once(model, tokenizer, messages, max_new_tokens, temperature, seed,
                                  on_token=record if on_token else None)
        calls.append(call)
        return call["reply"]

    monkeypatch.setattr(chat_module, "chat_once", spy)
    return calls


def _script(lines):
    it = iter(lines)

    def input_fn(prompt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return input_fn


def test_chat_streams_keeps_history_and_resets(run_dir, monkeypatch):
    calls = _spy(monkeypatch)
    console = Console(record=True, width=120)
    script = _script(["hello", "how are you", "/reset", "hi again", "/exit", "never read"])
    chat(str(run_dir), max_new_tokens=12, input_fn=script, console=console)
    assert [c["messages"][-1]["content"] for c in calls] == ["hello", "how are you", "hi again"]
    first, second, third = calls
    first_exchange = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": first["reply"]}]
    assert second["messages"][:2] == first_exchange
    rendered = second["tokenizer"].apply_chat_template(second["messages"], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\nhello<|im_end|>" in rendered and first["reply"] in rendered
    assert third["messages"] == [{"role": "user", "content": "hi again"}]  # /reset cleared the history
    assert [c["args"][2] for c in calls] == [0, 1, 2]
    for call in calls:
        assert len(call["pieces"]) >= 2  # streamed, not printed at once
        assert "".join(call["pieces"]).strip() == call["reply"]
        unstreamed = chat_once(call["model"], call["tokenizer"], call["messages"], *call["args"])
        assert unstreamed == call["reply"]
    text = console.export_text()
    assert f"Chatting with {LAST}." in text and "history cleared" in text
    assert text.count(f"{LAST}>") == 3


def test_chat_compare_shows_base_and_improved_side_by_side(run_dir, tiny_llama, monkeypatch):
    from autodidact.models import load_model

    calls = _spy(monkeypatch)
    console = Console(record=True, width=2000)  # wide enough that no cell wraps: each reply line stays whole
    chat(str(run_dir), compare=True, max_new_tokens=12, input_fn=_script(["hello"]), console=console)
    base_call, improved_call = calls
    assert base_call["model"] is not improved_call["model"] and base_call["args"] == improved_call["args"]
    assert base_call["pieces"] == improved_call["pieces"] == []  # compare mode does not stream
    assert base_call["reply"] != improved_call["reply"]
    base_model, base_tokenizer = load_model(tiny_llama, "float32", "cpu")
    assert chat_once(base_model, base_tokenizer, base_call["messages"], *base_call["args"]) == base_call["reply"]
    text = console.export_text()
    assert re.search(rf"┃ base\s+┃ {re.escape(LAST)}\s+┃", text)
    for reply in (base_call["reply"], improved_call["reply"]):
        # A random model's reply may hold no word at all; compare whitespace-normalised (rich expands tabs).
        lines = [" ".join(line.split()) for line in reply.splitlines() if line.strip()]
        flat = " ".join(text.split())
        assert lines and all(line in flat for line in lines)


def test_chat_with_an_export_and_without_a_base(run_dir, tiny_llama, tmp_path):
    out = export_run(run_dir, tmp_path / "exported", iteration="1")
    console = Console(record=True, width=120)
    chat(str(out), compare=True, input_fn=_script(["/exit"]), console=console)
    adapter = export_run(run_dir, tmp_path / "adapter", iteration="1", adapter_only=True)
    chat(str(adapter), compare=True, input_fn=_script(["/exit"]), console=console)
    assert console.export_text().count(f"Chatting with base ({tiny_llama}) and {LAST}") == 2
    with pytest.raises(AutodidactError, match="--compare: .* names no base model"):
        chat(tiny_llama, compare=True, input_fn=_script([]), console=console)


@pytest.fixture
def cli_runner(monkeypatch):
    """Typer's runner on the `autodidact` app, printing to an unwrapped console; the logger levels the app's
    --verbose/--quiet callback sets are put back afterwards."""
    monkeypatch.setattr(cli, "out", Console(width=2000))  # resolves sys.stdout per print: the runner captures it
    saved = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield CliRunner()
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_export_command_writes_the_chosen_iteration(run_dir, tmp_path, cli_runner):
    out = tmp_path / "exported"
    result = cli_runner.invoke(cli.app, ["export", str(run_dir), str(out), "--iteration", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote {out}. Load it with AutoModelForCausalLM.from_pretrained('{out}').\n"
    assert json.loads((out / "autodidact_export.json").read_text())["iteration"] == 1
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= {p.name for p in out.iterdir()}


def test_chat_compare_command_shows_both_answers(run_dir, cli_runner, monkeypatch):
    calls = _spy(monkeypatch)
    args = ["chat", str(run_dir), "--compare", "--max-new-tokens", "8", "--temperature", "0", "--seed", "3"]
    result = cli_runner.invoke(cli.app, args, input="hello\n")  # then end of input: the chat ends
    assert result.exit_code == 0, result.output
    base_call, improved_call = calls
    assert base_call["args"] == improved_call["args"] == (8, 0.0, 3)
    assert base_call["messages"] == improved_call["messages"] == [{"role": "user", "content": "hello"}]
    assert base_call["reply"] != improved_call["reply"]
    text = result.output
    assert "Chatting with base (" in text and f"and {LAST}." in text
    assert re.search(rf"┃ base\s+┃ {re.escape(LAST)}\s+┃", text)
    flat = " ".join(text.split())
    for reply in (base_call["reply"], improved_call["reply"]):
        lines = [" ".join(line.split()) for line in reply.splitlines() if line.strip()]
        assert lines and all(line in flat for line in lines)


class _RecordingHfApi:
    """Stands in for huggingface_hub.HfApi: records each call, and what the folder held when it was uploaded."""

    calls: list[tuple] = []
    upload_error: Exception | None = None

    def __init__(self, *args, **kwargs):
        self.calls.append(("HfApi", args, kwargs))

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))
        return f"https://huggingface.co/{args[0]}"

    def upload_folder(self, *args, **kwargs):
        files = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
        self.calls.append(("upload_folder", args, kwargs, files))
        if self.upload_error is not None:
            raise self.upload_error


@pytest.fixture
def fake_hub(monkeypatch):
    """A recording HfApi, with the hub online: conftest sets HF_HUB_OFFLINE=1, which push_folder refuses."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.HfApi", _RecordingHfApi)
    monkeypatch.setattr(_RecordingHfApi, "calls", [])
    return _RecordingHfApi


def test_export_push_to_hub_creates_the_repo_and_uploads_the_export(run_dir, tmp_path, cli_runner, fake_hub):
    out = tmp_path / "exported"
    args = ["export", str(run_dir), str(out), "--iteration", "1", "--push-to-hub", "someone/model"]
    result = cli_runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Wrote {out} and pushed to someone/model. Load it with")
    assert fake_hub.calls == [
        ("HfApi", (), {}),
        ("create_repo", ("someone/model",), {"exist_ok": True, "repo_type": "model"}),
        ("upload_folder", (), {"folder_path": str(out), "repo_id": "someone/model", "repo_type": "model",
                               "commit_message": "Upload model exported by autodidact"},
         sorted(p.name for p in out.iterdir())),  # the finished export, uploaded after it was renamed into place
    ]
    assert {"model.safetensors", "config.json", "autodidact_export.json"} <= set(fake_hub.calls[2][3])


def test_export_push_to_hub_failure_is_one_line_and_keeps_the_export(run_dir, tmp_path, cli_runner, fake_hub,
                                                                     monkeypatch, capsys):
    error = RuntimeError("401 Client Error: Unauthorized for url: https://huggingface.co/api\n"
                         "Invalid username or password.")  # a multi-line reason: the user sees its first line
    monkeypatch.setattr(fake_hub, "upload_error", error)
    out = tmp_path / "exported"
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # main() sets it
    monkeypatch.setattr(sys, "argv", ["autodidact", "export", str(run_dir), str(out), "--iteration", "1",
                                      "--push-to-hub", "someone/model"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == (f"error: --push-to-hub someone/model failed (401 Client Error: Unauthorized for url: "
                            f"https://huggingface.co/api); the export is kept at {out}.\n")
    assert "Traceback" not in captured.err and captured.out == ""
    assert [c[0] for c in fake_hub.calls] == ["HfApi", "create_repo", "upload_folder"]
    assert json.loads((out / "autodidact_export.json").read_text())["iteration"] == 1  # the local export is kept
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
