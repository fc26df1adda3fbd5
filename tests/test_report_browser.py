"""The report in a real browser: headless Chromium loads it without errors, the findings come
first and in view, and every figure (embedded PNG, linked SVG) loads.

Chromium comes from Debian's ``chromium`` package (``.ci/install-chromium``); a missing
browser fails the test with that instruction, it never skips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chromium_page import INSTALL_HINT, find_browser, inspect_page
from sparsedp.report import write_report

CHECK = """(async () => {
  const load = (src) => new Promise((done) => {
    const img = new Image();
    img.onload = () => done(img.naturalWidth > 0);
    img.onerror = () => done(false);
    img.src = src;
  });
  const main = document.querySelector("main");
  const critical = document.querySelector("#findings li.finding");
  const svgs = [...document.querySelectorAll('a[href$=".svg"]')];
  return {
    parts: [...main.children].map((e) => e.id),
    headings: [...document.querySelectorAll("main > section > h2")].map((e) => e.textContent),
    firstFindingTop: critical.getBoundingClientRect().top,
    firstFinding: critical.textContent,
    viewport: window.innerHeight,
    overflowX: document.documentElement.scrollWidth - window.innerWidth,
    images: [...document.images].map((i) => i.complete && i.naturalWidth > 0),
    svgs: await Promise.all(svgs.map((a) => load(a.href))),
    levels: [...document.querySelectorAll("#findings li.finding")].map((e) => e.className),
  };
})()"""


@pytest.fixture(scope="module")
def browser() -> str:
    path = find_browser()
    if path is None:
        pytest.fail(f"no Chromium for the report's browser test: run .ci/install-chromium, "
                    f"or {INSTALL_HINT}")
    return path


def trials() -> pd.DataFrame:
    """A hand-made results table: dense and 90% sparse on three batch sizes, 98% sparse with
    results at two of them only (too few for a fit)."""
    rows = []
    for sparsity, s_min, sizes in ((0.0, 100, (16, 64, 256)), (0.9, 250, (16, 64, 256)),
                                   (0.98, 600, (16, 64))):
        for b in (16, 64, 256):
            for i in range(3):
                done = b in sizes
                rows.append({
                    "experiment": "browser", "study_key": f"w|{sparsity}|{b}", "workload": "w",
                    "dataset": "mnist", "dataset_label": "MNIST", "model": "simple-cnn",
                    "optimizer": "momentum", "sparsity": sparsity, "batch_size": b,
                    "trial_index": i, "lr": 0.01 * 3**i, "momentum": 1 - 0.1 / 2**i,
                    "decay_steps": np.nan, "end_lr_factor": np.nan,
                    "status": "complete" if done else "incomplete",
                    "steps_to_result": s_min * (1 + 128 / b) * (1 + 0.2 * i) if done else np.nan,
                    "stop_hopeless": False,
                })
    return pd.DataFrame(rows)


def test_report_renders_in_chromium_with_the_findings_first(tmp_path: Path, browser: str):
    page = write_report(
        trials(), tmp_path / "report", experiment_config={"name": "browser"},
        provenance={"host": "test"}, engine_notes={}, analysis_options={"n_resamples": 20},
        formats=("png", "svg"), dpi=40,
    )
    shot = tmp_path / "report.png"
    seen = inspect_page(page, CHECK, screenshot=shot)
    assert seen.problems == []
    v = seen.value
    assert v["parts"] == ["findings", "figures", "tables", "configuration"]
    assert v["headings"] == ["Findings", "Figures", "Tables", "Configuration"]
    assert 0 < v["firstFindingTop"] < v["viewport"] / 2, "the answer is not at the top"
    assert "trials in" in v["firstFinding"]
    assert any("level-not-enough-results" in c for c in v["levels"])  # the 98% curve
    assert any("level-pending" in c for c in v["levels"])  # predicted B_crit slot
    assert v["images"] and all(v["images"])
    assert len(v["svgs"]) == len(v["images"]) and all(v["svgs"])
    assert v["overflowX"] <= 0
    assert shot.stat().st_size > 10_000


def test_the_check_sees_errors_and_broken_images(tmp_path: Path, browser: str):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><img src='missing.png'>"
                    "<script>console.error('boom'); undefined_function();</script></body></html>")
    seen = inspect_page(page, "[...document.images].map((i) => i.naturalWidth)")
    assert any("boom" in p for p in seen.console_errors)
    assert any("undefined_function" in p for p in seen.exceptions)
    assert seen.failed_loads and seen.value == [0]
