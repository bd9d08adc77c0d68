"""Deployed interactions as a task: logged conversations become the prompt pool.

Each line of the log is one conversation, `{"messages": [...]}` (OpenAI chat
style) or a bare list of messages. The prompt is the conversation up to and
including its last user message; the assistant reply right after it is what
the deployed model said, and joins the generated samples as one more candidate
(`Prompt.meta["deployed_response"]`), so a new response is kept only when the
judge prefers it to what users already got.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from autodidact.config import LogsSourceConfig
from autodidact.errors import AutodidactError
from autodidact.records import Message, Prompt, Split
from autodidact.tasks.row_checks import RowErrors, chat_messages, message_text, read_good_rows, row_id, split_heldout

logger = logging.getLogger(__name__)


def conversation_prompt(row: Any) -> tuple[list[Message], str | None]:
    """The prompt messages of a logged conversation, and the deployed reply to them (None if not logged).

    Raises:
        ValueError: not a conversation, no user message, or malformed messages before the last user turn.
    """
    messages = row.get("messages") if isinstance(row, dict) else row
    if not isinstance(messages, list):
        raise ValueError(f"expected {{\"messages\": [...]}} or a list of messages; got {type(row).__name__}")
    users = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise ValueError("the conversation has no user message")
    last = users[-1]
    prompt = chat_messages(messages[: last + 1])  # later turns need not be well formed: they are not the prompt
    deployed = None
    if last + 1 < len(messages):
        reply = messages[last + 1]
        if isinstance(reply, dict) and reply.get("role") == "assistant":
            text = message_text(reply.get("content"))
            deployed = text if text and text.strip() else None  # a tool call or an empty reply: nothing to compare
    return prompt, deployed


class LogsTask:
    """Prompts from a chat log (JSONL, one conversation per line); no references, so the judge measures them.

    Ids are `{name}-{row "id"}` when a line has an "id" field, else `{name}-{line}`;
    `skipped` lists `(line, reason)` for the lines left out by the last `build`.
    """

    def __init__(self, config: LogsSourceConfig) -> None:
        self.config = config
        self.name = config.name
        self.skipped: list[tuple[int, str]] = []

    def build(self, train_size: int, heldout_size: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
        """Read every conversation and hold out `heldout_ratio` of them, drawn with `seed`.

        `train_size` and `heldout_size` size the built-in tasks and are ignored:
        the log is used whole. Repeated prompts stay on one side of the split.

        Raises:
            AutodidactError: unreadable log, more than `max_bad_rows` bad lines, or no usable conversation.
        """
        cfg = self.config
        errors = RowErrors(cfg.path, cfg.max_bad_rows, self.name)
        self.skipped = errors.skipped
        prompts: list[tuple[str, list[Message], str | None]] = []
        first_seen: dict[str, int] = {}
        for position, row in read_good_rows(cfg.path, "train", errors):
            try:
                has_id = isinstance(row, dict) and row.get("id") is not None
                ident = row_id(row["id"], "id") if has_id else str(position)
                messages, deployed = conversation_prompt(row)
            except ValueError as exc:
                errors.add(position, str(exc))
                continue
            if ident in first_seen:
                errors.add(position, f"duplicate id {ident!r} (first at line {first_seen[ident]})")
                continue
            first_seen[ident] = position
            prompts.append((ident, messages, deployed))
        if not prompts:
            raise AutodidactError(
                errors.summary("no usable conversations")
                + '; fix these lines: each is {"messages": [{role, content}, ...]} with at least one user message.'
            )
        if errors.skipped:
            logger.warning(errors.summary(f"skipped {len(errors.skipped)} bad line(s)"))
        train, heldout = split_heldout(prompts, lambda p: json.dumps(p[1]), cfg.heldout_ratio, seed)
        return [self._prompt(p, "train") for p in train], [self._prompt(p, "heldout") for p in heldout]

    def verify(self, prompt: Prompt, response: str) -> float | None:
        """None: logged conversations have no reference answers; the judge score measures them."""
        return None

    def _prompt(self, item: tuple[str, list[Message], str | None], split: Split) -> Prompt:
        ident, messages, deployed = item
        meta = {"deployed_response": deployed} if deployed is not None and self.config.include_deployed else {}
        return Prompt(id=f"{self.name}-{ident}", task=self.name, split=split, messages=messages, meta=meta)
