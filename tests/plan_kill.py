"""Kill a plan's command with SIGKILL while one of its runs is under way, as a crash or an out-of-memory kill would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from monai_skinattr.runner import RECORD


def run_command(args: Sequence[str], cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """``python <args>`` to the end; fails the test with its output when it fails."""
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def kill_during(
    args: Sequence[str],
    workdir: str | Path | None,
    run_name: str | None,
    ready: Callable[[], bool] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 600,
) -> None:
    """
    Start ``python <args>`` and SIGKILL it (the whole process group) once ``<workdir>/runs.json`` records
    ``run_name`` as started and not finished (``None``: a single bundle run, no record), and ``ready()`` is true (e.g.
    its first checkpoint exists). Fails the test if the command ends first or ``timeout`` passes.
    """
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
        start_new_session=True,
    )
    record = None if run_name is None else Path(workdir) / RECORD
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the command ended before '{run_name}' could be killed: {proc.stderr.read()}")
            if (record is None or _started(record, run_name)) and (ready is None or ready()):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.05)
        raise AssertionError(f"'{run_name}' did not start within {timeout} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _started(record: Path, run_name: str) -> bool:
    try:
        entry = json.loads(record.read_text())["runs"].get(run_name)
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return entry is not None and not entry["finished"]


def _env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}
