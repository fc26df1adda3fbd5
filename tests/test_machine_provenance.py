"""Which machine computed a trial, as far as it decides FP32 rounding: the CPU's model
numbers and the instruction set PyTorch's kernels use, stored with every trial (the same
study gave 848 steps on one session's machine and 832 on another's: README)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from sparsedp.execution.provenance import (
    cpu_capability,
    cpu_model,
    machine_description,
    provenance,
)

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Processor
stepping\t: 2

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Another CPU
stepping\t: 8
"""


def test_cpu_model_is_the_first_processors_name_and_numbers(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    assert cpu_model(info) == "Intel(R) Xeon(R) Processor, family 6 model 207 stepping 2"


def test_cpu_model_without_numbers_or_file(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.write_text("model name\t: Some CPU\n")
    assert cpu_model(bare) == "Some CPU"
    assert cpu_model(tmp_path / "absent") == (platform.processor() or platform.machine())


def test_every_trial_records_the_cpu_and_instruction_set() -> None:
    facts = provenance("cpu")
    assert facts["cpu"] == cpu_model()
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert cpu_capability() in {"DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"} | \
        {torch.backends.cpu.get_cpu_capability()}
    assert machine_description("cpu") == f"{cpu_model()} ({cpu_capability()})"
