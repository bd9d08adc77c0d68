"""The same stages spread over many machines: generation and judging over a Ray cluster.

`RayEngine` implements the `Engine` protocol with one engine replica per Ray
worker; see docs/DISTRIBUTED.md. Ray is an optional dependency (the `ray`
extra): importing this package does not import it.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `import autodidact.distributed` works without Ray installed.
    if name == "RayEngine":
        from autodidact.distributed.ray_engine import RayEngine

        return RayEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RayEngine"]
