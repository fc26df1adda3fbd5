"""Self-contained HTML report (figures embedded as base64 PNG) and ``summary.json``."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsedp.analysis.curves import METAPARAMETERS, STATUSES, searched_metaparameters
from sparsedp.analysis.summary import Analysis, analysis_to_dict, analyze, to_jsonable
from sparsedp.plots.scaling import (
    plot_optimizer_comparison,
    plot_scaling,
    save_figure,
    sparsity_label,
)
from sparsedp.plots.search import plot_metaparameters, plot_search_space
from sparsedp.report.robustness import robustness
from sparsedp.search.space import SearchSpace

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
tr.missing td { color: #a00; background: #fff4f4; }
.warning { border: 2px solid #c60; background: #fff3e0; padding: 0.6em 1em; font-weight: bold; }
.note { background: #f5f7ff; border-left: 4px solid #57a; padding: 0.4em 1em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; max-width: 1100px; }
"""


@dataclass
class _Figure:
    stem: str
    caption: str
    png: bytes
    files: list[Path]


def _esc(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt(value: object, digits: int = 4) -> str:
    """Short text for a number (``—`` for missing)."""
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{float(value):.{digits}g}"
    return str(value)


def _steps(value: object) -> str:
    """Steps (and other counts that may be fractional, like S_min) rounded to integers."""
    if value is None or value is pd.NA:
        return "—"
    v = float(value)
    return f"{v:.0f}" if math.isfinite(v) else "—"


def _sparsity(value: object) -> str:
    return sparsity_label(float(value)) if value is not None else "—"


def _interval(ci: Sequence[float] | None, digits: int = 4) -> str:
    return f"[{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]" if ci else "—"


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    text_columns: int = 0,
    row_classes: Sequence[str] | None = None,
) -> str:
    """HTML table; every cell escaped; the first ``text_columns`` columns left-aligned."""
    out = ["<table><thead><tr>"]
    for i, h in enumerate(headers):
        cls = ' class="text"' if i < text_columns else ""
        out.append(f"<th{cls}>{_esc(h)}</th>")
    out.append("</tr></thead><tbody>")
    for r, row in enumerate(rows):
        cls = f' class="{_esc(row_classes[r])}"' if row_classes and row_classes[r] else ""
        out.append(f"<tr{cls}>")
        for i, cell in enumerate(row):
            tcls = ' class="text"' if i < text_columns else ""
            out.append(f"<td{tcls}>{_esc(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            items.extend(_flatten(value, name + "."))
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            items.append((name, f"{len(value)} entries"))
        elif isinstance(value, (list, tuple)):
            items.append((name, ", ".join(_fmt(v) for v in value)))
        else:
            items.append((name, _fmt(value)))
    return items


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "figure"


def experiment_name(trials: pd.DataFrame, config: Mapping[str, Any]) -> str:
    """The experiment's name: ``config["name"]``, else the ``experiment`` column's values."""
    for key in ("name", "experiment"):
        if config.get(key):
            return str(config[key])
    if trials is not None and "experiment" in trials and trials["experiment"].notna().any():
        return ", ".join(sorted(set(str(v) for v in trials["experiment"].dropna())))
    return "experiment"


def _is_lossy(label: str) -> bool:
    text = label.lower()
    return "lossy" in text or "not bit-identical" in text


def expected_study_status(
    best: pd.DataFrame, expected: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """For each expected study: ``result``, ``no result yet`` (trials, none complete) or
    ``not started`` (no trials)."""
    out = []
    for item in expected:
        workload = str(item.get("workload"))
        sparsity = float(item.get("sparsity", float("nan")))
        batch_size = int(item.get("batch_size", -1))
        rows = (
            best[
                (best["workload"] == workload)
                & np.isclose(best["sparsity"].astype(float), sparsity, rtol=0.0, atol=1e-9)
                & (best["batch_size"].astype(int) == batch_size)
            ]
            if len(best)
            else best
        )
        if len(rows) == 0:
            state = "not started"
        elif np.isfinite(float(rows["steps"].iloc[0])):
            state = "result"
        else:
            state = "no result yet"
        out.append(
            {
                "workload": workload,
                "sparsity": sparsity,
                "batch_size": batch_size,
                "state": state,
                "n_trials": int(rows["n_trials"].iloc[0]) if len(rows) else 0,
            }
        )
    return out


def _stopping_note(engine_notes: Mapping[str, Any], trials: pd.DataFrame) -> str:
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
                "'stopped'); study results (best steps) are unaffected, but the bootstrap "
                "counts stopped trials as without a result."
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
            "study's best was stopped early and is shown as 'stopped' (orange square) in the "
            f"search figures; whether it would have reached the goal is unknown. {n_stopped} "
            "trials were stopped. Study results (best steps) are unaffected, but the bootstrap "
            "counts stopped trials as without a result, so in resamples that miss a study's "
            "best trial its steps can be overestimated: intervals may be wider or shifted up."
        )
    if flag is False:
        return (
            "Stopping of hopeless trials was OFF: every trial ran until it reached the goal, "
            "diverged or used its step budget."
        )
    extra = f" {n_stopped} trials have status 'stopped'." if n_stopped else ""
    return "Whether hopeless trials were stopped early was not recorded." + extra


def _make_figures(
    analysis: Analysis, fig_dir: Path, formats: Sequence[str], dpi: int,
    spread: pd.DataFrame | None = None,
) -> list[_Figure]:
    trials, best = analysis.trials, analysis.best
    figures: list[_Figure] = []

    def add(stem: str, caption: str, fig) -> None:
        all_formats = tuple(dict.fromkeys(("png", *formats)))
        files = save_figure(fig, fig_dir / stem, formats=all_formats, dpi=dpi)
        png = next(p for p in files if p.suffix == ".png").read_bytes()
        keep = [p for p in files if p.suffix.lstrip(".") in formats]
        for p in files:
            if p not in keep:
                p.unlink()
        figures.append(_Figure(stem=stem, caption=caption, png=png, files=keep))

    workloads = sorted(set(best["workload"])) if len(best) else []
    for workload in workloads:
        rows = best[best["workload"] == workload]
        label = (
            str(rows["dataset_label"].dropna().iloc[0])
            if rows["dataset_label"].notna().any()
            else ""
        )
        dataset = str(rows["dataset"].dropna().iloc[0]) if rows["dataset"].notna().any() else ""
        style = "Figure 3" if "cifar" in dataset.lower() else "Figure 1"
        add(
            f"scaling-{_safe_name(workload)}",
            f"{style} style. Steps to result against batch size for {workload} ({label}). "
            "One panel per sparsity: measured best steps (studies without a result are gaps), "
            "dashed perfect-scaling line through the first measured point, fitted "
            "S_min(1 + B_crit/B) in red with B_crit as a dotted vertical line. Then all "
            "sparsities together, then each normalised by its steps at its smallest batch "
            "size with a result.",
            plot_scaling(trials, workload, best=best, min_points=analysis.options["min_points"],
                         spread=spread),
        )
    groups: dict[tuple[str, str], list[str]] = {}
    for workload in workloads:
        rows = best[best["workload"] == workload].iloc[0]
        groups.setdefault((str(rows["dataset"]), str(rows["model"])), []).append(workload)
    for (dataset, model), names in sorted(groups.items()):
        if len(names) < 2:
            continue
        add(
            f"optimizers-{_safe_name(dataset)}-{_safe_name(model)}",
            f"Figure 2 style. Optimizers compared on {model} / {dataset}, one panel per "
            f"sparsity (workloads: {', '.join(names)}).",
            plot_optimizer_comparison(trials, workloads=names, best=best),
        )
    for workload in workloads:
        add(
            f"search-{_safe_name(workload)}",
            f"Figure 4 style. Every trial of every study of {workload} in metaparameter "
            "space (learning rate against 1 − momentum; against steps to result when the "
            "workload has no momentum). Complete: blue circle, incomplete: grey triangle, "
            "infeasible: red x, stopped: orange square, failed: black +, other statuses: "
            "purple diamond; best trial: gold star.",
            plot_search_space(trials, workload, best=best),
        )
    for workload in workloads:
        params = ", ".join(searched_metaparameters(trials[trials["workload"] == workload]))
        add(
            f"metaparameters-{_safe_name(workload)}",
            f"Figure 5 style. Each searched metaparameter ({params}) of {workload} against "
            "steps to result, one row per study; trials that did not reach the goal are "
            "drawn in the band above the dotted line; best trial: gold star.",
            plot_metaparameters(trials, workload, best=best),
        )
    return figures


def _best_table(best: pd.DataFrame) -> str:
    params = [p for p in METAPARAMETERS if p in best and best[p].notna().any()]
    headers = [
        "workload",
        "sparsity",
        "batch size",
        "study key",
        "best trial",
        "steps",
        *params,
        "trials",
        *STATUSES,
        "other",
    ]
    rows, classes = [], []
    for _, r in best.iterrows():
        has = np.isfinite(float(r["steps"]))
        rows.append(
            [
                r["workload"],
                _sparsity(r["sparsity"]),
                _fmt(r["batch_size"]),
                r["study_key"] or "—",
                _fmt(r["best_trial_index"]) if has else "—",
                _steps(r["steps"]) if has else "no result",
                *(_fmt(r[p]) for p in params),
                _fmt(r["n_trials"]),
                *(_fmt(r[f"n_{s}"]) for s in STATUSES),
                _fmt(r["n_other"]),
            ]
        )
        classes.append("" if has else "missing")
    return _table(headers, rows, text_columns=4, row_classes=classes)


def _fit_table(summary: Mapping[str, Any]) -> str:
    headers = [
        "workload",
        "sparsity",
        "points",
        "S_min",
        "S_min CI",
        "B_crit",
        "log2 B_crit",
        "B_crit CI",
        "B_crit at bound",
        "fit RMSE (log)",
        "bootstrap fits",
        "perfect scaling ends at",
        "max. parallelism from",
        "batch sizes without result",
    ]
    rows = []
    for c in summary["curves"]:
        f, g = c["fit"], c["regimes"]
        frac = f["bootstrap_fraction_fit"]
        rows.append(
            [
                c["workload"],
                _sparsity(c["sparsity"]),
                len(c["batch_sizes"]),
                _steps(f["s_min"]),
                _interval(f["s_min_ci"]),
                _fmt(f["b_crit"]),
                _fmt(f["log2_b_crit"], 3),
                _interval(f["b_crit_ci"]),
                _fmt(f["at_bound"]),
                _fmt(f["rmse_log"], 3),
                "—" if frac is None else f"{100 * frac:.0f}% of {f['bootstrap_resamples']}",
                _fmt(g["perfect_scaling_end"]),
                _fmt(g["max_parallelism_onset"]),
                ", ".join(str(b) for b in c["missing_batch_sizes"]) or "—",
            ]
        )
    return _table(headers, rows, text_columns=1)


def _comparison_tables(summary: Mapping[str, Any]) -> str:
    comparisons = summary["sparse_vs_dense"]["summary"]
    headers = [
        "workload",
        "sparsity",
        "dense perfect scaling up to",
        "batch sizes used",
        "geo-mean steps ratio",
        "log2 ratio",
        "B_crit ratio",
        "B_crit ratio CI",
        "bootstrap pairs fitted",
    ]
    rows = []
    for c in comparisons:
        frac = c["b_crit_ratio_fraction_fit"]
        rows.append(
            [
                c["workload"],
                _sparsity(c["sparsity"]),
                _fmt(c["dense_perfect_scaling_end"]),
                ", ".join(str(b) for b in c["perfect_scaling_batch_sizes"]) or "—",
                _fmt(c["geomean_ratio"], 3),
                _fmt(c["log2_ratio"], 3),
                _fmt(c["b_crit_ratio"], 3),
                _interval(c["b_crit_ratio_ci"], 3),
                "—" if frac is None else f"{100 * frac:.0f}%",
            ]
        )
    html_parts = [_table(headers, rows, text_columns=1)]
    ratios = pd.DataFrame(summary["sparse_vs_dense"]["ratios"])
    if len(ratios):
        pivot = ratios.pivot_table(
            index=["workload", "sparsity"], columns="batch_size", values="ratio", aggfunc="first"
        )
        sizes = list(pivot.columns)
        prow = [
            [w, _sparsity(s), *(_fmt(v, 3) for v in vals)]
            for (w, s), vals in zip(pivot.index, pivot.to_numpy(), strict=True)
        ]
        html_parts.append(
            "<p>Steps ratio sparse / dense per batch size (blank: a study without a result):</p>"
        )
        html_parts.append(
            _table(["workload", "sparsity", *(str(b) for b in sizes)], prow, text_columns=1)
        )
    return "".join(html_parts)


def write_report(
    trials_df: pd.DataFrame,
    out_dir: str | Path,
    *,
    experiment_config: dict,
    provenance: dict,
    engine_notes: dict,
    analysis_options: Mapping[str, Any] | None = None,
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 120,
    repeats: pd.DataFrame | None = None,
    search_spaces: Mapping[str, SearchSpace] | None = None,
) -> Path:
    """Write ``out_dir/report.html``, ``out_dir/summary.json`` and ``out_dir/figures/``.

    ``analysis_options`` are passed to :func:`sparsedp.analysis.analyze` (e.g.
    ``n_resamples``); ``formats`` are those saved under ``figures/`` (PNG is always
    embedded), at ``dpi``. If ``experiment_config["expected_studies"]`` lists dicts with
    ``workload``, ``sparsity`` and ``batch_size``, studies without a result are listed.
    ``repeats`` (stored seed repeats) add error bars and seed-inclusive ratio intervals;
    ``search_spaces`` (by study key) enable the search-edge warnings.
    Returns the path of ``report.html``.
    """
    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    analysis = analyze(trials_df, **dict(analysis_options or {}))
    summary = analysis_to_dict(analysis)
    best = analysis.best
    name = experiment_name(trials_df, experiment_config)
    labels = (
        sorted(set(str(v) for v in trials_df["dataset_label"].dropna()))
        if trials_df is not None and "dataset_label" in trials_df
        else []
    )
    extra = robustness(analysis, repeats, search_spaces)
    figures = _make_figures(analysis, fig_dir, formats, dpi, extra.spread)

    expected = experiment_config.get("expected_studies")
    expected_status = expected_study_status(best, expected) if isinstance(expected, list) else None
    without_result = best[~np.isfinite(best["steps"].astype(float))] if len(best) else best

    parts: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(name)} — sparsedp report</title><style>{_CSS}</style></head><body>",
        f"<h1>sparsedp report: {_esc(name)}"
        + (f" — {_esc(', '.join(labels))}" if labels else "")
        + "</h1>",
        f"<p>Data set(s): {_esc(', '.join(labels) or 'unknown')}</p>",
    ]
    for label in labels:
        if _is_lossy(label):
            parts.append(
                f"<p class='warning'>Data set: {_esc(label)}. This is a lossy copy of the "
                "original data, not bit-identical to it: absolute numbers are not directly "
                "comparable with results on the original files.</p>"
            )
    counts = summary["counts"]
    parts.append(
        f"<p>{_fmt(counts['n_trials'])} trials in {_fmt(counts['n_studies'])} studies; "
        f"{_fmt(counts['n_studies_with_result'])} studies have a result, "
        f"{_fmt(counts['n_studies_without_result'])} have trials but none complete.</p>"
    )

    parts.append(extra.warning)
    parts.append("<h2>Configuration</h2>")
    parts.append(_table(["setting", "value"], _flatten(experiment_config), text_columns=2))

    parts.append("<h2>Engine notes</h2>")
    parts.append(f"<p class='note'>{_esc(_stopping_note(engine_notes, trials_df))}</p>")
    if engine_notes:
        parts.append(_table(["note", "value"], _flatten(engine_notes), text_columns=2))

    parts.append("<h2>Trial status counts</h2>")
    parts.append(_table(["status", "trials"], list(counts["by_status"].items()), text_columns=1))

    parts.append("<h2>Best trial per study</h2>")
    parts.append(
        "<p>A study's result is the lowest steps to result among its complete trials (ties: "
        "lower trial index). Rows in red have trials but no complete one.</p>"
    )
    parts.append(_best_table(best))

    parts.append("<h2>Missing studies</h2>")
    if expected_status is not None:
        missing = [e for e in expected_status if e["state"] != "result"]
        parts.append(
            f"<p>{len(expected_status) - len(missing)} of {len(expected_status)} expected "
            f"studies have a result; {len(missing)} do not (yet).</p>"
        )
        if missing:
            parts.append(
                _table(
                    ["workload", "sparsity", "batch size", "state", "trials"],
                    [
                        [
                            e["workload"],
                            _sparsity(e["sparsity"]),
                            e["batch_size"],
                            e["state"],
                            e["n_trials"],
                        ]
                        for e in missing
                    ],
                    text_columns=1,
                )
            )
    else:
        parts.append(
            "<p>No list of expected studies in the configuration; studies with "
            "no rows at all cannot be detected.</p>"
        )
        if len(without_result):
            parts.append(
                _table(
                    ["workload", "sparsity", "batch size", "trials"],
                    [
                        [r["workload"], _sparsity(r["sparsity"]), r["batch_size"], r["n_trials"]]
                        for _, r in without_result.iterrows()
                    ],
                    text_columns=1,
                )
            )
    parts.append("<p>Missing points are not drawn and not interpolated.</p>")

    opts = summary["options"]
    parts.append("<h2>Scaling fits and regimes</h2>")
    parts.append(
        "<p>Fit of S(B) = S_min·(1 + B_crit/B) by least squares on log S over the measured "
        f"points (at least {opts['min_points']}); {int(100 * opts['confidence'])}% percentile "
        f"bootstrap intervals over {opts['n_resamples']} resamples of each study's trials "
        f"(seed {opts['seed']}). Perfect scaling ends at the largest batch size up to which "
        f"every point is within {100 * opts['tol']:g}% above the perfect-scaling line through "
        "the first point; maximal data parallelism starts at the smallest batch size from which "
        f"a doubling cuts steps by less than {100 * opts['fraction']:g}%.</p>"
    )
    parts.append(_fit_table(summary))

    parts.append("<h2>Sparse versus dense</h2>")
    parts.append(
        "<p>Ratios of steps to result, sparse over dense (sparsity "
        f"{_sparsity(opts['dense_sparsity'])}), geometric mean over the batch sizes in the dense "
        "curve's perfect-scaling region where both have a result; critical batch size ratio "
        "from the fits (interval pairs the independent bootstrap resamples).</p>"
    )
    parts.append(_comparison_tables(summary))
    parts.append(extra.html)

    parts.append("<h2>Figures</h2>")
    if not figures:
        parts.append("<p>No figures: there are no trials yet.</p>")
    for fig in figures:
        data = base64.b64encode(fig.png).decode("ascii")
        links = " ".join(
            f"<a href='figures/{_esc(p.name)}'>{_esc(p.suffix.lstrip('.'))}</a>" for p in fig.files
        )
        parts.append(
            f"<figure id='{_esc(fig.stem)}'><img alt='{_esc(fig.stem)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{_esc(fig.caption)} "
            f"({links})</figcaption></figure>"
        )

    parts.append("<h2>Provenance</h2>")
    parts.append(_table(["item", "value"], _flatten(provenance), text_columns=2))
    parts.append("</body></html>")

    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")

    full = dict(summary)
    full.update(
        experiment=name,
        dataset_labels=labels,
        config=experiment_config,
        provenance=provenance,
        engine_notes=engine_notes,
        expected_studies=expected_status,
        figures=[str(p.relative_to(out)) for f in figures for p in f.files],
        robustness=extra.summary,
    )
    (out / "summary.json").write_text(
        json.dumps(to_jsonable(full), indent=2, allow_nan=False), encoding="utf-8"
    )
    return path
