"""AutoDidact: a language model that teaches itself.

    import autodidact
    result = autodidact.run({"stopping": {"max_iterations": 2}})

`run`, `resume` and `RunResult` are imported on first use (PEP 562): importing the package
(or `autodidact.config`) does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autodidact.config import RunConfig, load_config

if TYPE_CHECKING:
    from autodidact.loop import RunResult, resume, run

__version__ = "0.1.0"
__all__ = ["RunConfig", "RunResult", "__version__", "load_config", "resume", "run"]

_FROM_LOOP = ("RunResult", "resume", "run")


def __getattr__(name: str) -> Any:
    if name in _FROM_LOOP:  # the loop loads torch: `import autodidact` (and its config) must not
        import autodidact.loop

        return getattr(autodidact.loop, name)
    raise AttributeError(f"module 'autodidact' has no attribute {name!r}")
