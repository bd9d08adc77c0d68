"""The applications built on the loop: the CLI, chat, compare, eval, export, report and review."""
