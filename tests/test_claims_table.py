"""The written rules of reproduction/claims_table.py, on hand-made report summaries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "reproduction" / "claims_table.py"
_spec = importlib.util.spec_from_file_location("claims_table", SCRIPT)
assert _spec is not None and _spec.loader is not None
claims = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(claims)


def _curve(end, onset, later=None, between=None, batches=(16, 64, 256, 1024)) -> dict:
    return {"batch_sizes": list(batches),
            "regimes": {"perfect_scaling_end": end, "max_parallelism_onset": onset,
                        "fraction": 0.1, "later_saving": later,
                        "later_saving_between": between}}


def test_regimes_rule() -> None:
    assert claims.regimes_verdict(_curve(64, 256)) == "3 regimes: perfect to 64, maximal from 256"
    assert claims.regimes_verdict(_curve(64, 256, 0.04, [256, 1024])).startswith("3 regimes")
    assert claims.regimes_verdict(_curve(64, 256, 0.3, [256, 1024])) == (
        "perfect to 64, onset 256, no plateau: 256 → 1024 saves 30%")
    assert claims.regimes_verdict(_curve(64, None)) == "perfect to 64, no plateau within 1024"
    assert claims.regimes_verdict(_curve(16, 64)) == "no perfect scaling"
    assert claims.regimes_verdict(_curve(None, None, batches=(64,))).startswith("not measured")


def test_steps_rule_against_the_paper() -> None:
    row = {"geomean_ratio": 4.0, "geomean_ratio_ci": [3.0, 5.0],
           "perfect_scaling_batch_sizes": [16, 32]}
    assert claims.steps_verdict(row) == (
        "4.00× (2^2.00) [3.00, 5.00] at B = 16, 32: more steps, above the paper's 2^1.5")
    row["geomean_ratio_ci"] = [2.0, 5.0]
    assert claims.steps_verdict(row).endswith("more steps, as the paper's 2^1.5")
    row["geomean_ratio_ci"] = [0.9, 2.5]
    assert claims.steps_verdict(row).endswith(
        "more steps not established, below the paper's 2^1.5")
    row["geomean_ratio_ci"] = None
    row["geomean_ratio_interval_note"] = "no interval: too few completed trials"
    assert claims.steps_verdict(row) == ("4.00× (2^2.00) at B = 16, 32; no interval: too few "
                                         "completed trials: point only")
    assert claims.steps_verdict(None) == "not measured"
    one = [{"sparsity": 0.9, "batch_size": 64, "ratio": 2.0}]  # one batch size (W3 here)
    assert claims.steps_verdict(None, one) == (
        "2.00× (2^1.00) at B = 64; no perfect-scaling region measured, no interval: point only")


def test_b_crit_rule() -> None:
    curves = {0.0: {"fit": {"b_crit": 100.0, "b_crit_ci": [80.0, 120.0]}},
              0.9: {"fit": {"b_crit": 300.0, "b_crit_ci": [200.0, 500.0]}}}
    row = {"b_crit_ratio": 3.0, "b_crit_ratio_ci": [1.5, 5.0]}
    assert claims.b_crit_verdict(row, curves) == (
        "dense 100 [80, 120], sparse 300 [200, 500]; ratio 3.00 [1.50, 5.00]: holds")
    row["b_crit_ratio_ci"] = [0.3, 0.7]
    assert claims.b_crit_verdict(row, curves).endswith(": opposite")
    row["b_crit_ratio_ci"] = [0.5, 2.0]
    assert claims.b_crit_verdict(row, curves).endswith(": undecided")
    row["b_crit_ratio_ci"], row["b_crit_ratio_interval_note"] = None, "no interval: censored"
    assert claims.b_crit_verdict(row, curves).endswith(
        "ratio 3.00: not established (no interval: censored)")
    assert claims.b_crit_verdict(row, {0.0: curves[0.0]}).startswith("not measured")
