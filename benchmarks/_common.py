"""Shared plumbing of the benchmark scripts: timing, machine info, atomic result files.

Results go to ``benchmarks/results/``; every file is written to a temporary name in the
same directory and moved into place with :func:`os.replace`, so a reader never sees a
half-written file and an interrupted run leaves the previous results intact.

Importing this module limits the BLAS thread pools to one thread (with ``threadpoolctl``)
unless ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set. The
solvers compared here spend their time in level-1 BLAS (``dot``) and sparse products; on a
small shared machine a multi-threaded ``ddot`` on 10^5 entries spends more time waking
threads than computing (measured: 5-15 ms instead of 0.7 ms per CG iteration), which swamps
the comparison with noise. The thread counts in effect are recorded with the results.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if not any(var in os.environ for var in BLAS_THREAD_VARIABLES):
    _blas_limits = threadpool_limits(limits=1, user_api="blas")

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"

if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    """``obj`` as indented JSON (numpy scalars and arrays converted), written atomically."""
    write_atomic(path, json.dumps(obj, indent=2, default=_to_builtin) + "\n")


def save_results(out_dir: Path, name: str, obj, md: str, complete: bool) -> Path:
    """Write ``name.json`` and ``name.md`` (atomically) for a finished run; a run still in
    progress, stopped or with failed cases writes ``name.partial.json`` / ``.md`` instead,
    so the last finished results stay as they were. Returns the Markdown file's path."""
    out_dir = Path(out_dir)
    stem = name if complete else f"{name}.partial"
    write_json(out_dir / f"{stem}.json", obj)
    write_atomic(out_dir / f"{stem}.md", md)
    if complete:
        for suffix in (".json", ".md"):
            (out_dir / f"{name}.partial{suffix}").unlink(missing_ok=True)
    return out_dir / f"{stem}.md"


def write_csv(path: Path, rows: Sequence[dict], fieldnames: Sequence[str] | None = None) -> None:
    """``rows`` (dicts) as CSV with a header line, written atomically."""
    fieldnames = list(fieldnames or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def timed(fn: Callable, *args, **kwargs):
    """``(seconds, fn(*args, **kwargs))`` with :func:`time.perf_counter`."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def interleaved_medians(arms: dict[str, Callable], repeats: int) -> dict[str, dict]:
    """Time every arm ``repeats`` times, interleaved in ABBA order; medians and all samples.

    Alternating the order of the arms from round to round spreads load changes on a
    shared machine over all arms alike. Wall time is :func:`time.perf_counter`; CPU time
    (:func:`time.process_time`, all threads of this process) is recorded beside it, as it
    is less disturbed by other processes competing for the cores. Returns ``{name:
    {"median_s", "min_s", "times_s", "cpu_median_s", "cpu_times_s", "result"}}`` with the
    result of the arm's last call.
    """
    names = list(arms)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    results = {}
    for round_ in range(repeats):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            cpu_start = time.process_time()
            seconds, results[name] = timed(arms[name])
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(seconds)
    return {
        name: {
            "median_s": statistics.median(wall[name]),
            "min_s": min(wall[name]),
            "times_s": wall[name],
            "cpu_median_s": statistics.median(cpu[name]),
            "cpu_times_s": cpu[name],
            "result": results[name],
        }
        for name in names
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string elsewhere):
    runs reproduce bit for bit only on the same CPU and libraries."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict:
    """Versions of the libraries a run's numbers depend on (those installed)."""
    from importlib import metadata

    out = {}
    for name in ("numpy", "scipy", "autograd", "gymnasium", "mujoco", "torch",
                 "stable-baselines3", "sb3-contrib", "ray"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:  # the BLAS numpy calls (OpenBLAS, MKL ...) and its version
        from threadpoolctl import threadpool_info

        out["blas"] = sorted({f"{i.get('internal_api')} {i.get('version')}"
                              for i in threadpool_info() if i.get("user_api") == "blas"})
    except Exception:  # noqa: BLE001 - optional detail
        pass
    return out


def machine_info() -> dict:
    """Python and library versions, platform, CPU model and count, load, for the result
    files."""
    import scipy

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "libraries": library_versions(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "blas_threads": blas_threads(),
        "load_average": (
            [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
        ),
        "code_version": code_version(),
    }


def code_version() -> str:
    """The commit the benchmark runs from (``git describe --always``), with ``-dirty`` if
    files outside ``benchmarks/results`` differ from it (the results a run writes do not
    count), or ``"unknown"`` outside a git checkout."""
    import subprocess

    here = Path(__file__).resolve().parent

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=here,
                              timeout=10)

    try:
        described = git("describe", "--always")
        if described.returncode != 0 or not described.stdout.strip():
            return "unknown"
        changed = git("status", "--porcelain", "--", ":/", ":(exclude,top)benchmarks/results")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = changed.returncode != 0 or bool(changed.stdout.strip())
    return described.stdout.strip() + ("-dirty" if dirty else "")


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1, or a clear error naming the value."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def blas_threads() -> int | None:
    """The largest thread count among the loaded BLAS libraries (None if none is loaded)."""
    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


def timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command_line(script: str, argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", f"benchmarks/{script}", *args])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence], align: str | None = None):
    """A GitHub-flavoured Markdown table; ``align`` is one of ``l``/``r`` per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
