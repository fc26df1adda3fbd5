"""B_crit per sparsity for W2 Momentum on the CPU, before and after keep_complete = 3 and the
refinement stage (issue 21, part 5), from the committed exports only.

Three curves per sparsity, B = 16 … 1024:

- ``paper protocol``: reproduction/w2-momentum-cpu-trials.csv as run (32 Sobol trials per
  study, trials stopped at the study's best: keep_complete = 1);
- ``search, K = 3``: the same, with the B = 256, 512, 1024 studies replaced by their trials
  in reproduction/w2-momentum-refine-cpu-trials.csv's search stage (the stopped trials rerun
  until each study's 3 best finished);
- ``search + refine``: plus the 8 refine trials per study at B = 256, 512, 1024.

Each curve gets the fit S(B) = S_min (1 + B_crit / B) of its bests and two bootstraps
(``sparsedp.analysis``; resamples of every study's trials, censored bests counted): the
*full* one, which has no interval while the B <= 128 studies hold one finished trial each
(keep_complete = 1 there), and a *conditional* one that holds the B <= 128 studies at their
bests and resamples only the B >= 256 studies: the search noise of the large-batch end,
which is what decides B_crit's ratio, not the whole uncertainty. Printed as Markdown.

    python reproduction/refine_analysis.py [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from sparsedp.analysis.censoring import Outcomes, trial_outcomes
from sparsedp.analysis.compare import critical_batch_ratio
from sparsedp.analysis.fit import BootstrapFit, ScalingFit, bootstrap_scaling, fit_scaling

HERE = Path(__file__).resolve().parent
REFINED_BATCHES = (256, 512, 1024)


def _load() -> tuple[pd.DataFrame, pd.DataFrame]:
    base = pd.read_csv(HERE / "w2-momentum-cpu-trials.csv")
    refine = pd.read_csv(HERE / "w2-momentum-refine-cpu-trials.csv")
    refine["stage"] = refine["stage"].fillna("search")
    return base, refine


def curves(base: pd.DataFrame, refine: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The three trial tables (see the module docstring)."""
    small = base[~base["batch_size"].isin(REFINED_BATCHES)]
    search = refine[refine["stage"] == "search"]
    return {
        "paper protocol (K = 1)": base,
        "search, K = 3": pd.concat([small, search], ignore_index=True),
        "search + refine": pd.concat([small, refine], ignore_index=True),
    }


def _outcomes(trials: pd.DataFrame, sparsity: float, conditional: bool) -> dict[int, Outcomes]:
    out = {}
    for batch, group in trials[trials["sparsity"] == sparsity].groupby("batch_size"):
        outcomes = trial_outcomes(group)
        if conditional and batch not in REFINED_BATCHES:
            outcomes = Outcomes.exact(np.array([np.min(outcomes.upper)]))
        out[int(batch)] = outcomes
    return out


def _bests(outcomes: dict[int, Outcomes]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array(sorted(outcomes), dtype=float)
    return sizes, np.array([np.min(outcomes[int(b)].upper) for b in sizes])


def _interval(boot: BootstrapFit) -> str:
    if boot.b_crit_ci is None:
        return boot.reason or "none"
    lo, hi = boot.b_crit_ci
    return f"[{lo:.0f}, {hi:.0f}]"


def _ratio_text(sparse: ScalingFit, dense: ScalingFit, sb: BootstrapFit,
                db: BootstrapFit) -> str:
    r = critical_batch_ratio(sparse, dense, sb, db)
    ci = f"[{r.ci[0]:.2f}, {r.ci[1]:.2f}]" if r.ci else r.reason
    return f"{r.ratio:.2f} {ci}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    base, refine = _load()
    print("| curve | sparsity | bests B = 16 … 1024 | S_min | B_crit | full interval "
          "| conditional interval (B <= 128 held) | censored share, conditional |")
    print("| --- | --- | --- | ---: | ---: | --- | --- | ---: |")
    ratios = []
    for name, trials in curves(base, refine).items():
        fits = {}
        for sparsity in (0.0, 0.9):
            full = _outcomes(trials, sparsity, conditional=False)
            cond = _outcomes(trials, sparsity, conditional=True)
            sizes, bests = _bests(full)
            fit = fit_scaling(sizes, bests)
            key = f"{name}|{sparsity}"
            boot_full = bootstrap_scaling(full, n_resamples=args.bootstrap, key=key)
            boot_cond = bootstrap_scaling(cond, n_resamples=args.bootstrap, key=key)
            fits[sparsity] = (fit, boot_full, boot_cond)
            print(f"| {name} | {sparsity:g} | {', '.join(f'{v:.0f}' for v in bests)} "
                  f"| {fit.s_min:.0f} | {fit.b_crit:.0f} | {_interval(boot_full)} "
                  f"| {_interval(boot_cond)} | {boot_cond.censored_share:.1%} |")
        (sf, sbf, sbc), (df, dbf, dbc) = fits[0.9], fits[0.0]
        ratios.append((name, _ratio_text(sf, df, sbf, dbf), _ratio_text(sf, df, sbc, dbc)))
    print()
    print("| curve | sparse / dense B_crit, full interval | conditional interval |")
    print("| --- | --- | --- |")
    for name, full, cond in ratios:
        print(f"| {name} | {full} | {cond} |")


if __name__ == "__main__":
    main()
