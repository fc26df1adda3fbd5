"""Run the trials of one study together in one call: :func:`run_trials_batched`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, overload

from torch import Tensor

from sparsedp.data.splits import SplitData
from sparsedp.training.batched.group import BatchedProgressFn, BatchedTrials
from sparsedp.training.batched.stacked_model import Params
from sparsedp.training.trainer import EngineSettings, TrialResult
from sparsedp.training.trial_config import TrialConfig

__all__ = ["run_trials_batched"]


@overload
def run_trials_batched(
    configs: Sequence[TrialConfig], data: SplitData, *, engine: EngineSettings | None = ...,
    saliencies: Sequence[dict[str, Tensor] | None] | None = ...,
    step_limit: Callable[[], int | None] | None = ..., progress: BatchedProgressFn | None = ...,
    share_best: bool = ..., grouped_convs: bool | None = ..., slots: int | None = ...,
    return_params: Literal[False] = ...,
) -> list[TrialResult]: ...


@overload
def run_trials_batched(
    configs: Sequence[TrialConfig], data: SplitData, *, engine: EngineSettings | None = ...,
    saliencies: Sequence[dict[str, Tensor] | None] | None = ...,
    step_limit: Callable[[], int | None] | None = ..., progress: BatchedProgressFn | None = ...,
    share_best: bool = ..., grouped_convs: bool | None = ..., slots: int | None = ...,
    return_params: Literal[True],
) -> tuple[list[TrialResult], list[Params]]: ...


def run_trials_batched(
    configs: Sequence[TrialConfig],
    data: SplitData,
    *,
    engine: EngineSettings | None = None,
    saliencies: Sequence[dict[str, Tensor] | None] | None = None,
    step_limit: Callable[[], int | None] | None = None,
    progress: BatchedProgressFn | None = None,
    share_best: bool = False,
    grouped_convs: bool | None = None,
    slots: int | None = None,
    return_params: bool = False,
) -> list[TrialResult] | tuple[list[TrialResult], list[Params]]:
    """Run the trials ``configs`` of one study together; one result per config, in order.

    At most ``slots`` trials (default: all) are live at once (:class:`BatchedTrials`); the
    rest join as others end. Every trial gets run_trial's outcome: the same init and mask
    (``saliencies[k]`` plays run_trial's ``saliency``), the same batches, a check every
    ``eval_every`` steps and at the last step, ``infeasible`` on a non-finite loss (at the
    step it happened, seen at the next check) or non-finite parameters (at a check),
    ``complete`` at the first check meeting the goal, ``incomplete`` when the budget is used
    up, and ``stopped`` at a check at or past ``step_limit()`` without meeting the goal. With
    ``share_best`` the group's own completions also set a step limit (its best, or with
    ``engine.keep_complete = K`` its K-th best steps-to-result so far), as they would for
    trials run after them one by one. ``progress(trial_index, step, check)`` follows
    each check. ``engine.micro_batch`` accumulates gradients over pieces as run_trial does.
    ``grouped_convs`` picks :class:`StackedModel`'s convolution form (default: by device).

    Times: ``prune_time`` is the trial's own; the group's time for each check interval and
    each check is shared equally among the trials that took part in it, so ``wall_time``
    summed over the trials is about the group's wall time, and ``samples_per_second`` is the
    trial's share of the group's throughput.

    With ``return_params`` also returns each trial's final parameters (CPU copies, as they were
    when the trial ended), in config order.
    """
    run = BatchedTrials(configs, data, engine=engine, slots=slots, saliencies=saliencies,
                        step_limit=step_limit, progress=progress, share_best=share_best,
                        grouped_convs=grouped_convs, keep_final=return_params)
    results = run.run()
    if return_params:
        return results, [run.final[k] for k in range(len(run.configs))]
    return results
