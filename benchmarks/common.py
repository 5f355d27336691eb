"""What every benchmark prints above its table: the machine, the versions and the command that made it."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import torch

__all__ = ["header", "seconds"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def header(packages: tuple[str, ...] = ("torch", "monai", "pytorch-ignite")) -> str:
    """Three Markdown lines: machine (CPU, cores, threads, GPU), versions of Python and ``packages``, command."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    machine = f"{_cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {gpu}"
    versions = ", ".join([f"Python {platform.python_version()}", *(f"{p} {_version(p)}" for p in packages)])
    command = "python " + shlex.join(sys.argv)
    return f"- machine: {machine}\n- versions: {versions}\n- command: `{command}`\n"


def seconds(run: Callable[[], object], repeats: int = 1, warmup: int = 1) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls after ``warmup`` untimed ones (CUDA synchronised)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
