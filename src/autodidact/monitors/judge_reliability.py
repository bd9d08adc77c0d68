"""Judge reliability against the verifiers: does the self-judge's score track correctness, per task?

Every iteration the self-judge scores the held-out answers that the task's
verifier grades, and the evaluate stage stores how well the score ranks
passing above failing answers (`judge_auc`, a ROC AUC: 0.5 is chance). Where
it is low, selection by that judge is close to selection at random on the
task, and a rising judge score there says nothing about the model: the run
says so plainly. Tasks without a verifier, or whose answers all pass or all
fail, have no AUC and are not judged here.
"""

from __future__ import annotations

from collections.abc import Mapping

Metrics = Mapping[str, float | None]


def _answers(metrics: Metrics) -> str:
    """'12 of 48 answers pass' from a task's held-out figures ('' when unknown)."""
    n, ungraded, rate = metrics.get("n"), metrics.get("ungraded") or 0.0, metrics.get("pass_rate")
    if n is None or rate is None:
        return ""
    graded = round(n - ungraded)
    return f"; {round(rate * graded)} of {graded} answers pass"


def unreliable_judge_alert(task_metrics: Mapping[str, Metrics], min_auc: float) -> str | None:
    """An alert naming every task whose held-out `judge_auc` is below `min_auc`, or None.

    Args:
        task_metrics: one iteration's held-out metrics by task (`judge_auc`, `pass_rate`, `n`, `ungraded`).
        min_auc: the bound (`monitors.judge_reliability.min_auc`).
    """
    low = sorted(
        (task, m["judge_auc"]) for task, m in task_metrics.items()
        if task and m.get("judge_auc") is not None and m["judge_auc"] < min_auc
    )
    if not low:
        return None
    named = " and ".join(f"{task} (AUC {auc:.2f}{_answers(task_metrics[task])})" for task, auc in low)
    where = "this task" if len(low) == 1 else "these tasks"
    return (
        f"the self-judge's held-out scores barely track correctness on {named}: their ROC AUC against the "
        f"verifier is below monitors.judge_reliability.min_auc {min_auc:g}, where 0.5 is chance. A rise in the "
        f"judge's scores on {where} is no evidence of improvement; trust the verifier's pass rate there, or judge "
        "with a model the loop does not train (judge.model), a rubric (judge.method: rubric) or the verifier."
    )
