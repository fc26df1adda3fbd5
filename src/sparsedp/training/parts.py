"""What identifies the plugin-defined parts of a study, for its key.

Built-in parts are named by their names alone; a part defined by a plugin or an experiment
file also by its ``version`` (and a workload by its whole definition), so changing one makes
new studies instead of mixing results. Only built-in parts: nothing, so keys stay as they were.
"""

from __future__ import annotations

import json

from sparsedp.data.custom import dataset_spec
from sparsedp.models import BUILTIN_MODELS, MODELS
from sparsedp.pruning import get_pruner
from sparsedp.training.workloads import BUILTIN_WORKLOADS, get_workload


def pruner_version(method: str) -> str:
    """The registered pruner's ``version`` ("" for built-ins and unknown names)."""
    try:
        return get_pruner(method).version
    except ValueError:
        return ""


def study_parts(workload: str, method: str) -> tuple[tuple[str, str], ...]:
    """``(part, identity)`` pairs of the non built-in parts of a study, in a fixed order."""
    out: list[tuple[str, str]] = []
    spec = get_workload(workload)
    if workload not in BUILTIN_WORKLOADS:
        out.append(("workload", json.dumps(spec.definition(), sort_keys=True,
                                           separators=(",", ":"))))
        if spec.model in MODELS and spec.model not in BUILTIN_MODELS:
            out.append(("model", f"{spec.model} {MODELS[spec.model].version}"))
        data = dataset_spec(spec.dataset)
        if data is not None:
            out.append(("dataset", f"{spec.dataset} {data.version}"))
    version = pruner_version(method)
    if version:
        out.append(("pruner", f"{method} {version}"))
    return tuple(out)
