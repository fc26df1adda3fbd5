"""The benchmark scripts' own checks (their timings are not tested)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_speed_identity_check_fails_when_there_is_nothing_to_compare() -> None:
    verdict = _load("study_speed").identity_verdict
    assert verdict({"plain": [544, 2], "fast-off": [544, 2], "fast": [544, 2]})[0] is True
    assert verdict({"plain": [544, 2], "fast": [560, 2]})[0] is False
    assert verdict({"plain": None, "fast": [544, 2]})[0] is False
    ok, line = verdict({"plain": None, "fast-off": None, "fast": None})
    assert not ok and "NOT CHECKED" in line  # identical Nones prove nothing
    ok, line = verdict({"fast": [544, 2]})
    assert not ok and "only fast ran" in line
    assert verdict({})[0] is False
