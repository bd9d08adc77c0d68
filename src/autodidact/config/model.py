"""The model that improves itself, and the engine it generates on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from autodidact.config.base import Section, ServerConfig


class PolicyServerConfig(ServerConfig):
    """The policy's server (`model.server`): where it is, and how it gets each iteration's weights."""

    url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
    reload: Literal["none", "lora", "merged"] = Field(
        "none",
        description="After each iteration's training: 'lora' loads the new adapter into the server at run time "
        "(vLLM's /v1/load_lora_adapter, needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True there); 'merged' exports "
        "merged weights (and a GGUF file for llama.cpp) and runs model.server.restart_command; 'none' keeps "
        "the server's weights (the server then generates with the base model).",
    )
    restart_command: str | None = Field(
        None,
        description="With reload 'merged': a shell command that restarts the server on the new weights; "
        "{checkpoint} and {gguf} are replaced by their paths. The loop waits until the server answers again.",
    )


class VLLMConfig(Section):
    gpu_memory_utilization: float = Field(0.5, gt=0.0, le=1.0, description="Share of GPU memory vLLM may take.")
    tensor_parallel_size: int = Field(
        1, ge=1, le=64, description="GPUs one vLLM engine spans (tensor parallelism), for models that do not fit one GPU."
    )
    max_model_len: int | None = Field(None, ge=16, le=1 << 20, description="Longest sequence vLLM plans for (default: the model's).")
    max_lora_rank: int = Field(64, ge=1, le=1024, description="Largest LoRA rank vLLM reserves room for (>= training.lora_r).")
    sleep_during_training: bool = Field(
        True, description="Put vLLM to sleep (weights and KV cache off the GPU) while the trainer runs."
    )
    enforce_eager: bool = Field(False, description="No CUDA graphs: slower, but starts faster and uses less memory.")


class ModelConfig(Section):
    name: str = Field(
        "default",
        description="'default' (the bundled SmolLM2-135M-Instruct), a local Hugging Face directory, "
        "a .gguf file, or a hub id (needs network).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype. 'auto': bfloat16 where the CPU/GPU computes it natively, else float32."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="'auto' uses CUDA when available.")
    engine: Literal["transformers", "server", "vllm"] = Field(
        "transformers",
        description="Where the policy generates: 'transformers' in this process; 'server' an OpenAI-compatible "
        "server (model.server.url) that serves model.name's weights; 'vllm' vLLM in this process (GPU, the "
        "`vllm` extra). Training always runs here, on model.name's weights.",
    )
    server: PolicyServerConfig = Field(
        default_factory=PolicyServerConfig, description="With engine 'server': the server and how it gets new weights."
    )
    vllm: VLLMConfig = Field(default_factory=VLLMConfig, description="With engine 'vllm': the engine's settings.")

    @model_validator(mode="after")
    def _server_needs_url(self) -> ModelConfig:
        if self.engine == "server" and not self.server.url:
            raise ValueError("model.engine 'server' needs model.server.url (e.g. http://127.0.0.1:8000/v1); set it")
        return self


__all__ = ["ModelConfig", "PolicyServerConfig", "VLLMConfig"]
