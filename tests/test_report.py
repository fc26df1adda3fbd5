"""HTML report and summary.json: completeness, partial results, escaping."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from sparsedp.report import write_report

SPARSITIES = (0.0, 0.9)
BATCH_SIZES = (16, 64, 256, 1024)


def make_trials(
    workloads=("toy-sgd", "toy-momentum"),
    drop_batch_size: int | None = None,
    no_result=(),
    label: str = "Toy",
    experiment: str = "toy",
    n_trials: int = 6,
) -> pd.DataFrame:
    """Synthetic trials on a small grid; ``drop_batch_size`` removes one batch size entirely,
    ``no_result`` lists ``(workload, sparsity, batch_size)`` studies with no complete trial."""
    rng = np.random.default_rng(1)
    rows = []
    statuses = ("complete", "incomplete", "complete", "infeasible", "stopped", "complete")
    for workload in workloads:
        optimizer = workload.split("-")[-1]
        for sparsity in SPARSITIES:
            for batch_size in BATCH_SIZES:
                if batch_size == drop_batch_size:
                    continue
                truth = 200 * (1 + 2 * sparsity) * (1 + 128 / batch_size)
                for i in range(n_trials):
                    status = statuses[i % len(statuses)]
                    if (workload, sparsity, batch_size) in no_result and status == "complete":
                        status = "incomplete"
                    steps = truth * (1 + rng.uniform(0, 0.5))
                    rows.append(
                        {
                            "experiment": experiment,
                            "study_key": f"{workload}|{sparsity}|{batch_size}",
                            "workload": workload,
                            "dataset": "toyset",
                            "dataset_label": label,
                            "model": "toy-cnn",
                            "optimizer": optimizer,
                            "sparsity": sparsity,
                            "batch_size": batch_size,
                            "trial_index": i,
                            "seed": i,
                            "lr": 10 ** rng.uniform(-3, 0),
                            "momentum": 1 - 10 ** rng.uniform(-3, 0)
                            if optimizer != "sgd"
                            else np.nan,
                            "decay_steps": np.nan,
                            "end_lr_factor": np.nan,
                            "status": status,
                            "steps_to_result": steps if status == "complete" else np.nan,
                            "steps_taken": int(steps),
                            "final_val_error": 0.01,
                            "goal_error": 0.02,
                            "max_steps": 10_000,
                            "eval_every": 16,
                            "wall_time": 1.0,
                            "samples_per_second": 1.0,
                            "eval_share": 0.1,
                        }
                    )
    return pd.DataFrame(rows)


def expected_studies(workloads=("toy-sgd", "toy-momentum")) -> list[dict]:
    return [
        {"workload": w, "sparsity": s, "batch_size": b}
        for w in workloads
        for s in SPARSITIES
        for b in BATCH_SIZES
    ]


PROVENANCE = {
    "sparsedp": "0.1.0",
    "torch": "2.x",
    "python": "3.11",
    "git_commit": "abc123",
    "host": "testhost",
    "device": "cpu",
}


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    trials = make_trials()
    path = write_report(
        trials,
        out,
        experiment_config={
            "name": "toy-exp",
            "trials_per_study": 6,
            "expected_studies": expected_studies(),
        },
        provenance=PROVENANCE,
        engine_notes={"stop_hopeless_trials": True},
        analysis_options={"n_resamples": 20},
        dpi=60,
    )
    return out, path, path.read_text(encoding="utf-8")


def test_report_lists_every_study_and_embeds_all_figures(full_report):
    out, path, html = full_report
    assert path == out / "report.html"
    for workload in ("toy-sgd", "toy-momentum"):
        for sparsity in SPARSITIES:
            for batch_size in BATCH_SIZES:
                assert f"{workload}|{sparsity}|{batch_size}" in html
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    svgs = sorted(p.name for p in (out / "figures").glob("*.svg"))
    # Two workloads: scaling, search, metaparameter and search-adequacy figures each, plus
    # one comparison.
    assert len(pngs) == 9 and len(svgs) == 9
    assert sum(name.startswith("adequacy-") for name in pngs) == 2
    assert html.count("<img ") == 9
    assert html.count('src="data:image/png;base64,') == 9
    assert "<figcaption>" in html
    assert "Stopping of hopeless trials was ON" in html
    assert "abc123" in html and "testhost" in html
    assert "B_crit" in html and "log2 ratio" in html
    assert "16 of 16 expected studies have a result" in html


def test_summary_json_is_complete(full_report):
    out, _, _ = full_report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["n_studies"] == 16
    assert summary["counts"]["by_status"]["stopped"] == 16
    assert summary["config"]["name"] == "toy-exp"
    assert summary["provenance"]["git_commit"] == "abc123"
    assert summary["engine_notes"] == {"stop_hopeless_trials": True}
    assert len(summary["curves"]) == 4
    assert all(c["fit"]["b_crit"] is not None for c in summary["curves"])
    assert len(summary["figures"]) == 18


def test_report_with_partial_results(tmp_path):
    no_result = [("toy-sgd", 0.9, 16), ("toy-momentum", 0.0, 64)]
    trials = make_trials(drop_batch_size=256, no_result=no_result)
    path = write_report(
        trials,
        tmp_path,
        experiment_config={"name": "partial", "expected_studies": expected_studies()},
        provenance=PROVENANCE,
        engine_notes={"stop_hopeless_trials": False},
        analysis_options={"n_resamples": 10},
        formats=("png",),
        dpi=40,
    )
    html = path.read_text()
    assert "10 of 16 expected studies have a result; 6 do not (yet)" in html
    missing_section = html.split('<h3 id="missing">Missing studies</h3>')[1].split("<h3")[0]
    assert missing_section.count("not started") == 4  # batch size 256: 4 studies
    assert missing_section.count("no result yet") == 2
    assert "Stopping of hopeless trials was OFF" in html
    summary = json.loads((tmp_path / "summary.json").read_text())
    states = [e["state"] for e in summary["expected_studies"]]
    assert states.count("not started") == 4 and states.count("no result yet") == 2
    sgd_sparse = next(
        c for c in summary["curves"] if c["workload"] == "toy-sgd" and c["sparsity"] == 0.9
    )
    assert sgd_sparse["batch_sizes"] == [64, 1024]
    assert sgd_sparse["missing_batch_sizes"] == [16]
    assert sgd_sparse["fit"]["b_crit"] is None
    assert html.count("<img ") == 9


def test_report_without_any_complete_trial(tmp_path):
    no_result = [(w, s, b) for w in ("toy-sgd",) for s in SPARSITIES for b in BATCH_SIZES]
    trials = make_trials(workloads=("toy-sgd",), no_result=no_result)
    path = write_report(
        trials,
        tmp_path,
        experiment_config={},
        provenance={},
        engine_notes={},
        analysis_options={"n_resamples": 5},
        formats=("png",),
        dpi=40,
    )
    html = path.read_text()
    assert "was not recorded" in html
    n_studies = len(no_result)
    assert f"{n_studies} studies; 0 studies have a result, {n_studies} have trials" in html
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["counts"]["n_studies_with_result"] == 0
    assert summary["experiment"] == "toy"


def test_hostile_names_are_escaped_and_lossy_label_is_prominent(tmp_path):
    hostile = "<script>alert('x')</script>"
    label = "CIFAR-10 (lossy JPEG copy, not bit-identical)"
    trials = make_trials(workloads=("toy-sgd",), label=label, experiment=hostile)
    path = write_report(
        trials,
        tmp_path,
        experiment_config={"name": hostile, "note": "<b>bold</b>"},
        provenance={"host": "<img src=x onerror=alert(1)>"},
        engine_notes={"comment": "</table><script>"},
        analysis_options={"n_resamples": 5},
        formats=("png",),
        dpi=40,
    )
    html = path.read_text()
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html
    assert "onerror=alert(1)>" not in html
    title = re.search(r"<h1>(.*?)</h1>", html).group(1)
    assert "&lt;script&gt;" in title
    assert 'class="warning"' in html and "lossy JPEG copy" in html


# Names an import makes user-controlled (folder names and study.json fields of another
# tool's batch_science layout): each tries to open markup of its own, and "$…$" mathtext
# that matplotlib cannot parse.
HOSTILE = {
    "workload": "w<script>alert(\"w\")</script>&'\"$_^$",
    "dataset": "d<img src=x onerror=alert(1)>&amp;",
    "model": "m\"><svg onload=alert(2)>$\\frac{$",
    "optimizer": "o'</td><iframe src=javascript:alert(3)></iframe>",
    "dataset_label": "L<b onmouseover=alert(4)>bold</b>",
}
# a second workload whose file-name-safe form was the first one's ("<" and ">" swapped)
TWIN = HOSTILE["workload"].replace("<script>", ">script<")


class _Elements(HTMLParser):
    """Every element of a page with its attributes, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _hostile_trials() -> pd.DataFrame:
    """Two workloads of one hostile data set and model (so the optimizer comparison names
    them), with hostile workload and optimizer names."""
    trials = make_trials(workloads=("toy-sgd", "toy-momentum"), n_trials=4)
    for column in ("dataset", "model", "dataset_label"):
        trials[column] = HOSTILE[column]
    momentum = trials["workload"] == "toy-momentum"
    trials.loc[momentum, "optimizer"] = HOSTILE["optimizer"]
    trials["workload"] = np.where(momentum, HOSTILE["workload"], TWIN)
    trials["study_key"] = (trials["workload"] + "|" + trials["sparsity"].astype(str) + "|"
                           + trials["batch_size"].astype(str))
    return trials


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile")
    path = write_report(_hostile_trials(), out, experiment_config={"name": "imported"},
                        provenance=PROVENANCE, engine_notes={},
                        analysis_options={"n_resamples": 5}, formats=("png",), dpi=40)
    page = path.read_text(encoding="utf-8")
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return out, page, parser


def test_hostile_import_names_never_become_markup(hostile_report):
    _, page, parser = hostile_report
    tags = {tag for tag, _ in parser.elements}
    for injected in ("script", "iframe", "svg", "b"):
        assert injected not in tags, injected
    handlers = [(tag, name) for tag, attrs in parser.elements for name in attrs
                if name.startswith("on")]
    assert handlers == []
    # the only images are the embedded figures (none from the data set name's <img>)
    images = [attrs for tag, attrs in parser.elements if tag == "img"]
    assert len(images) >= 7
    assert all((a.get("src") or "").startswith("data:image/png;base64,") for a in images)
    assert "javascript:" not in " ".join(str(v) for _, a in parser.elements for v in a.values())
    for raw in ("<script", "<iframe", "<svg", "<img src=x", "<b "):
        assert raw not in page


def test_hostile_import_names_are_shown_as_text(hostile_report):
    _, page, parser = hostile_report
    text = "".join(parser.text)
    for name in (HOSTILE["workload"], TWIN, HOSTILE["model"], HOSTILE["dataset"],
                 HOSTILE["dataset_label"]):
        assert name in text, name  # shown literally, as text
    assert f"Optimizers compared on {HOSTILE['model']} / {HOSTILE['dataset']}" in text
    assert "&lt;script&gt;" in page and "&amp;amp;" in page  # "&amp;" shown as written
    assert "&amp;#39;" not in page and "&amp;lt;" not in page  # escaped once, not twice


def test_hostile_import_names_get_a_figure_file_each(hostile_report):
    """Names whose file-name-safe forms were equal (and "$…$" that matplotlib cannot parse)
    still give one figure file each: none overwrites another."""
    out, page, _ = hostile_report
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    files = sorted((out / "figures").glob("*.png"))
    assert sorted(str(p.relative_to(out)) for p in files) == sorted(summary["figures"])
    assert len(files) == page.count("<img ")
    for kind in ("scaling", "search", "metaparameters"):
        assert len([p for p in files if p.name.startswith(kind + "-")]) == 2, kind
    assert len([p for p in files if p.name.startswith("optimizers-")]) == 1
    assert {c["workload"] for c in summary["curves"]} == {HOSTILE["workload"], TWIN}
