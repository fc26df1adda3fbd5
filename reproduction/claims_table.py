"""The paper's claims (a)-(c) across workloads, one row per workload (issue 23).

Reads each workload's ``summary.json`` from ``sparsedp report reproduction/NAME.toml`` (see
``workload_tables.py``) and applies written rules, so the verdict table in
docs/reproduction-cpu.md is recomputable and nothing in it is typed in by hand:

(a) *perfect scaling, then diminishing returns, then maximal data parallelism*, per sparsity:
    "3 regimes" when the curve scales perfectly (within the report's tolerance) over at least
    one doubling from its smallest batch size, and some later doubling saves under 10% (the
    report's onset) with no saving of 10% or more after it; "no plateau" when a later saving
    of 10% or more follows the onset, or there is no onset; "no perfect scaling" when even
    the first step misses the tolerance. Fewer than 3 batch sizes: not measured.
(b) *the sparse network needs more steps* (the paper: about 2^1.5 = 2.83x the dense steps in
    the perfect-scaling region): the geometric mean of the sparse/dense best-steps ratios over
    the dense curve's perfect-scaling batch sizes, with its interval; "more steps" when the
    interval lies above 1; against 2.83: "as the paper" when the interval holds it, "above" or
    "below" when it lies beyond it. No interval: the point, marked so.
(c) *the sparse critical batch size is at least the dense one* (the paper: larger, 2^11 vs
    2^9 on W2): the ratio of the fitted B_crit, sparse over dense, with its interval: "holds"
    when the interval lies above 1, "opposite" when below 1, "undecided" when it holds 1. No
    interval: "not established" (the point estimate is shown).

    python reproduction/claims_table.py w1-sgd-cpu w2-nesterov-cpu w3-resnet8-cpu \
        [--summary NAME=PATH ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAPER_RATIO = 2 ** 1.5  # sparse/dense steps in the perfect-scaling region (the paper)


def _ci(ci: list | None, digits: int = 2) -> str:
    return f"[{ci[0]:,.{digits}f}, {ci[1]:,.{digits}f}]" if ci and None not in ci else ""


def _value(value: float, ci: list | None, digits: int, unit: str = "") -> str:
    """``value`` with its interval after it, when there is one."""
    interval = _ci(ci, digits)
    return f"{value:,.{digits}f}{unit}" + (f" {interval}" if interval else "")


def regimes_verdict(curve: dict) -> str:
    """Claim (a) for one curve (rule in the module docstring)."""
    batches = curve.get("batch_sizes") or []
    reg = curve.get("regimes") or {}
    if len(batches) < 3:
        return "not measured (fewer than 3 batch sizes)"
    end, onset = reg.get("perfect_scaling_end"), reg.get("max_parallelism_onset")
    if end is None or end <= min(batches):
        return "no perfect scaling"
    if onset is None:
        return f"perfect to {end}, no plateau within {max(batches)}"
    if (reg.get("later_saving") or 0) >= reg.get("fraction", 0.1):
        a, b = reg["later_saving_between"]
        return (f"perfect to {end}, onset {onset}, no plateau: {a} → {b} saves "
                f"{reg['later_saving']:.0%}")
    return f"3 regimes: perfect to {end}, maximal from {onset}"


def steps_verdict(row: dict | None, ratios: list[dict] | None = None) -> str:
    """Claim (b) from the report's sparse-vs-dense summary row; without a perfect-scaling
    region (a single batch size, as W3 here), the ratio at each measured batch size, point
    only."""
    if not row or row.get("geomean_ratio") is None:
        if ratios:
            at = ", ".join(f"{r['ratio']:.2f}× (2^{math.log2(r['ratio']):.2f}) at B = "
                           f"{r['batch_size']}" for r in ratios)
            return f"{at}; no perfect-scaling region measured, no interval: point only"
        return "not measured"
    ratio, ci = row["geomean_ratio"], row.get("geomean_ratio_ci")
    where = ", ".join(str(b) for b in row.get("perfect_scaling_batch_sizes") or [])
    text = f"{_value(ratio, ci, 2, f'× (2^{math.log2(ratio):.2f})')} at B = {where}"
    if not ci or None in ci:
        note = row.get("geomean_ratio_interval_note") or "no interval"
        return f"{text}; {note}: point only"
    more = "more steps" if ci[0] > 1 else "more steps not established"
    if ci[0] <= PAPER_RATIO <= ci[1]:
        versus = "as the paper's 2^1.5"
    else:
        versus = "above the paper's 2^1.5" if ci[0] > PAPER_RATIO else "below the paper's 2^1.5"
    return f"{text}: {more}, {versus}"


def b_crit_verdict(row: dict | None, curves: dict[float, dict]) -> str:
    """Claim (c) from the fitted critical batch sizes."""
    dense, sparse = (curves.get(s, {}).get("fit") or {} for s in (0.0, 0.9))
    if not dense.get("b_crit") or not sparse.get("b_crit") or not row:
        return "not measured (no fit of both curves)"
    ratio, ci = row.get("b_crit_ratio"), row.get("b_crit_ratio_ci")
    text = (f"dense {_value(dense['b_crit'], dense.get('b_crit_ci'), 0)}, sparse "
            f"{_value(sparse['b_crit'], sparse.get('b_crit_ci'), 0)}; ratio "
            f"{_value(ratio, ci, 2)}")
    note = row.get("b_crit_ratio_interval_note")
    if note or not ci or None in ci:
        return f"{text}: not established ({note or 'no interval'})"
    if ci[0] > 1:
        return f"{text}: holds"
    return f"{text}: {'opposite' if ci[1] < 1 else 'undecided'}"


def claims_row(name: str, summary: dict) -> list[str]:
    curves = {c["sparsity"]: c for c in summary["curves"]}
    rows = summary["sparse_vs_dense"]["summary"]
    row = next((r for r in rows if math.isclose(r["sparsity"], 0.9)), None)
    first = summary["curves"][0] if summary["curves"] else {}
    label = f"{name} ({first.get('workload', '?')})"
    a = "; ".join(f"s = {s:g}: {regimes_verdict(c)}" for s, c in sorted(curves.items()))
    at = [r for r in summary["sparse_vs_dense"].get("ratios") or []
          if math.isclose(r["sparsity"], 0.9) and r.get("ratio")]
    return [label, a or "not measured", steps_verdict(row, at), b_crit_verdict(row, curves)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", help="e.g. w1-sgd-cpu w2-nesterov-cpu")
    parser.add_argument("--summary", action="append", default=[], metavar="NAME=PATH",
                        help="summary.json of NAME (default: its report's)")
    args = parser.parse_args()
    paths = dict(item.split("=", 1) for item in args.summary)
    print("| workload | (a) regimes | (b) sparse/dense steps, perfect-scaling region | "
          "(c) B_crit sparse vs dense |")
    print("| --- | --- | --- | --- |")
    for name in args.names:
        path = Path(paths.get(name) or HERE / "results" / name / "report" / "summary.json")
        if not path.exists():
            print(f"| {name} | no report ({path}) | | |")
            continue
        print("| " + " | ".join(claims_row(name, json.loads(path.read_text()))) + " |")


if __name__ == "__main__":
    main()
