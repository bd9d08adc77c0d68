"""`autodidact chat`: talk to a checkpoint in the terminal, or compare it with its base model.

MODEL_OR_RUN_DIR is a run directory (its best checkpoint, else its last), a
checkpoint or exported directory, 'default', a model directory or a `.gguf`
file. The conversation is multi-turn through the tokenizer's chat template;
`/reset` clears it, `/exit` (or end of input) quits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autodidact.apps.export import PROVENANCE_FILE, is_run_dir, open_run, pick_checkpoint
from autodidact.config import load_config
from autodidact.errors import AutodidactError
from autodidact.models import load_model
from autodidact.models.merge import load_adapter
from autodidact.records import Message
from autodidact.stopping import checkpoint_label
from autodidact.store import CHECKPOINTS

EXIT, RESET = ("/exit", "/quit"), "/reset"


@dataclass
class ChatModel:
    """A loaded model ready to chat, and what it was built from."""

    model: object
    tokenizer: object
    title: str
    base: str | None = None  # the base model spec --compare loads, when known
    dtype: str = "auto"
    device: str = "auto"


def _load_adapter(checkpoint: Path, base: str | None, dtype: str = "auto", device: str = "auto"):
    model, tokenizer = load_adapter(checkpoint, base, dtype, device)
    # Merged: one matmul per layer instead of three; this copy is never trained.
    return model.merge_and_unload(), tokenizer


def _iteration_title(path: Path, iteration: int | None = None, best: int | None = None) -> str:
    """The checkpoint's label (`stopping.checkpoint_label`): 'improved' only when it beat the base model."""
    if iteration is None and path.name.startswith("iter-") and path.name[5:].isdigit():
        iteration = int(path.name[5:])
    return checkpoint_label(iteration, best)


def load_chat_model(model_or_run: str) -> ChatModel:
    """Load what MODEL_OR_RUN_DIR names (see the module docstring).

    Raises:
        AutodidactError: a run without checkpoints, or a spec `load_model` refuses.
    """
    path = Path(model_or_run).expanduser()
    if is_run_dir(path):
        config, store = open_run(path)
        with store:
            chosen = "best" if store.best_checkpoint() is not None else "last"
            if store.last_checkpoint() is None:
                raise AutodidactError(
                    f"{path}: the run has no checkpoint yet; chat with its base model: "
                    f"autodidact chat {config.model.name}"
                )
            # chat has no --iteration: another iteration is chatted with by its checkpoint folder
            other = f"use a checkpoint that is there: autodidact chat {path / CHECKPOINTS}/iter-{{n}}"
            number, checkpoint = pick_checkpoint(path, store, chosen, instead=other)
            best = store.get_meta("best_iteration")
        m = config.model
        if (checkpoint / "adapter_config.json").is_file():
            model, tokenizer = _load_adapter(checkpoint, m.name, m.dtype, m.device)
        else:
            model, tokenizer = load_model(str(checkpoint), m.dtype, m.device)
        title = _iteration_title(checkpoint, number, None if best is None else int(best))
        return ChatModel(model, tokenizer, title, m.name, m.dtype, m.device)
    info = {}
    if (path / PROVENANCE_FILE).is_file():  # an export names its run's iteration and base model
        info = json.loads((path / PROVENANCE_FILE).read_text(encoding="utf-8"))
    title = _iteration_title(path, info.get("iteration"), info.get("best_iteration"))
    if (path / "adapter_config.json").is_file():  # a LoRA checkpoint or an adapter-only export
        base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
        model, tokenizer = _load_adapter(path, base)
        return ChatModel(model, tokenizer, title, base)
    base = info.get("base_model")
    run_config = path.parent.parent / "config.yaml"  # RUN/checkpoints/iter-N holding full fine-tuned weights
    if base is None and path.parent.name == "checkpoints" and run_config.is_file():
        base = load_config(run_config).model.name
    model, tokenizer = load_model(model_or_run, field="the MODEL argument of `autodidact chat`")
    return ChatModel(model, tokenizer, title if base else model_or_run, base)


def chat_once(
    model,
    tokenizer,
    messages: list[Message],
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    seed: int = 0,
    on_token: Callable[[str], None] | None = None,
) -> str:
    """The model's reply to `messages` (stripped); `on_token` receives the text as it is generated.

    Sampling is seeded, so the same seed gives the same reply with or without
    streaming; temperature 0 decodes greedily.
    """
    import torch
    from transformers import TextIteratorStreamer

    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    # The rendered template carries its own special tokens (as in TransformersEngine).
    inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt").to(model.device)
    stop = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    stop.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    kwargs = dict(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        eos_token_id=sorted(i for i in stop if i is not None),
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    result: list = []
    errors: list[BaseException] = []

    def run() -> None:
        torch.manual_seed(seed)  # seeded where the sampling happens (CPU and CUDA generators)
        try:
            with torch.inference_mode():
                result.append(model.generate(**kwargs))
        except BaseException as exc:  # surfaced in the caller's thread below
            errors.append(exc)
            if streamer is not None:
                streamer.end()

    streamer = None
    if on_token is None:
        run()
    else:
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs["streamer"] = streamer
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for piece in streamer:
            on_token(piece)
        thread.join()
    if errors:
        raise errors[0]
    new_tokens = result[0][0, inputs["input_ids"].shape[1] :]
    return tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def _compare_table(titles: tuple[str, str], answers: tuple[str, str]):
    from rich.table import Table

    table = Table(show_lines=False, expand=True)
    for title in titles:
        table.add_column(title, ratio=1, overflow="fold")
    table.add_row(*answers)
    return table


def chat(
    model_or_run: str,
    compare: bool = False,
    max_new_tokens: int = 256,
    temperature: float = 0.7,
    system: str | None = None,
    input_fn: Callable[[str], str] = input,
    console=None,
    seed: int = 0,
) -> None:
    """A terminal chat with a model or a run's checkpoint, streaming its tokens.

    With `compare`, every message goes to the base model and to the improved
    one with the same seed, and the two replies are shown side by side once
    both are done (no streaming in this mode). Each model keeps its own
    history, so each sees the conversation it actually had. Reply k (from 0,
    counted across /reset) is sampled with seed `seed + k`.

    Raises:
        AutodidactError: the model does not load, or `compare` without a known base model.
    """
    from rich.console import Console

    console = console or Console()
    improved = load_chat_model(model_or_run)
    base = None
    if compare:
        if improved.base is None:
            raise AutodidactError(
                f"--compare: '{model_or_run}' names no base model; pass a run directory, a checkpoint or an export."
            )
        model, tokenizer = load_model(improved.base, improved.dtype, improved.device)
        base = ChatModel(model, tokenizer, "base")
    start: list[Message] = [{"role": "system", "content": system}] if system else []
    histories = [list(start), list(start)]  # improved, base
    who = f"base ({improved.base}) and {improved.title}" if base else improved.title
    console.print(f"Chatting with {who}. /reset clears the history, /exit quits.", highlight=False)
    turn = 0
    try:
        while True:
            line = input_fn("you> ").strip()
            if not line:
                continue
            if line in EXIT:
                break
            if line == RESET:
                histories = [list(start), list(start)]
                console.print("[dim]history cleared[/dim]")
                continue
            for history in histories:
                history.append({"role": "user", "content": line})
            if base is None:
                console.print(f"[bold]{improved.title}>[/bold] ", end="")
                reply = chat_once(
                    improved.model, improved.tokenizer, histories[0], max_new_tokens, temperature, seed + turn,
                    on_token=lambda piece: console.print(piece, end="", markup=False, highlight=False, soft_wrap=True),
                )
                console.print()
                histories[0].append({"role": "assistant", "content": reply})
            else:
                replies = [
                    chat_once(m.model, m.tokenizer, h, max_new_tokens, temperature, seed + turn)
                    for m, h in ((base, histories[1]), (improved, histories[0]))
                ]
                console.print(_compare_table((base.title, improved.title), (replies[0], replies[1])))
                histories[1].append({"role": "assistant", "content": replies[0]})
                histories[0].append({"role": "assistant", "content": replies[1]})
            turn += 1
    except (EOFError, KeyboardInterrupt):  # Ctrl-D / Ctrl-C end the chat quietly (not the CLI's "resume" hint)
        console.print()
