"""Plain-language notes of the report: the experiment's name, lossy data, early stopping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def experiment_name(trials: pd.DataFrame, config: Mapping[str, Any]) -> str:
    """The experiment's name: ``config["name"]``, else the ``experiment`` column's values."""
    for key in ("name", "experiment"):
        if config.get(key):
            return str(config[key])
    if trials is not None and "experiment" in trials and trials["experiment"].notna().any():
        return ", ".join(sorted(set(str(v) for v in trials["experiment"].dropna())))
    return "experiment"


def is_lossy(label: str) -> bool:
    """Whether a data-set label marks a lossy copy (e.g. the CIFAR-10 JPEG copy)."""
    text = label.lower()
    return "lossy" in text or "not bit-identical" in text


def precision_note(trials: pd.DataFrame) -> str:
    """A sentence on trials trained in a precision other than FP32 (empty when none were)."""
    if trials is None or "precision" not in trials or not len(trials):
        return ""
    counts = trials["precision"].fillna("fp32").astype(str).value_counts()
    other = {name: int(n) for name, n in counts.items() if name != "fp32"}
    if not other:
        return ""
    parts = ", ".join(f"{n} in {name.upper()}" for name, n in sorted(other.items()))
    return (f"Changed numerics: {parts} (the rest FP32, as the authors trained). TF32 and "
            "bf16 round differently, so those studies are kept apart from FP32 ones (their "
            "own study keys) and are not the paper's protocol.")


def stopping_note(engine_notes: Mapping[str, Any], trials: pd.DataFrame) -> str:
    """A plain sentence on whether hopeless trials were stopped early.

    Read from the trials' own ``stop_hopeless`` column (what produced each stored trial)
    when it is there; mixed settings are stated as such. Only tables without that column
    fall back to a top-level ``*stop*`` key of ``engine_notes``.
    """
    n_stopped = 0
    if trials is not None and len(trials):
        n_stopped = int((trials["status"].astype(str).str.strip().str.lower() == "stopped").sum())
    flag = None
    if trials is not None and "stop_hopeless" in trials:
        values = trials["stop_hopeless"]
        on = int((values == True).sum())  # noqa: E712 - object column of True/False/None
        off = int((values == False).sum())  # noqa: E712
        unknown = len(values) - on - off
        if sum(1 for n in (on, off, unknown) if n) > 1:
            parts = [f"{on} with stopping ON", f"{off} with it OFF"]
            if unknown:
                parts.append(f"{unknown} not recorded")
            return (
                "The stored trials were run with different stopping settings: "
                f"{', '.join(parts)}. {n_stopped} trials were stopped early (status "
                "'stopped'); study results (best steps) are unaffected, and the bootstrap "
                "counts a stopped trial as a lower bound (docs/analysis.md, censored trials)."
            )
        flag = True if on else False if off else None
    else:
        # ``stop_hopeless`` (the engine's option) first, then any other key about stopping.
        keys = sorted(
            (k for k in engine_notes if "stop" in str(k).lower()),
            key=lambda k: (str(k) != "stop_hopeless", "hopeless" not in str(k).lower()),
        )
        for key in keys:
            value = engine_notes[key]
            if isinstance(value, (bool, int, str)):
                text = str(value).strip().lower()
                flag = text in ("true", "1", "yes", "on", "enabled") or value is True
                break
    if flag:
        return (
            "Stopping of hopeless trials was ON: a trial that could no longer beat its "
            "study's best was stopped early and is shown as 'stopped' (an upward caret, in "
            "Figure 5 at the step where it stopped) in the search figures; whether it would "
            f"have reached the goal is unknown. {n_stopped} "
            "trials were stopped. Study results (best steps) are unaffected. A stopped trial "
            "is a lower bound, not a value: a bootstrap resample that misses a study's "
            "completed trials has a censored best, which is counted with its range, and "
            "where that happens in too many resamples there is no interval (too few "
            "completed trials; keep_complete sets how many trials per study complete)."
        )
    if flag is False:
        return (
            "Stopping of hopeless trials was OFF: every trial ran until it reached the goal, "
            "diverged or used its step budget."
        )
    extra = f" {n_stopped} trials have status 'stopped'." if n_stopped else ""
    return "Whether hopeless trials were stopped early was not recorded." + extra
