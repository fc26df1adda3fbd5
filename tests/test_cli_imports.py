"""The CLI's entry module stays light: a worker started by ``sparsedp run`` imports it again."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "numpy", "pandas", "scipy", "matplotlib", "jinja2", "rich", "ray",
         "sparsedp.api", "sparsedp.cli.common")


def _imported_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_importing_the_entry_module_loads_no_heavy_package():
    modules = set(_imported_after("import sparsedp.cli.main"))
    assert not [name for name in HEAVY if name in modules]


def test_building_the_parser_loads_the_commands():
    """The check above can fail: the commands' imports are there once the parser is built."""
    modules = set(_imported_after("import sparsedp.cli.main as m\nm.build_parser()"))
    assert {"torch", "rich", "sparsedp.api", "sparsedp.cli.common"} <= modules


def test_the_command_still_answers_and_fails_cleanly(tmp_path):
    version = subprocess.run([sys.executable, "-m", "sparsedp.cli.main", "--version"],
                             capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("sparsedp ")
    missing = tmp_path / "missing.toml"
    bad = subprocess.run([sys.executable, "-m", "sparsedp.cli.main", "run", str(missing)],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert "cannot read the experiment file" in bad.stderr and "Traceback" not in bad.stderr
