"""How much closed-book recall can training buy the bundled model? An upper bound for issue 21.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/documents_ceiling.py runs/documents/apollo13-s0 \\
        [--epochs 8] [--all-facts] [--json FILE]

The documents example trains a fact closed-book only once the model has answered it right with search, once
per iteration. This script asks what recall would be if training saw a fact more: it takes a finished run's
recall set (split heldout_paraphrase: one model-written wording of a trained fact, never trained on), and
trains the base model, with the run's own training settings (LoRA, learning rate, batch), closed-book on the
*other* wordings of exactly those facts, answered with the document's span ("The answer is SPAN."), as if
every one had been verified. After each epoch it asks the recall questions from memory, greedily, and grades
them by the run's span rule. `--all-facts` trains every training fact, not only the recall facts (the
interference of 200 facts at once). It uses references from the document, so it is an oracle, not a recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def recall_after_epochs(run_dir: Path, epochs: int, all_facts: bool) -> list[dict]:
    """Per epoch: recall right of N, and the seconds training took; epoch 0 is the base model."""
    from autodidact.config import load_config
    from autodidact.engines import SamplingParams
    from autodidact.engines.serving import build_policy_engine
    from autodidact.loop import CONFIG_FILE, STORE_FILE
    from autodidact.records import SFTExample
    from autodidact.store import RunStore
    from autodidact.tasks.documents.asking import MEMORY_INSTRUCTION
    from autodidact.tasks.documents.grading import span_verdict
    from autodidact.training.policy import load_policy
    from autodidact.training.sft import train_sft

    config = load_config(run_dir / CONFIG_FILE)
    with RunStore(run_dir / STORE_FILE, read_only=True) as store:
        recall = store.prompts(split="heldout_paraphrase")
        train = store.prompts(split="train")
    facts = {p.meta["fact"] for p in recall}
    taught = [p for p in train if all_facts or p.meta.get("fact") in facts]
    examples = [
        SFTExample(
            prompt_id=p.id,
            sample_id=f"{p.id}-oracle",
            messages=[{"role": "user", "content": MEMORY_INSTRUCTION.format(question=p.meta["question"])}],
            completion=f"The answer is {p.reference}.",
            score=None,
        )
        for p in taught
    ]
    model, tokenizer = load_policy(config, None)
    engine = build_policy_engine(config, model, tokenizer)
    params = SamplingParams(temperature=0.0, max_new_tokens=config.evaluation.max_new_tokens)
    # One epoch per call, so recall is measured after each; each call starts a fresh optimizer, as an iteration does.
    one_epoch = config.training.model_copy(update={"epochs": 1})
    rows, seconds = [], 0.0
    for epoch in range(epochs + 1):
        if epoch:
            start = time.perf_counter()
            train_sft(model, tokenizer, examples, one_epoch, seed=config.seed + epoch)
            seconds += time.perf_counter() - start
        answers = engine.generate([engine.render(p.messages) for p in recall], params, desc=f"recall, epoch {epoch}")
        right = sum(span_verdict(p, a[0].text) or 0.0 for p, a in zip(recall, answers, strict=True))
        rows.append({"epoch": epoch, "right": int(right), "of": len(recall), "train_seconds": round(seconds, 1),
                     "examples": len(examples), "sample": answers[0][0].text})
        print(f"epoch {epoch}: recall {int(right)}/{len(recall)} ({100 * right / len(recall):.1f}%), "
              f"{len(examples)} examples, training {seconds:.0f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--all-facts", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = recall_after_epochs(args.run_dir, args.epochs, args.all_facts)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
