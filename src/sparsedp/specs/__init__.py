"""What to run: the experiment file read into validated, frozen specs, and each study's key.

- :mod:`.study`: :class:`StudySpec`, one cell of the grid (everything that affects its results;
  its :attr:`~StudySpec.key` names it on disk);
- :mod:`.engine`: :class:`EngineOptions`, how the work is computed (never what);
- :mod:`.experiment`: :class:`ExperimentSpec`, the grid and its settings;
- :mod:`.loader`: :func:`load_experiment`, the TOML file → :class:`ExperimentSpec`, on top of
  :mod:`.toml_checks` (typed getters with one-line, located errors) and :mod:`.parts`
  (plugins, data sets and workloads defined in the file).
"""

from sparsedp.specs.engine import BACKENDS, ORDERS, EngineOptions
from sparsedp.specs.experiment import ExperimentSpec, StudyDefaults
from sparsedp.specs.loader import ExperimentLoader, load_experiment
from sparsedp.specs.study import SEED_STRIDE, StudySpec
from sparsedp.specs.toml_checks import ExperimentFileError
from sparsedp.specs.values import resolve_batch_sizes

__all__ = [
    "BACKENDS",
    "ORDERS",
    "SEED_STRIDE",
    "EngineOptions",
    "ExperimentFileError",
    "ExperimentLoader",
    "ExperimentSpec",
    "StudyDefaults",
    "StudySpec",
    "load_experiment",
    "resolve_batch_sizes",
]
