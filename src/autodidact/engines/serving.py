"""The policy's engine, by `model.engine`: in this process, on an OpenAI-compatible server, or on vLLM.

Training always runs in this process on `model.name`'s weights. With `model.engine: server` the
policy generates (and judges itself) on a server that must start out serving those same weights;
after each iteration's training the loop hands the new checkpoint to `load_checkpoint`, and
`model.server.reload` says how the server gets it:

- 'lora': the adapter is loaded at run time through vLLM's `POST {url}/load_lora_adapter`
  (`{"lora_name", "lora_path"}`; the server needs `--enable-lora` and
  `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`), later requests name that adapter as their model, and the
  previous iteration's adapter is unloaded (`/unload_lora_adapter`). The path must be readable by the server.
- 'merged': the merged weights are written under `<run>/served/iter-N/` (a Hugging Face folder for
  `{checkpoint}`, a GGUF file for `{gguf}`, only what `restart_command` names), the command runs,
  and requests wait until the server answers again. The command must return once the old server is
  stopped and the new one is starting (start it in the background); the older served folder is then deleted.
- 'none': the server keeps its weights (logged once): generation stays with the base model.

The server sees exactly the in-process engine's prompts: they are rendered here with the policy's
tokenizer and sent to `/completions`. A generation request that still fails after the retries
raises `AutodidactError` (the stage is redone by `autodidact resume`), since an empty sample must
never enter selection; log-probability rows keep the judge contract (`FailedRow`, a failed judgment).
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodidact.engines.base import Completion, Engine, EngineError, SamplingParams, request_error
from autodidact.engines.openai_engine import OpenAIEngine, read_api_key
from autodidact.engines.transformers_engine import TransformersEngine
from autodidact.errors import AutodidactError
from autodidact.models import resolve_model
from autodidact.models.gguf_export import GGUF_FILE, source_gguf, write_gguf
from autodidact.models.merge import merged_model
from autodidact.records import Message

if TYPE_CHECKING:
    from autodidact.config import RunConfig

log = logging.getLogger(__name__)

RESTART_WAIT_S = 600.0  # longest wait for a restarted server (a large model loads for minutes)


def build_policy_engine(config: RunConfig, policy: Any, tokenizer: Any) -> Engine:
    """The engine the policy generates and self-judges on, by `model.engine`.

    Args:
        config: the run's config.
        policy: the in-process policy model (used by 'transformers' only; the others serve their own copy).
        tokenizer: the policy's tokenizer (its chat template renders every prompt).

    Raises:
        AutodidactError: the server cannot be used (probed once), or vLLM is not installed.
    """
    engine = config.model.engine
    if engine == "transformers":
        return TransformersEngine(
            policy, tokenizer, batch_size=config.generation.batch_size, score_batch_size=config.judge.batch_size
        )
    if engine == "vllm":
        try:
            from autodidact.engines.vllm_engine import VLLMEngine
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("vllm"):
                raise
            raise AutodidactError(
                f"model.engine 'vllm': {exc}. Install the vllm extra on a GPU machine "
                "(pip install 'autodidact[vllm]'), or set model.engine to 'transformers' or 'server'."
            ) from None
        return VLLMEngine.from_config(config, tokenizer)
    return ServerPolicyEngine.from_config(config, tokenizer)


class ServerPolicyEngine:
    """The policy on an OpenAI-compatible server (an `OpenAIEngine`), handed each iteration's checkpoint.

    Build it with `from_config`. `render`, `generate` and `continuation_logprobs` are the inner engine's,
    except that a failed generation raises instead of returning empty samples.

    Args:
        requests: the `OpenAIEngine` that sends the requests (its `model` changes with 'lora' reloads).
        config: the run's config (`model.server`, `model.name`, `model.dtype`, `training.finetune`).
        restart_wait: seconds a 'merged' reload waits for the restarted server.
    """

    def __init__(self, requests: Any, config: RunConfig, restart_wait: float = RESTART_WAIT_S):
        self.requests = requests
        self.config = config
        self.server = config.model.server
        self.restart_wait = restart_wait
        self.base_model = requests.model  # the name the server serves its own (base) weights under
        self.adapter: str | None = None  # the LoRA adapter requests name now ('lora' reloads)
        self.served: Path | None = None  # the folder of the merged weights served now ('merged' reloads)
        self._said_none = False
        _check_reload(config)

    @classmethod
    def from_config(
        cls, config: RunConfig, tokenizer: Any, http_client: Any = None, **kwargs: Any
    ) -> ServerPolicyEngine:
        """Connect to `model.server.url` and probe it once, so a wrong URL, name or key fails now.

        Raises:
            AutodidactError: an unset key variable, an unreachable or unusable server, or a reload
                setting that cannot work with this config.
        """
        s = config.model.server
        api_key = read_api_key(s.api_key_env, "model.server.api_key_env")
        requests = OpenAIEngine(
            s.url, s.model_name or "", api_key=api_key, tokenizer=tokenizer, concurrency=s.concurrency,
            timeout=s.timeout, max_retries=s.max_retries, top_logprobs=s.top_logprobs, http_client=http_client,
            role="policy",
        )
        engine = cls(requests, config, **kwargs)  # checks the reload settings before connecting
        engine._connect()
        return engine

    # --- the Engine protocol -------------------------------------------------------

    @property
    def supports_logprobs(self) -> bool:
        return self.requests.supports_logprobs

    def render(self, messages: Sequence[Message]) -> str:
        return self.requests.render(messages)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, desc: str = "generating"
    ) -> list[list[Completion]]:
        """`params.n` completions per prompt from the server.

        Raises:
            AutodidactError: a request still failed after the retries (no partial result is returned).
        """
        results = self.requests.generate(prompts, params, desc=desc)
        failed = [reason for reason in map(request_error, results) if reason]
        if failed:
            raise AutodidactError(
                f"model.server: {len(failed)} of {len(prompts)} generation requests failed ({failed[0]}). Check the "
                "server (or raise model.server.timeout / max_retries), then continue with `autodidact resume`."
            )
        return results

    def continuation_logprobs(
        self, prompts: Sequence[str], continuations: Sequence[str], desc: str = "scoring"
    ) -> list[list[float]]:
        return self.requests.continuation_logprobs(prompts, continuations, desc=desc)

    # --- ServesCheckpoints -------------------------------------------------------------

    def load_checkpoint(self, checkpoint: Path, iteration: int) -> None:
        """Serve `checkpoint` (the weights after `iteration`'s training) for every later request.

        Raises:
            AutodidactError: the server refused the adapter, the restart command failed, or the server
                did not answer again in time.
        """
        checkpoint = Path(checkpoint).resolve()
        reload = self.server.reload
        if reload == "none":
            if not self._said_none:
                log.warning(
                    "model.server.reload is 'none': the server at %s keeps its weights, so generation and "
                    "self-judging stay with the base model while training goes on here", self.server.url,
                )
                self._said_none = True
            return
        if reload == "lora":
            self._load_adapter(checkpoint, iteration)
        else:
            self._restart(checkpoint, iteration)
        log.info("the server at %s now serves iteration %d (%s)", self.server.url, iteration, reload)

    def serve_base(self) -> None:
        """Go back to the base weights (after a rollback to iteration 0): unload the adapter / restart on the base."""
        if self.server.reload == "lora" and self.adapter:
            self._unload(self.adapter)
            self.adapter, self.requests.model = None, self.base_model
        elif self.server.reload == "merged" and self.served is not None:
            command = self.server.restart_command or ""
            gguf = str(source_gguf(self.config.model.name)) if "{gguf}" in command else ""
            self._run_restart(resolve_model(self.config.model.name), gguf, log_dir=self.served.parent)
            shutil.rmtree(self.served, ignore_errors=True)
            self.served = None

    # --- 'lora': vLLM's runtime adapter API ------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> str:
        import openai

        try:  # the openai client's own retries, timeout and key; the reply is plain text
            return self.requests.client.post(path, cast_to=str, body=body)
        except openai.OpenAIError as exc:
            raise EngineError(self.requests._reason(exc)) from exc

    def _load_adapter(self, checkpoint: Path, iteration: int) -> None:
        if not (checkpoint / "adapter_config.json").is_file():
            raise AutodidactError(
                f"model.server.reload 'lora': {checkpoint} holds no adapter (training.finetune: full?); "
                "use model.server.reload 'merged'."
            )
        name = f"{self.config.name or 'autodidact'}-iter-{iteration}"
        body = {"lora_name": name, "lora_path": str(checkpoint)}
        try:
            try:
                self._post("/load_lora_adapter", body)
            except EngineError as exc:
                if "already" not in str(exc):
                    raise
                # A resumed or retrained iteration: the name may hold older weights; load it afresh.
                self._post("/unload_lora_adapter", {"lora_name": name})
                self._post("/load_lora_adapter", body)
        except EngineError as exc:
            raise AutodidactError(
                f"model.server.reload 'lora': the server did not load {checkpoint} ({exc}). Start vLLM with "
                "--enable-lora (max LoRA rank >= training.lora_r) and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, "
                "on a machine that can read the run directory."
            ) from None
        previous, self.adapter, self.requests.model = self.adapter, name, name
        self._probe(f"the adapter '{name}'")
        if previous and previous != name:
            self._unload(previous)

    def _unload(self, name: str) -> None:
        try:
            self._post("/unload_lora_adapter", {"lora_name": name})
        except EngineError as exc:  # the new adapter serves already; a leftover one only costs server memory
            log.warning("could not unload LoRA adapter '%s' from the server: %s", name, exc)

    # --- 'merged': export, restart, wait --------------------------------------------------

    def _restart(self, checkpoint: Path, iteration: int) -> None:
        command = self.server.restart_command or ""
        root = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
        target = root / "served" / f"iter-{iteration}"
        shutil.rmtree(target, ignore_errors=True)  # a half-written one from a killed attempt
        target.mkdir(parents=True)
        hf_dir, gguf = _write_served(self.config, checkpoint, target, command)
        self._run_restart(str(hf_dir), str(gguf), log_dir=target)
        previous, self.served = self.served, target
        if previous is not None and previous != target:
            shutil.rmtree(previous, ignore_errors=True)

    def _run_restart(self, checkpoint: str, gguf: str, log_dir: Path) -> None:
        command = self.server.restart_command or ""
        argv = [part.replace("{checkpoint}", checkpoint).replace("{gguf}", gguf) for part in shlex.split(command)]
        output = log_dir / "restart.log"
        try:
            # Output to a file, not a pipe: a server started in the background keeps a pipe open forever.
            with open(output, "wb") as sink:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                      timeout=self.restart_wait)
        except FileNotFoundError:
            raise AutodidactError(
                f"model.server.restart_command: '{argv[0]}' was not found; fix the command."
            ) from None
        except subprocess.TimeoutExpired:
            raise AutodidactError(
                f"model.server.restart_command did not return within {self.restart_wait:g}s; it must start the "
                "server in the background and return (e.g. a script ending in `nohup ... &`)."
            ) from None
        if done.returncode != 0:
            tail = " ".join(output.read_text(errors="replace").split()[-30:])[-300:]
            raise AutodidactError(
                f"model.server.restart_command exited with status {done.returncode} ({tail or 'no output'}); "
                f"fix the command (its output is in {output})."
            )
        self._wait_until_up()
        self._probe("the restarted server")

    def _wait_until_up(self) -> None:
        import openai

        quick = self.requests.client.with_options(max_retries=0, timeout=5.0)
        deadline = time.monotonic() + self.restart_wait
        while True:
            try:
                served = [m.id for m in quick.models.list().data]
                break
            except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError) as exc:
                # Not up yet: refused, silent, or a 5xx while it loads.
                if time.monotonic() > deadline:
                    raise AutodidactError(
                        f"model.server: the server at {self.server.url} did not answer within {self.restart_wait:g}s "
                        f"after model.server.restart_command ({type(exc).__name__}); check the command's output "
                        "(restart.log next to the served weights)."
                    ) from None
                time.sleep(0.5)
            except openai.APIStatusError:  # it answers, without a model list: the probe tells the rest
                served = []
                break
        if not self.server.model_name and served:  # e.g. llama.cpp names its model by the file it loaded
            self.base_model = self.requests.model = served[0]

    # --- start-up ------------------------------------------------------------------------

    def _connect(self) -> None:
        if not self.requests.model:
            try:
                served = [m.id for m in self.requests.client.models.list().data]
            except Exception as exc:  # any failure here means the server cannot be used as configured
                raise AutodidactError(
                    f"model.server: cannot list the models of {self.server.url} "
                    f"({self.requests._reason(exc)}). Start the server, or fix model.server.url / api_key_env."
                ) from None
            if not served:
                raise AutodidactError(f"model.server: {self.server.url} serves no model; set model.server.model_name.")
            self.base_model = self.requests.model = served[0]
        self._probe("the server")

    def _probe(self, what: str) -> None:
        try:
            self.requests.probe()
        except EngineError as exc:
            raise AutodidactError(
                f"model.server: {what} at {self.server.url} cannot be used ({exc}). Start it, or fix "
                "model.server.url, model.server.model_name or model.server.api_key_env."
            ) from None


def _write_served(config: RunConfig, checkpoint: Path, target: Path, command: str) -> tuple[Path, Path]:
    """Write the merged weights under `target` in the forms `command` names; (HF folder, GGUF file) paths."""
    import torch

    dtype = config.model.dtype if config.model.dtype != "auto" else "float16"
    model, tokenizer, _ = merged_model(config.model.name, checkpoint)  # float32: each format rounds once
    hf_dir, gguf = target / "hf", target / GGUF_FILE
    if "{gguf}" in command:
        write_gguf(model, source_gguf(config.model.name), gguf, dtype)
    if "{checkpoint}" in command:
        model.to(getattr(torch, dtype)).save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
    return hf_dir, gguf


def _check_reload(config: RunConfig) -> None:
    """Reject reload settings that cannot work, before any weights are trained."""
    s = config.model.server
    if s.reload == "lora" and config.training.finetune != "lora":
        raise AutodidactError(
            "model.server.reload 'lora' needs training.finetune 'lora'; use reload 'merged' for full fine-tuning."
        )
    if s.reload != "merged":
        return
    command = s.restart_command or ""
    if "{checkpoint}" not in command and "{gguf}" not in command:
        raise AutodidactError(
            "model.server.reload 'merged' needs model.server.restart_command with {checkpoint} (a Hugging Face "
            "folder, for vLLM/TGI) or {gguf} (a GGUF file, for llama.cpp/Ollama) to restart the server on."
        )
    if "{gguf}" in command:
        source_gguf(config.model.name)  # raises, naming the fix, when there is no GGUF to copy the layout from


__all__ = ["RESTART_WAIT_S", "ServerPolicyEngine", "build_policy_engine"]
