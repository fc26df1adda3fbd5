"""The report's findings: sentences with the answer, honest gaps, and the hooks that add more."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sparsedp.analysis import analyze
from sparsedp.analysis.regimes import regimes
from sparsedp.analysis.summary import analysis_to_dict
from sparsedp.report import (
    PREDICTED_VS_MEASURED,
    Finding,
    Section,
    predicted_vs_measured,
    write_report,
)
from sparsedp.report.findings import (
    NOT_ENOUGH,
    PENDING,
    WARNING,
    arrange_findings,
    critical_batch_finding,
    measured_findings,
    regimes_finding,
)
from sparsedp.report.tables import Table

OPTIONS = {"min_points": 3, "confidence": 0.95}


def curve(sizes, steps=None, *, b_crit=None, ci=None, at_bound=False, end=None, onset=None):
    return {
        "workload": "w",
        "sparsity": 0.9,
        "batch_sizes": list(sizes),
        "steps": list(steps or [100] * len(sizes)),
        "missing_batch_sizes": [],
        "fit": {
            "b_crit": b_crit, "b_crit_ci": ci, "s_min": 50.0, "s_min_ci": None,
            "at_bound": at_bound, "bootstrap_fraction_fit": 1.0, "bootstrap_resamples": 20,
        },
        "regimes": {"perfect_scaling_end": end, "max_parallelism_onset": onset,
                    "tol": 0.25, "fraction": 0.1},
    }


def test_critical_batch_sentence_states_the_interval_and_what_it_means():
    f = critical_batch_finding(curve([16, 64, 256], b_crit=99.4, ci=[74.2, 230.0]), OPTIONS)
    assert f.level == "ok"
    assert f.text.startswith("At 90% sparsity, adding workers stops paying off above B ≈ 99 ")
    assert "95% interval 74–230" in f.text and "at most 25% of the steps" in f.text


def test_too_few_results_give_no_number():
    f = critical_batch_finding(curve([16, 64]), OPTIONS)
    assert f.level == NOT_ENOUGH and "not enough results" in f.text and "≈" not in f.text
    r = regimes_finding(curve([16]))
    assert r.level == NOT_ENOUGH and "need two" in r.text


def test_fit_at_bound_and_extrapolation_are_caveats():
    flat = critical_batch_finding(curve([16, 64, 256], b_crit=0.06, at_bound=True), OPTIONS)
    assert flat.level == WARNING and "Measure smaller batch sizes" in flat.text
    beyond = critical_batch_finding(curve([16, 64, 256], b_crit=700.0, ci=[300, 900]), OPTIONS)
    assert beyond.level == WARNING and "extrapolates beyond the largest" in beyond.text


def test_regimes_sentence_names_all_three_regimes():
    r = regimes_finding(curve([16, 64, 256, 1024], end=64, onset=256))
    assert "perfect scaling up to B = 64" in r.text
    assert "diminishing returns from 64 to 256" in r.text
    assert "maximal data parallelism from B = 256" in r.text
    assert "measured B = 16–1,024" in r.text
    still = regimes_finding(curve([16, 64, 256], end=256))
    assert "larger batch sizes may still pay off" in still.text


def test_a_curve_that_falls_again_after_the_onset_says_so():
    """The GPU run's dense curve: 192 → 176 at 128 → 256 saves 8% (the onset by the 10%
    rule), but 160 → 128 from 512 to 1,024 saves 20%: the finding says the curve falls
    again instead of calling the workers beyond 128 wasted."""
    sizes = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
    steps = [1136, 608, 320, 192, 176, 160, 128, 112, 112, 112]
    reg = regimes(sizes, steps)
    assert reg.max_parallelism_onset == 128 and reg.later_saving_between == (512, 1024)
    assert reg.later_saving == pytest.approx(1 - 128 / 160)
    row = curve(sizes, steps=steps, end=reg.perfect_scaling_end, onset=128)
    row["regimes"].update(later_saving=reg.later_saving,
                          later_saving_between=list(reg.later_saving_between))
    text = regimes_finding(row).text
    assert "the first doubling, from 128, that saves less than 10%" in text
    assert "falls again: 20% per doubling from 512 to 1,024" in text
    assert "wasted" not in text and "pay off little and unevenly" in text
    flat = regimes([16, 32, 64, 128], [400, 200, 190, 185])  # 5%, 3%: a clean plateau
    assert flat.max_parallelism_onset == 32 and flat.later_saving < 0.1
    row = curve([16, 32, 64, 128], end=32, onset=32)
    row["regimes"].update(later_saving=flat.later_saving, later_saving_between=[64, 128])
    assert "extra workers are wasted" in regimes_finding(row).text


def test_a_sparsity_without_any_trial_is_named():
    trials = synthetic_trials()
    trials = trials[trials["sparsity"] == 0.0]
    expected = [{"workload": "w", "sparsity": sp, "batch_size": b, "state": "x"}
                for sp in (0.0, 0.9) for b in (16, 64, 256, 1024)]
    found = measured_findings(analysis_to_dict(analyze(trials, n_resamples=0)), expected)
    sparse = [f for f in found if f.sparsity == 0.9]
    assert len(sparse) == 1 and sparse[0].level == NOT_ENOUGH
    assert "no results yet (none of its 4 studies, B = 16–1,024" in sparse[0].text


def test_pending_prediction_slot_until_a_source_fills_it():
    general, per = arrange_findings([Finding("critical-batch-size", "x", "w", 0.9)], ["w"])
    kinds = [g.kind for g in per["w"]]
    assert kinds == ["critical-batch-size", PREDICTED_VS_MEASURED]
    assert per["w"][1].findings[0].level == PENDING and general == []
    filled = Finding(PREDICTED_VS_MEASURED, "y", "w", 0.9)
    _, per = arrange_findings([filled, Finding("new-kind", "z", "w")], ["w"])
    assert [g.kind for g in per["w"]] == [PREDICTED_VS_MEASURED, "new-kind"]
    assert per["w"][0].findings == [filled]


def synthetic_trials() -> pd.DataFrame:
    """Dense and 90%-sparse curves of S = S_min(1 + 128/B), three trials per study."""
    rows = []
    for sparsity, s_min in ((0.0, 100), (0.9, 250)):
        for b in (16, 64, 256, 1024):
            for i, noise in enumerate((1.0, 1.1, 1.3)):
                rows.append({
                    "experiment": "syn", "study_key": f"{sparsity}|{b}", "workload": "w",
                    "dataset": "toyset", "dataset_label": "Toy", "model": "m",
                    "optimizer": "momentum", "sparsity": sparsity, "batch_size": b,
                    "trial_index": i, "lr": 0.1 * (i + 1), "momentum": 0.9 + 0.03 * i,
                    "decay_steps": np.nan, "end_lr_factor": np.nan, "status": "complete",
                    "steps_to_result": s_min * (1 + 128 / b) * noise,
                })
    return pd.DataFrame(rows)


def test_predicted_vs_measured_compares_with_the_fit():
    analysis = analyze(synthetic_trials(), n_resamples=20)
    f = predicted_vs_measured(analysis, "w", 0.9, 200.0, (150.0, 260.0))
    assert f.kind == PREDICTED_VS_MEASURED and f.level == "ok"
    assert f.values["measured"] == pytest.approx(128, rel=0.05)
    assert "predicts B ≈ 200" in f.text and "measured B_crit ≈ 1" in f.text
    assert "the intervals" in f.text
    missing = predicted_vs_measured(analysis, "w", 0.5, 200.0)
    assert missing.level == NOT_ENOUGH


def test_hooks_add_findings_and_sections_to_the_page(tmp_path):
    def probe(inputs):
        return [predicted_vs_measured(inputs.analysis, "w", 0.9, 200.0, (150.0, 260.0))]

    section = Section(
        "probe-table", "Probe", "table_section.html",
        lambda inputs: {"intro": "<b>made up</b>", "table": Table(["a"], [["1"]])},
        place="tables",
    )
    path = write_report(
        synthetic_trials(), tmp_path, experiment_config={"name": "syn"}, provenance={},
        engine_notes={}, analysis_options={"n_resamples": 10}, formats=("png",), dpi=30,
        finding_sources=[probe], sections=[section],
    )
    html = path.read_text()
    findings = html.split('<section id="findings">')[1].split('<section id="figures">')[0]
    assert "predicts B ≈ 200" in findings and "No prediction" not in findings
    tables = html.split('<section id="tables">')[1]
    assert 'id="probe-table"' in tables and "&lt;b&gt;made up&lt;/b&gt;" in tables
    summary = json.loads((tmp_path / "summary.json").read_text())
    kinds = [f["kind"] for f in summary["findings"]]
    assert kinds[0] == "overview" and PREDICTED_VS_MEASURED in kinds
    assert summary["sparse_vs_dense"]["summary"][0]["geomean_ratio_ci"] is not None
    with pytest.raises(ValueError, match="place"):
        Section("x", "X", "table_section.html", lambda _: {}, place="footer")
