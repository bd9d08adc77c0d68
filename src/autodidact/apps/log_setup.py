"""Logging set-up: our own messages, and only the library warnings a user can act on."""

from __future__ import annotations

import logging
import warnings

NOISY_LOGGERS = (
    "httpx", "urllib3", "filelock", "datasets", "transformers", "peft", "trl", "accelerate", "torch",
    "sentence_transformers", "huggingface_hub", "matplotlib", "uvicorn.access",
)


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Set our level; silence the libraries' progress bars and deprecation chatter."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:  # we draw our own rich bars; the libraries' tqdm bars would interleave with them
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass
    # After the imports above: importing transformers or datasets resets their loggers to WARNING.
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    if not verbose:
        # Deprecations inside transformers/TRL are theirs to fix, not the user's.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
