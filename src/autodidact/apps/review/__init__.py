"""`autodidact review RUN_DIR`: rate queued items in a browser, a terminal, or import them from a file."""
