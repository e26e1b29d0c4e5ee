"""Learning-curve plots of one or several run folders."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["read_metrics", "plot_runs"]


def read_metrics(run_dir):
    """The rows of ``RUN_DIR/metrics.csv`` as a dict of float arrays (missing values → NaN)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise ValueError(f"no metrics.csv in {run_dir}; pass a run folder written by "
                         "'python -m rl train'")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    columns = {}
    for key in (rows[0].keys() if rows else []):
        vals = []
        for r in rows:
            try:
                vals.append(float(r[key]))
            except (TypeError, ValueError):
                vals.append(math.nan)
        columns[key] = np.asarray(vals)
    return columns


def plot_runs(run_dirs, output, *, histories=None, metric="episode/return_mean", labels=None):
    """Plot ``metric`` against environment steps for each run on one figure.

    Parameters
    ----------
    run_dirs : list of path
        Run folders (their ``metrics.csv`` is read unless ``histories`` is given).
    output : path
        The PNG to write (atomically).
    histories : list of list of dict, optional
        In-memory histories instead of reading ``metrics.csv``.
    metric : str
        The column to plot (default: mean episode return of the iteration's batch).
    labels : list of str, optional
        Legend labels (default: the folder names).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, run_dir in enumerate(run_dirs):
        if histories is not None:
            rows = histories[i]
            steps = np.array([r.get("steps", math.nan) for r in rows], dtype=float)
            values = np.array([r.get(metric, math.nan) for r in rows], dtype=float)
        else:
            cols = read_metrics(run_dir)
            if metric not in cols:
                raise ValueError(f"{run_dir}/metrics.csv has no column {metric!r}; columns: "
                                 f"{sorted(cols)}")
            steps, values = cols["steps"], cols[metric]
        label = labels[i] if labels else Path(run_dir).name
        ax.plot(steps, values, label=label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if len(run_dirs) > 1 or labels:
        ax.legend(fontsize=8)
    fig.tight_layout()
    output = Path(output)
    tmp = output.with_name(f".{output.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, output)
    return output
