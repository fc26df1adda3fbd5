"""Which trials may share a batched group: only trials of one study."""

from __future__ import annotations

from collections.abc import Sequence

from sparsedp.training.trial_config import TrialConfig

__all__ = ["check_same_study"]


def check_same_study(configs: Sequence[TrialConfig]) -> None:
    """Raise ValueError unless every config belongs to the same study (may share a batch).

    Trials may differ only in their metaparameters and seed; everything that fixes the data,
    the model, the mask's sparsity or the checking schedule must agree.
    """
    if not configs:
        return
    first = configs[0]

    def key(c: TrialConfig) -> dict[str, object]:
        return {
            "workload": c.workload,
            "sparsity": c.sparsity,
            "batch_size": c.batch_size,
            "data_seed": c.data_seed,
            "goal_error": c.resolved_goal_error,
            "max_steps": c.resolved_max_steps,
            "eval_every": c.resolved_eval_every,
            "hidden_units": c.hidden_units,
            "pruning": c.pruning,
        }

    reference = key(first)
    for index, config in enumerate(configs[1:], start=1):
        differing = [name for name, value in key(config).items() if reference[name] != value]
        if differing:
            raise ValueError(
                f"trial {index} differs from trial 0 in {', '.join(differing)}: only trials of "
                "one study (same workload, sparsity, batch size, data seed, goal, budget, "
                "check interval, model and pruning) can be batched"
            )
