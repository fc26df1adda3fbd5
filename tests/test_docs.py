"""Documentation that must track the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from sparsedp.specs import EngineOptions

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_engine_key_is_documented_in_the_experiment_file_reference() -> None:
    text = (DOCS / "experiment-file.md").read_text()
    section = text.split("## `[engine]`", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == {f.name for f in dataclasses.fields(EngineOptions)}
