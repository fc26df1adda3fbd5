"""reproduction/workload_tables.py's plan-against-actual table, on a hand-made plan and export."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "reproduction" / "workload_tables.py"
_spec = importlib.util.spec_from_file_location("workload_tables", SCRIPT)
assert _spec is not None and _spec.loader is not None
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)

PLAN = """\
w s=0 B=64    0+8   100 like   200   1.0   1.0      30 min      2 h      1 h
w s=0.9 B=64  0+8   300 like   900   1.0   1.0      9 h      20 h      9 h
# Plan of record
w s=0 B=64    0+8   100 like   200   1.0   1.0      1.0 h      2 h      1 h
w s=0.9 B=64  0+8   300 like   900   1.0   1.0      3.0 h      20 h      3 h
w s=0.9 B=256 0+8   300 like   900   1.0   1.0      30 min      20 h      3 h
# Re-planned
w s=0 B=64    0+8   100 like   200   1.0   1.0      9 h      20 h      9 h
"""


def test_plan_against_actual_rows_and_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.plan.txt").write_text(PLAN)
    rows = ["sparsity,batch_size,trial_index,wall_time",
            "0.0,64,0,1800", "0.0,64,1,3600",          # 1.5 h against 1.0 h
            "0.9,64,0,5400"]                            # 1.5 h against 3.0 h
    (tmp_path / "x-trials.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(tables, "HERE", tmp_path)
    lines = tables.plan_vs_actual("x").splitlines()
    assert lines[2] == "| s = 0, B = 64 | 2 | 60.0 min | 1.5 h | 1.50 |"
    assert lines[3] == "| s = 0.9, B = 64 | 1 | 3.0 h | 1.5 h | 0.50 |"
    assert lines[4] == "| s = 0.9, B = 256 | 0 | 30.0 min | — | — |"
    # the total counts the plan's studies (the plan of record's, not the re-plan's): 4.5 h
    # planned, 3.0 h run; a study with no trials stored adds its plan, nothing run
    assert lines[5] == "| total (the plan's studies; SNIP left out) | 3 | 4.5 h | 3.0 h | 0.67 |"
