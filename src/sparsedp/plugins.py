"""Plugins: user modules that register models, data sets, pruners and workloads.

A plugin is an importable module; importing it registers its parts (``register_model``,
``register_dataset``, ``register_pruner``, ``register_workload``). Plugins come from the
experiment file (``plugins = [...]``), from ``--plugin`` on the command line, and from the
``sparsedp.plugins`` entry-point group of installed packages. :class:`PluginSet` is what an
experiment needs in every process that runs its trials (worker processes, Ray actors):
:meth:`PluginSet.activate` imports the modules and registers the parts the experiment file
defines. See docs/plugins.md.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sparsedp.data.custom import DATASETS, DatasetSpec, register_dataset
from sparsedp.models import register_model
from sparsedp.origin import loading
from sparsedp.pruning import PruneData, Pruner, PruneSettings, register_pruner
from sparsedp.training.workloads import WORKLOADS, Workload, register_workload

__all__ = [  # what a plugin needs: ``from sparsedp.plugins import register_model, ...``
    "ENTRY_POINT_GROUP",
    "PluginError",
    "PluginSet",
    "PruneData",
    "PruneSettings",
    "Pruner",
    "Workload",
    "import_plugin",
    "load_entry_points",
    "register_dataset",
    "register_model",
    "register_pruner",
    "register_workload",
]

ENTRY_POINT_GROUP = "sparsedp.plugins"
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class PluginError(ValueError):
    """A plugin cannot be loaded or registers something wrong; the message is one line."""


@dataclass(frozen=True)
class PluginSet:
    """Everything an experiment adds to the registries, picklable for worker processes.

    ``modules`` are imported (after adding ``paths`` to ``sys.path``: the experiment file's
    folder); ``workloads`` and ``datasets`` are the parts the experiment file defines;
    ``entry_points`` loads the installed ``sparsedp.plugins`` entry points too.
    """

    modules: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    workloads: tuple[Workload, ...] = ()
    datasets: tuple[DatasetSpec, ...] = ()
    entry_points: bool = True

    def activate(self) -> None:
        """Import the plugins and register the file's parts in this process (idempotent)."""
        for path in self.paths:
            if path not in sys.path:
                sys.path.append(path)
        if self.entry_points:
            load_entry_points()
        for module in self.modules:
            import_plugin(module)
        for dataset in self.datasets:
            DATASETS[dataset.name] = dataset
        for workload in self.workloads:
            WORKLOADS[workload.name] = workload


def _where(exc: BaseException) -> str:
    """``file:line`` of the plugin code that raised (not sparsedp's or importlib's)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" at {Path(exc.filename).name}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(_PACKAGE_DIR) and "importlib" not in f.filename]
    if not frames:
        return ""
    return f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}"


def _first_line(exc: BaseException) -> str:
    text = (exc.msg if isinstance(exc, SyntaxError) else str(exc)).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _exit_text(exc: SystemExit) -> str:
    """``called sys.exit(7)`` (the code as Python shows it, shortened)."""
    code = repr(exc.code) if exc.code is not None else ""
    return f"called sys.exit({code[:60] + '…' if len(code) > 60 else code})"


def import_plugin(module: str) -> None:
    """Import plugin ``module``; any failure becomes a one-line :class:`PluginError`."""
    if not isinstance(module, str) or not module.strip():
        raise PluginError(f"plugin {module!r}: expected a module name such as 'my_pkg.parts'")
    if module in sys.modules:
        return
    with loading(f"plugin {module}"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                raise PluginError(
                    f"plugin {module!r}: no module of that name; install its package, put it "
                    "on PYTHONPATH or beside the experiment file, or fix the name"
                ) from None
            raise PluginError(f"plugin {module!r}: {_first_line(exc)}{_where(exc)}; install "
                              "what it imports") from None
        except SystemExit as exc:  # sys.exit() in the plugin would end sparsedp silently
            raise PluginError(f"plugin {module!r}: {_exit_text(exc)}{_where(exc)} while being "
                              "imported; a plugin must not exit (raise an error instead)"
                              ) from None
        except Exception as exc:  # whatever the plugin's code raised while importing
            raise PluginError(f"plugin {module!r}: {_first_line(exc)}{_where(exc)}") from None


_entry_points_loaded = False


def load_entry_points() -> list[str]:
    """Load every installed ``sparsedp.plugins`` entry point (once per process).

    An entry point names a module (imported) or a function of no arguments (called).
    """
    global _entry_points_loaded
    found = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    if _entry_points_loaded:
        return [ep.name for ep in found]
    _entry_points_loaded = True
    for ep in found:
        label = f"plugin {ep.value} (entry point {ep.name!r} of {ENTRY_POINT_GROUP})"
        with loading(label):
            try:
                loaded = ep.load()
                if callable(loaded):
                    loaded()
            except (Exception, SystemExit) as exc:
                _entry_points_loaded = False
                what = _exit_text(exc) if isinstance(exc, SystemExit) else _first_line(exc)
                raise PluginError(f"{label}: {what}{_where(exc)}; fix or uninstall "
                                  "that package") from None
    return [ep.name for ep in found]
