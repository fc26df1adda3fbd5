"""Config helpers: canonical dictionaries and content hashes of frozen dataclasses.

A config's hash covers only the fields that differ from their defaults, so adding a new
option (with a default) later never changes the hash, and so never renames old results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def _canonical_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return canonical_dict(value)
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in sorted(value.items())}
    return value


def canonical_dict(config: Any) -> dict[str, Any]:
    """Fields of a dataclass that differ from their defaults, recursively, sorted by name."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
            continue
        canonical = _canonical_value(value)
        if canonical == {} and dataclasses.is_dataclass(value):
            continue
        out[f.name] = canonical
    return dict(sorted(out.items()))


def config_hash(config: Any, length: int = 16) -> str:
    """Hex digest of the canonical JSON of ``config`` (defaults omitted)."""
    text = json.dumps(canonical_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def to_dict(config: Any) -> dict[str, Any]:
    """All fields, defaults included (for display and storage)."""
    return dataclasses.asdict(config)
