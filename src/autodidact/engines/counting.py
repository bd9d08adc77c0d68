"""An engine wrapper that counts the tokens generated through it."""

from __future__ import annotations


class TokenCounter:
    """Passes every call to an engine and counts the tokens its `generate` calls produce.

    Wraps the judge's engine so that the judge stage reports the tokens the
    judge wrote (rubric reasoning, contrastive explanations): the cost that
    differs most between judging methods.
    """

    def __init__(self, engine, into: TokenCounter | None = None):
        self.engine = engine
        self.tokens = 0
        # An ensemble member on its own judge model: its tokens are the judge's too, so they add to `into` as well.
        self.into = into

    def __getattr__(self, name: str):
        return getattr(self.engine, name)

    def generate(self, prompts, params, desc: str = "generating"):
        outputs = self.engine.generate(prompts, params, desc=desc)
        tokens = sum(c.num_tokens for completions in outputs for c in completions)
        counter: TokenCounter | None = self
        while counter is not None:
            counter.tokens += tokens
            counter = counter.into
        return outputs
