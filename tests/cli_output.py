"""Readers of the commands' printed tables (`status`, `plan`), so that tests check the values
a table shows rather than that some word appears in it."""

from __future__ import annotations

import re

STATUS_COLUMNS = ("workload", "sparsity", "batch", "done", "complete", "incomplete",
                  "infeasible", "stopped", "failed", "best steps", "best trial", "converged")


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in ``text`` (lines drawn with '│'), as cells."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in text.splitlines() if line.count("│") >= 2]


def status_rows(text: str) -> dict[tuple[float, int], dict[str, str]]:
    """`sparsedp status`'s table: (sparsity, batch size) → {column: cell}."""
    out = {}
    for cells in table_rows(text):
        row = dict(zip(STATUS_COLUMNS, cells, strict=False))
        out[(float(row["sparsity"]), int(row["batch"]))] = row
    return out


def plan_rows(text: str) -> dict[str, dict[str, str]]:
    """`sparsedp plan`'s table: study label (or ``SNIP saliencies``, ``total``) → {column:
    cell}. The label is left-aligned, every other column right-aligned under its header."""
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("study "))
    names = re.findall(r"est\. steps|step ms|check s|\S+", header)
    ends, position = [], 0
    for name in names:
        position = header.index(name, position) + len(name)
        ends.append(position)
    rows = {}
    for line in lines[lines.index(header) + 1:]:
        if not line.strip():
            break
        head = re.fullmatch(r"(.*?)\s+(\d+(?:\+\d+)?)?\s*", line[:ends[1]])
        assert head is not None, line
        cells = {"study": head[1], "trials": head[2] or ""}
        for i in range(2, len(names)):
            cells[names[i]] = line[ends[i - 1] + 1:ends[i]].strip()
        rows[head[1]] = cells
    return rows


def seconds(cell: str) -> float:
    """A duration as `plan` prints it (``42 s``, ``1.5 min``, ``3.4 h``, ``2.1 d``)."""
    value, unit = cell.split()
    return float(value) * {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit]
