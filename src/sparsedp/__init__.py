"""sparsedp: data parallelism in training networks pruned at initialization.

The Python API (docs/python-api.md) is importable from here, e.g.
``sparsedp.Experiment.from_file("examples/quick.toml")``; it loads on first use, so importing
a submodule (``sparsedp.data``, …) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sparsedp.api import *  # noqa: F403


def __getattr__(name: str) -> Any:
    import sparsedp.api as api

    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'sparsedp' has no attribute {name!r}")


def __dir__() -> list[str]:
    import sparsedp.api as api

    return sorted([*globals(), *api.__all__])
