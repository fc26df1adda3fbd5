"""The experiment file: TOML text → a validated, frozen :class:`ExperimentSpec`.

Every problem (syntax, unknown or missing keys, wrong types, values out of range) raises
:class:`~sparsedp.specs.toml_checks.ExperimentFileError`, one line naming file, line and key.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparsedp.data.splits import OFFICIAL_TRAIN_SIZES, train_split_size
from sparsedp.plugins import PluginSet
from sparsedp.pruning.ablation import ABLATIONS
from sparsedp.pruning.prune import PruneSettings
from sparsedp.pruning.registry import pruner_names
from sparsedp.search.refine import DEFAULT_AROUND, DEFAULT_MARGIN, REFINE_BASE
from sparsedp.search.sobol import SEQUENCES
from sparsedp.search.space import DEFAULT_DIMENSIONS, INTEGER_MAPPINGS, SCALES, Dimension
from sparsedp.specs.engine import (
    BACKENDS,
    CHANNELS_LAST_FIX,
    DEVICE_PATTERN,
    ORDERS,
    EngineOptions,
    channels_last_conflict,
)
from sparsedp.specs.experiment import ExperimentSpec, StudyDefaults
from sparsedp.specs.parts import PartsSections
from sparsedp.specs.refine import RefineOptions
from sparsedp.specs.toml_checks import ExperimentFileError, TomlChecker, shorten
from sparsedp.specs.values import Problem, resolve_against, resolve_batch_sizes
from sparsedp.training.optimizers import check_optimizer
from sparsedp.training.precision import PRECISIONS
from sparsedp.training.trial_config import TrialConfig
from sparsedp.training.workloads import METAPARAMETERS, get_workload

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
NAME_LIMIT = 100
"""Longest experiment name: it names the results directory (a file name: at most 255 bytes)
and heads every report, table and progress line."""

_TOP_KEYS = (
    "name",
    "workloads",
    "sparsities",
    "batch_sizes",
    "trials",
    "results",
    "workers",
    "data_dir",
    "seed",
    "data_seed",
    "goal_error",
    "max_steps",
    "eval_every",
    "hidden_units",
    "pruning",
    "search",
    "engine",
    "plugins",
    "datasets",
    "refine",
    "train_examples",
)
_REQUIRED = {
    "name": 'name = "my-experiment"',
    "workloads": 'workloads = ["mnist-simplecnn-momentum"]',
    "sparsities": "sparsities = [0.0, 0.9]",
    "batch_sizes": 'batch_sizes = [64, 256] or "2^4..2^13"',
}
_PRUNING_KEYS = tuple(f.name for f in dataclasses.fields(PruneSettings))
_DIMENSION_KEYS = ("low", "high", "scale", "integer")
_SEARCH_OPTIONS = ("sequence", "integer_mapping")
_ENGINE_KEYS = tuple(f.name for f in dataclasses.fields(EngineOptions))


class ExperimentLoader(TomlChecker, PartsSections):
    """Validates a parsed experiment file section by section."""

    def __init__(self, path: Path, shown: str, text: str, plugins: Sequence[str] = ()) -> None:
        super().__init__(path, shown, text)
        self.extra_plugins = tuple(plugins)

    # sections --------------------------------------------------------------------------

    def load(self, doc: dict[str, Any]) -> ExperimentSpec:
        self.keys(doc, _TOP_KEYS, ())
        for name, example in _REQUIRED.items():
            if name not in doc:
                self.fail((name,), "missing required key", f"add e.g. {example}")

        name = self.string(doc["name"], ("name",))
        if len(name) > NAME_LIMIT:
            self.fail(("name",), f"{len(name):,} characters long, more than {NAME_LIMIT} "
                      f"({shorten(name, 40)})",
                      'it names the results directory; use a short name, e.g. "quick-mnist"')
        if not NAME_PATTERN.fullmatch(name):
            self.fail(
                ("name",),
                f"{shorten(repr(name))} has characters other than letters, digits, '.', '_', '-'",
                'it names the results directory; e.g. name = "quick-mnist"',
            )

        modules = self.plugins(doc.get("plugins", []))
        datasets = self.datasets(doc.get("datasets", {}))
        workloads, defined = self.workloads(doc["workloads"])
        plugin_set = PluginSet(modules, (str(self.path.parent),), defined, datasets)
        sparsities = self.sparsities(doc["sparsities"])
        batch_sizes = self.batch_sizes(doc["batch_sizes"], workloads)

        trials = self.integer(doc.get("trials", 100), ("trials",), 1)
        if trials >= REFINE_BASE:
            self.fail(("trials",), f"must be below {REFINE_BASE:,}, got {trials}",
                      "use fewer trials per study")
        workers = self.integer(doc.get("workers", 1), ("workers",), 1)
        results = self.string(doc["results"], ("results",)) if "results" in doc else None
        data_dir = self.string(doc["data_dir"], ("data_dir",)) if "data_dir" in doc else None
        for key in ("results", "data_dir"):
            if key in doc and not doc[key].strip():
                self.fail((key,), "empty path", "give a directory or leave the key out")

        sizes = (self.train_examples(doc["train_examples"], workloads, batch_sizes)
                 if "train_examples" in doc else (None,))
        defaults = self.study_defaults(doc, workloads)
        engine = self.engine(doc.get("engine", {}))
        refine = self.refine(doc["refine"], engine, trials) if "refine" in doc else None
        base = self.path.parent
        return ExperimentSpec(
            name=name,
            path=self.path,
            workloads=workloads,
            sparsities=sparsities,
            batch_sizes=batch_sizes,
            trials=trials,
            results_dir=resolve_against(base, results) if results else None,  # type: ignore[arg-type]
            workers=workers,
            data_dir=resolve_against(base, data_dir) if data_dir else None,
            study_defaults=defaults,
            engine=engine,
            plugins=plugin_set,
            refine=refine,
            train_examples=sizes,
        )

    def train_examples(self, value: object, workloads: tuple[str, ...],
                       batch_sizes: tuple[int, ...]) -> tuple[int, ...]:
        """Training-set sizes: one whole number or a list (an axis, like sparsities)."""
        many = isinstance(value, list)
        items = self.nonempty_list(value, ("train_examples",), "[6000, 54000]") if many \
            else [value]
        out: list[int] = []
        for i, item in enumerate(items):
            key: tuple[str | int, ...] = ("train_examples", i) if many else ("train_examples",)
            n = self.integer(item, key, 1)
            if n in out:
                self.fail(key, f"duplicate size {n}", "list each once")
            fits = [(train_split_size(d), d) for d in (get_workload(w).dataset for w in workloads)
                    if d in OFFICIAL_TRAIN_SIZES]  # plugin data: checked when a trial starts
            if fits and n > min(fits)[0]:
                self.fail(key, f"{n:,} is more than the {min(fits)[1]} training split "
                          f"({min(fits)[0]:,} examples)", f"use sizes <= {min(fits)[0]}")
            if n < max(batch_sizes):
                self.fail(key, f"{n:,} examples are fewer than the batch size "
                          f"{max(batch_sizes)}", f"use sizes >= {max(batch_sizes)} or smaller "
                          "batch sizes")
            out.append(n)
        return tuple(out)

    def sparsities(self, value: object) -> tuple[float, ...]:
        items = self.nonempty_list(value, ("sparsities",), "[0.0, 0.9]")
        out: list[float] = []
        for i, item in enumerate(items):
            sparsity = self.number(item, ("sparsities", i))
            if not 0.0 <= sparsity < 1.0:
                self.fail(
                    ("sparsities", i),
                    f"{item} is outside [0, 1)",
                    "a sparsity is the fraction of weights removed, e.g. 0.9",
                )
            if sparsity in out:
                self.fail(("sparsities", i), f"duplicate sparsity {item}", "list each once")
            out.append(sparsity)
        return tuple(out)

    def batch_sizes(self, value: object, workloads: tuple[str, ...]) -> tuple[int, ...]:
        try:
            sizes = resolve_batch_sizes(value)  # type: ignore[arg-type]
        except Problem as error:
            self.fail(("batch_sizes",), error.problem, error.fix)
        known = [get_workload(w).dataset for w in workloads]  # plugin data: checked in preflight
        known = [d for d in known if d in OFFICIAL_TRAIN_SIZES]
        if not known:
            return sizes
        limit, dataset = min((train_split_size(d), d) for d in known)
        too_big = [b for b in sizes if b > limit]
        if too_big:
            self.fail(
                ("batch_sizes",),
                f"batch size {too_big[0]} is larger than the {dataset} training split "
                f"({limit:,} examples)",
                f"use batch sizes <= {limit}",
            )
        return sizes

    def study_defaults(self, doc: dict[str, Any], workloads: tuple[str, ...]) -> StudyDefaults:
        goal_error = None
        if "goal_error" in doc:
            goal_error = self.number(doc["goal_error"], ("goal_error",))
            if not 0.0 < goal_error < 1.0:
                self.fail(
                    ("goal_error",),
                    f"{doc['goal_error']} is outside (0, 1)",
                    "it is a validation error rate, e.g. 0.02",
                )
        max_steps = (
            self.integer(doc["max_steps"], ("max_steps",), 1) if "max_steps" in doc else None
        )
        eval_every = (
            self.integer(doc["eval_every"], ("eval_every",), 1) if "eval_every" in doc else None
        )
        hidden_units = self.integer(doc.get("hidden_units", 0), ("hidden_units",), 0)
        if hidden_units:
            others = [w for w in workloads if get_workload(w).model != "simple-cnn"]
            if others:
                self.fail(
                    ("hidden_units",),
                    f"applies to simple-cnn only, not {others[0]}",
                    "remove it or run that workload in another experiment",
                )
        return StudyDefaults(
            goal_error=goal_error,
            max_steps=max_steps,
            eval_every=eval_every,
            hidden_units=hidden_units,
            pruning=self.pruning(doc.get("pruning", {})),
            search=self.search(doc.get("search", {}), workloads),
            seed=self.integer(doc.get("seed", 0), ("seed",), 0),
            data_seed=self.integer(doc.get("data_seed", 0), ("data_seed",), 0),
            **self.search_options(doc.get("search", {})),
        )

    def pruning(self, value: object, where: tuple[str, ...] = ("pruning",)) -> PruneSettings:
        table = self.table(value, where)
        self.keys(table, _PRUNING_KEYS, where)
        options: dict[str, Any] = {}
        if "method" in table:
            options["method"] = self.choice(table["method"], (*where, "method"),
                                            pruner_names())
        if "ablation" in table:
            options["ablation"] = self.choice(table["ablation"], (*where, "ablation"), ABLATIONS)
        if "prune_biases" in table:
            options["prune_biases"] = self.boolean(
                table["prune_biases"], (*where, "prune_biases")
            )
        for key in ("snip_batches", "snip_batch_size", "grasp_examples_per_class",
                    "synflow_iterations"):
            if key in table:
                options[key] = self.integer(table[key], (*where, key), 1)
        if "grasp_temperature" in table:
            temperature = self.number(table["grasp_temperature"], (*where, "grasp_temperature"))
            if temperature <= 0:
                self.fail((*where, "grasp_temperature"), f"must be > 0, got {temperature}",
                          "GraSP divides the logits by it; the paper uses 200")
            options["grasp_temperature"] = temperature
        method = options.get("method", "snip")
        for key, owner in (("grasp_temperature", "grasp"), ("grasp_examples_per_class", "grasp"),
                           ("synflow_iterations", "synflow")):
            if key in table and method != owner:
                self.fail((*where, key), f"applies to method {owner!r} only, not {method!r}",
                          f'remove it or set method = "{owner}"')
        return PruneSettings(**options)

    def search_options(self, value: object) -> dict[str, str]:
        """``sequence`` and ``integer_mapping`` of the ``[search]`` table, where given."""
        table = self.table(value, ("search",))
        out: dict[str, str] = {}
        if "sequence" in table:
            out["sequence"] = self.choice(table["sequence"], ("search", "sequence"), SEQUENCES)
        if "integer_mapping" in table:
            out["integer_mapping"] = self.choice(
                table["integer_mapping"], ("search", "integer_mapping"), INTEGER_MAPPINGS
            )
        return out

    def search(self, value: object, workloads: tuple[str, ...]) -> dict[str, Dimension]:
        table = self.table(value, ("search",))
        self.keys(table, (*_SEARCH_OPTIONS, *METAPARAMETERS), ("search",))
        searched = {name for w in workloads for name in get_workload(w).searched}
        out: dict[str, Dimension] = {}
        for name, entry in table.items():
            if name in _SEARCH_OPTIONS:
                continue
            key = ("search", name)
            if name not in searched:
                self.fail(
                    key,
                    f"none of the workloads searches {name!r}",
                    f"remove [search.{name}] (searched: {', '.join(sorted(searched))})",
                )
            entry = self.table(entry, key)
            self.keys(entry, _DIMENSION_KEYS, key)
            default = DEFAULT_DIMENSIONS[name]
            low = self.number(entry["low"], (*key, "low")) if "low" in entry else default.low
            high = self.number(entry["high"], (*key, "high")) if "high" in entry else default.high
            scale = (
                self.choice(entry["scale"], (*key, "scale"), SCALES)
                if "scale" in entry
                else default.scale
            )
            integer = (
                self.boolean(entry["integer"], (*key, "integer"))
                if "integer" in entry
                else default.integer
            )
            if not low < high:
                self.fail(key, f"low ({low:g}) must be below high ({high:g})", "swap low and high")
            if scale == "log" and low <= 0:
                self.fail(
                    (*key, "low") if "low" in entry else key,
                    f"a log scale needs low > 0, got {low:g}",
                    'use a positive bound or scale = "linear"',
                )
            if scale == "reverse-log" and high >= 1:
                self.fail(
                    (*key, "high") if "high" in entry else key,
                    f"a reverse-log scale needs high < 1, got {high:g}",
                    "use a bound below 1, e.g. 0.9999",
                )
            out[name] = Dimension(name, low, high, scale, integer)
            self.search_box(out[name], entry, workloads,
                            self.search_options(table).get("integer_mapping", "round"))
        return out

    def search_box(self, dim: Dimension, entry: Mapping[str, Any], workloads: tuple[str, ...],
                   integer_mapping: str) -> None:
        """Every value of ``dim`` gives trials the trainer accepts. Each searched value lies
        between the dimension's two ends (every scale is monotonic, refinement stays inside
        the box), so both ends are tried, each with the default ranges' midpoints for the
        other metaparameters, through the code that builds a trial (:func:`trial_problem`)
        for every workload that searches it."""
        base = {name: d.from_unit(0.5) for name, d in DEFAULT_DIMENSIONS.items()}
        ends = sorted(dim.from_unit(u, integer_mapping) for u in (0.0, 1.0))
        for bound, value, given in (("low", ends[0], dim.low), ("high", ends[1], dim.high)):
            for workload in workloads:
                searched = get_workload(workload).searched
                if dim.name not in searched:
                    continue
                point = {m: base[m] for m in searched} | {dim.name: value}
                problem = trial_problem(workload, point)
                if problem is None:
                    continue
                shown = f"{bound} = {given:g}" + (f" ({value} as a whole number)"
                                                  if dim.integer and value != given else "")
                self.fail(("search", dim.name, bound) if bound in entry else
                          ("search", dim.name),
                          f"{shown} gives {workload} trials it cannot train ({problem})",
                          f"narrow [search.{dim.name}] to values the trainer accepts")

    def refine(self, value: object, engine: EngineOptions, trials: int) -> RefineOptions:
        table = self.table(value, ("refine",))
        self.keys(table, ("trials", "around", "margin"), ("refine",))
        if "trials" not in table:
            self.fail(("refine",), "missing required key trials",
                      "add e.g. trials = 16 (more trials per study, around its best)")
        count = self.integer(table["trials"], ("refine", "trials"), 1)
        if count >= REFINE_BASE:
            self.fail(("refine", "trials"), f"must be below {REFINE_BASE}, got {count}",
                      "use fewer refine trials")
        around = self.integer(table.get("around", DEFAULT_AROUND), ("refine", "around"), 1)
        if around > trials:
            self.fail(("refine", "around"), f"{around} is more than the {trials} trials of a "
                      "study's search", f"use around <= {trials}")
        if engine.stop_hopeless and around > engine.keep_complete:
            self.fail(("refine", "around"),
                      f"{around} needs keep_complete >= {around} in [engine] (the trials it "
                      "centres on must run to their result)",
                      f"set [engine] keep_complete = {around}, or around <= "
                      f"{engine.keep_complete}")
        margin = DEFAULT_MARGIN
        if "margin" in table:
            margin = self.number(table["margin"], ("refine", "margin"))
            if not 0 <= margin <= 0.5:
                self.fail(("refine", "margin"), f"{margin:g} is outside [0, 0.5]",
                          "it widens the box by this share of each searched range, e.g. 0.1")
        return RefineOptions(count, around, margin)

    def engine(self, value: object) -> EngineOptions:
        table = self.table(value, ("engine",))
        self.keys(table, _ENGINE_KEYS, ("engine",))
        options: dict[str, Any] = {}
        for key in ("early_exit", "stop_hopeless", "channels_last"):
            if key in table:
                options[key] = self.boolean(table[key], ("engine", key))
        if "order" in table:
            options["order"] = self.choice(table["order"], ("engine", "order"), ORDERS)
        if "backend" in table:
            options["backend"] = self.choice(table["backend"], ("engine", "backend"), BACKENDS)
        if "precision" in table:
            options["precision"] = self.choice(table["precision"], ("engine", "precision"),
                                               PRECISIONS)
            if options["precision"] == "tf32" and not str(
                    table.get("device", "cpu")).startswith("cuda"):
                self.fail(("engine", "precision"), 'precision "tf32" needs a CUDA device',
                          'set device = "cuda" in [engine], or use "fp32"')
        if "device" in table:
            device = self.string(table["device"], ("engine", "device"))
            if not DEVICE_PATTERN.fullmatch(device):
                self.fail(
                    ("engine", "device"),
                    f"unknown device {device!r}",
                    'use "cpu", "cuda" or "cuda:N"',
                )
            options["device"] = device
        for key in ("micro_batch", "eval_batch_size", "threads", "batched_trials", "interleave",
                    "keep_complete"):
            if key in table:
                options[key] = self.integer(table[key], ("engine", key), 1)
        for key in ("max_retries", "checkpoint_every"):
            if key in table:
                options[key] = self.integer(table[key], ("engine", key), 0)
        conflict = channels_last_conflict(options.get("channels_last", False),
                                          options.get("batched_trials"),
                                          options.get("device", "cpu"))
        if conflict:
            self.fail(("engine", "channels_last"), conflict, CHANNELS_LAST_FIX)
        return EngineOptions(**options)


def trial_problem(workload: str, point: Mapping[str, float | int]) -> str | None:
    """Why a trial of ``workload`` at ``point`` (its searched metaparameters) would be
    rejected, in the words of the code that rejects it (:class:`TrialConfig`, its learning
    rate schedule, the optimizer), or None when it can be trained."""
    try:
        values: dict[str, Any] = dict(point)
        config = TrialConfig(workload=workload, sparsity=0.0, batch_size=1, **values)
        config.schedule()
        check_optimizer(config.spec.optimizer, config.momentum)
    except ValueError as exc:
        return str(exc)
    return None


_SYNTAX_POSITION = re.compile(r"at line (\d+), column (\d+)")


def load_experiment(path: str | Path, *, plugins: Sequence[str] = ()) -> ExperimentSpec:
    """Read and validate an experiment TOML file, importing its plugins and ``plugins``.

    Every problem (syntax, unknown or missing keys, wrong types, values out of range)
    raises :class:`ExperimentFileError` with a one-line message naming the key; a plugin
    given in ``plugins`` that fails raises :class:`~sparsedp.plugins.PluginError`.
    """
    shown = str(path)
    resolved = resolve_against(Path.cwd(), path)  # a symlink loop: read error below
    try:
        text = resolved.read_text(encoding="utf-8")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ExperimentFileError(
            shown, None, f"cannot read the experiment file ({reason})", "check the path"
        ) from None
    except UnicodeDecodeError:
        raise ExperimentFileError(
            shown, None, "the file is not UTF-8 text", "save it as UTF-8"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _SYNTAX_POSITION.search(message)
        line = int(position[1]) if position else None
        raise ExperimentFileError(
            shown,
            "TOML syntax",
            message,
            "fix the syntax (strings need quotes; see https://toml.io)",
            line,
        ) from None
    return ExperimentLoader(resolved, shown, text, plugins).load(doc)
