"""The names of an iteration's stages, as the store marks them (no import of the stages themselves)."""

STAGES = ("generate", "judge", "select", "train", "evaluate", "monitor")  # the supervised plan, in order
