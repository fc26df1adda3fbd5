"""The parts an experiment file adds: plugins, ``[datasets.NAME]``, ``[workloads.NAME]``.

A mixin of the experiment-file loader (:class:`sparsedp.specs.loader.ExperimentLoader`), which
provides the typed getters (``string``, ``table``, …), ``fail`` (one line naming file, line,
key and fix) and the helpers ``describe``, ``suggest`` and ``resolve``. Parts the file defines
are registered in this process and returned, so that the experiment's
:class:`~sparsedp.plugins.PluginSet` registers them in every worker process too.
"""

from __future__ import annotations

import sys
from typing import Any

from sparsedp.data.custom import DATASETS, LAYOUTS, DatasetSpec, ImageFolder, NpzFile
from sparsedp.data.sources import DATASET_NAMES
from sparsedp.models import MODELS
from sparsedp.origin import PART_NAME
from sparsedp.plugins import PluginError, import_plugin, load_entry_points
from sparsedp.pruning.prune import PruneSettings
from sparsedp.training.optimizers import OPTIMIZERS
from sparsedp.training.schedules import SCHEDULES
from sparsedp.training.workloads import (
    BUILTIN_WORKLOADS,
    METAPARAMETERS,
    WORKLOADS,
    Workload,
    get_workload,
    required_metaparameters,
)

WORKLOAD_KEYS = ("dataset", "model", "optimizer", "schedule", "searched", "goal_error",
                 "max_steps", "eval_every", "model_options", "description", "version",
                 "extends", "pruning")
WORKLOAD_REQUIRED = {"dataset": 'dataset = "mnist"', "model": 'model = "simple-cnn"',
                     "optimizer": 'optimizer = "momentum"', "goal_error": "goal_error = 0.02",
                     "max_steps": "max_steps = 20000"}
DATASET_KEYS = ("kind", "path", "version", "description", "classes", "layout")
DATASET_KINDS = {"npz": NpzFile, "image-folder": ImageFolder}
DEFAULT_EVAL_EVERY = 16  # as the paper's workloads


class PartsSections:
    """``plugins``, ``datasets`` and ``workloads`` of an experiment file."""

    # provided by the loader
    path: Any
    shown: str
    extra_plugins: tuple[str, ...]
    fail: Any
    table: Any
    keys: Any
    string: Any
    choice: Any
    integer: Any
    number: Any
    nonempty_list: Any
    describe: Any
    suggest: Any
    resolve: Any

    def plugins(self, value: object) -> tuple[str, ...]:
        """Import the installed, file and ``--plugin`` plugins; the modules to import."""
        if not isinstance(value, list):
            self.fail(("plugins",), f"expected a list, got {self.describe(value)}",
                      'write e.g. plugins = ["my_package.sparsedp_parts"]')
        folder = str(self.path.parent)
        if folder not in sys.path:
            sys.path.append(folder)  # a plugin module may sit beside the experiment file
        load_entry_points()
        modules: list[str] = []
        for i, item in enumerate(value):
            text = self.string(item, ("plugins", i))
            try:
                import_plugin(text)
            except PluginError as error:
                self.fail(("plugins", i), str(error))
            modules.append(text)
        for text in self.extra_plugins:  # --plugin: errors name the option, not the file
            import_plugin(text)
            modules.append(text)
        return tuple(dict.fromkeys(modules))

    def datasets(self, value: object) -> tuple[DatasetSpec, ...]:
        """The ``[datasets.NAME]`` tables: code-free data sets (an .npz file, an image folder)."""
        table = self.table(value, ("datasets",))
        out: list[DatasetSpec] = []
        for name, entry in table.items():
            key = ("datasets", name)
            if not PART_NAME.fullmatch(name):
                self.fail(key, f"{name!r} is not a valid name", "use letters, digits, . _ -")
            if name in DATASET_NAMES or (name in DATASETS and
                                         not DATASETS[name].origin.startswith("experiment")):
                owner = "built in" if name in DATASET_NAMES else DATASETS[name].origin
                self.fail(key, f"data set {name!r} is already defined ({owner})",
                          "give yours another name")
            entry = self.table(entry, key)
            self.keys(entry, DATASET_KEYS, key)
            for required in ("kind", "path"):
                if required not in entry:
                    self.fail(key, f"missing required key {required!r}",
                              'add e.g. kind = "npz" and path = "data/mnist.npz"')
            kind = self.choice(entry["kind"], (*key, "kind"), tuple(DATASET_KINDS))
            path = self.string(entry["path"], (*key, "path"))
            if not path.strip():
                self.fail((*key, "path"), "empty path", "give the file or folder")
            resolved = self.resolve(path)  # read in preflight, so
            # that status, export and report work where the data are not
            classes = None
            if "classes" in entry:
                items = self.nonempty_list(entry["classes"], (*key, "classes"), '["cat", "dog"]')
                classes = tuple(self.string(c, (*key, "classes", i)) for i, c in enumerate(items))
            layout = (self.choice(entry["layout"], (*key, "layout"), LAYOUTS)
                      if "layout" in entry else "auto")
            spec = DatasetSpec(
                name, DATASET_KINDS[kind](str(resolved)),
                self.string(entry.get("version", ""), (*key, "version")),
                self.string(entry.get("description", ""), (*key, "description")),
                classes, layout, f"experiment file {self.shown}",
            )
            DATASETS[name] = spec
            out.append(spec)
        return tuple(out)

    def workloads(self, value: object) -> tuple[tuple[str, ...], tuple[Workload, ...]]:
        """Names of the workloads to run, and those the file defines (``[workloads.NAME]``)."""
        if isinstance(value, dict):
            return self.defined_workloads(value)
        items = self.nonempty_list(value, ("workloads",), '["mnist-simplecnn-momentum"]')
        known = sorted(WORKLOADS)
        for i, item in enumerate(items):
            text = self.string(item, ("workloads", i))
            if text not in WORKLOADS or WORKLOADS[text].origin.startswith("experiment"):
                self.fail(
                    ("workloads", i),
                    f"unknown workload {text!r}",
                    self.suggest(text, known, "known workloads"),
                )
            if items.index(item) != i:
                self.fail(("workloads", i), f"duplicate workload {text!r}", "list each once")
            self.parts_known(get_workload(text), ("workloads", i))
        return tuple(items), ()

    def defined_workloads(self, table: dict[str, Any]
                          ) -> tuple[tuple[str, ...], tuple[Workload, ...]]:
        if not table:
            self.fail(("workloads",), "no workload defined",
                      'add a [workloads.NAME] table, or list names: workloads = ["..."]')
        defined: list[Workload] = []
        for name, entry in table.items():
            key = ("workloads", name)
            entry = self.table(entry, key)
            registered = WORKLOADS.get(name)
            from_file = registered is not None and registered.origin.startswith("experiment")
            if not entry and registered is not None and not from_file:
                self.parts_known(registered, key)  # an empty table runs a registered workload
                continue
            if registered is not None and not from_file:
                owner = "built in" if name in BUILTIN_WORKLOADS else registered.origin
                self.fail(key, f"workload {name!r} is already defined ({owner})",
                          f"leave [workloads.{name}] empty to run it, or give yours another "
                          "name")
            if "extends" in entry:
                entry = self.extended(name, entry, key)
            workload = self.workload(name, entry, key)
            self.parts_known(workload, key)
            WORKLOADS[name] = workload
            defined.append(workload)
        return tuple(table), tuple(defined)

    def extended(self, name: str, entry: dict[str, Any], key: tuple[str, ...]
                 ) -> dict[str, Any]:
        """``entry`` over the definition of the workload it ``extends`` (built in, from a
        plugin, or defined earlier in this file); its pruning too, unless ``entry`` has one."""
        base_name = self.string(entry["extends"], (*key, "extends"))
        base = WORKLOADS.get(base_name)
        if base is None or base_name == name:
            known = sorted(w for w in WORKLOADS if w != name)
            self.fail((*key, "extends"), f"unknown workload {base_name!r}",
                      self.suggest(base_name, known, "extend a registered workload or one "
                                   "defined above this table; known"))
        merged: dict[str, Any] = {**base.definition(), "description": base.description}
        merged["version"] = ""  # a derived workload is identified by its whole definition
        if base.pruning is not None:
            merged["pruning"] = base.pruning
        merged.update({k: v for k, v in entry.items() if k != "extends"})
        return merged

    def workload(self, name: str, entry: dict[str, Any], key: tuple[str, ...]) -> Workload:
        if not PART_NAME.fullmatch(name):
            self.fail(key, f"{name!r} is not a valid name", "use letters, digits, . _ -")
        self.keys(entry, WORKLOAD_KEYS, key)
        for required, example in WORKLOAD_REQUIRED.items():
            if required not in entry:
                self.fail(key, f"missing required key {required!r}", f"add e.g. {example}")
        optimizer = self.choice(entry["optimizer"], (*key, "optimizer"), OPTIMIZERS)
        schedule = (self.choice(entry["schedule"], (*key, "schedule"), SCHEDULES)
                    if "schedule" in entry else "constant")
        needed = required_metaparameters(optimizer, schedule)
        searched = needed
        if "searched" in entry:
            items = self.nonempty_list(entry["searched"], (*key, "searched"), '["lr"]')
            searched = tuple(self.choice(m, (*key, "searched", i), METAPARAMETERS)
                             for i, m in enumerate(items))
            missing = [m for m in needed if m not in searched]
            if missing:
                self.fail((*key, "searched"), f"{optimizer} with a {schedule} schedule needs "
                          f"{missing[0]!r} searched", f"write searched = {list(needed)}")
        goal = self.number(entry["goal_error"], (*key, "goal_error"))
        if not 0 < goal < 1:
            self.fail((*key, "goal_error"), f"{goal:g} is outside (0, 1)",
                      "it is a validation error rate, e.g. 0.02")
        options = self.table(entry.get("model_options", {}), (*key, "model_options"))
        for option, setting in options.items():
            if not isinstance(setting, (int, float, str, bool)):
                self.fail((*key, "model_options", option),
                          f"expected a number, string or boolean, got {self.describe(setting)}",
                          "model options are passed to the model's factory as keywords")
        try:
            return Workload(
                name=name,
                dataset=self.string(entry["dataset"], (*key, "dataset")),
                model=self.string(entry["model"], (*key, "model")),
                optimizer=optimizer, schedule=schedule, searched=tuple(searched),
                goal_error=goal,
                eval_every=self.integer(entry.get("eval_every", DEFAULT_EVAL_EVERY),
                                        (*key, "eval_every"), 1),
                max_steps=self.integer(entry["max_steps"], (*key, "max_steps"), 1),
                description=self.string(entry.get("description", ""), (*key, "description")),
                model_options=dict(options),
                version=self.string(entry.get("version", ""), (*key, "version")),
                origin=f"experiment file {self.shown}",
                pruning=self.workload_pruning(entry.get("pruning"), (*key, "pruning")),
            )
        except ValueError as error:
            self.fail(key, str(error))

    def workload_pruning(self, value: object, key: tuple[str, ...]) -> PruneSettings | None:
        """The workload's own ``[workloads.NAME.pruning]`` (``None``: the experiment's)."""
        if value is None or isinstance(value, PruneSettings):
            return value
        return self.pruning(value, key)

    def parts_known(self, workload: Workload, key: tuple[str | int, ...]) -> None:
        """The workload's data set and model are registered (built in or by a plugin)."""
        own = workload.origin.startswith("experiment")
        owner = "" if own else f" ({workload.origin})"
        if workload.dataset not in DATASET_NAMES and workload.dataset not in DATASETS:
            known = sorted({*DATASET_NAMES, *DATASETS})
            self.fail((*key, "dataset") if own else key,
                      f"workload {workload.name!r}{owner} uses the unknown data set "
                      f"{workload.dataset!r}", self.suggest(workload.dataset, known, "known"))
        if workload.model not in MODELS:
            self.fail((*key, "model") if own else key,
                      f"workload {workload.name!r}{owner} uses the unknown model "
                      f"{workload.model!r}", self.suggest(workload.model, sorted(MODELS), "known"))
