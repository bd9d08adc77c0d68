"""AutoDidact: a language model that teaches itself.

    import autodidact
    result = autodidact.run({"stopping": {"max_iterations": 2}})
"""

from autodidact.config import RunConfig, load_config
from autodidact.loop import RunResult, resume, run

__version__ = "0.1.0"
__all__ = ["RunConfig", "RunResult", "__version__", "load_config", "resume", "run"]
