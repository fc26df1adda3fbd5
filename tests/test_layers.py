"""The package layout follows the data flow: lower layers never import higher ones."""

import re
from pathlib import Path

import sparsedp

LAYERS = ["data", "models", "pruning", "training", "search", "experiment", "store",
          "analysis", "plots", "report", "api", "cli"]
RANK = {name: i for i, name in enumerate(LAYERS)}
RANK["report"] = RANK["plots"]  # plots and report are siblings above analysis
RANK["report"] += 0.5


def test_no_layer_imports_a_higher_one():
    root = Path(sparsedp.__file__).parent
    violations = []
    for path in root.rglob("*.py"):
        layer = path.relative_to(root).parts[0]
        if layer not in RANK:
            continue
        for other in re.findall(r"(?:from|import) sparsedp\.(\w+)", path.read_text()):
            if other in RANK and RANK[other] > RANK[layer]:
                violations.append(f"{path.relative_to(root)} imports sparsedp.{other}")
    assert violations == []
    assert {p.name for p in root.iterdir() if p.is_dir() and p.name in RANK} == set(LAYERS)
