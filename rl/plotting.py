"""Learning-curve plots of one or several run folders.

Runs whose settings differ only in their seed are one *configuration*: :func:`plot_runs`
draws its mean over the seeds as a line and the range between the lowest and the highest
seed as a band, with one legend entry per configuration, named by the settings that tell
the configurations apart. The title names the algorithm(s), environment(s) and seeds; the
axes are labelled in words. Each requested metric gets a panel of its own.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from rl.algorithms import RENAMED_METRICS
from rl.checkpoint import committed_rows

__all__ = ["read_metrics", "plot_runs", "group_runs", "seed_band", "metric_label", "FORMATS"]

#: The figure formats :func:`plot_runs` writes, chosen by the output's extension.
FORMATS = (".png", ".pdf", ".svg")

_LABELS = {
    "episode/return_mean": "train return (stochastic)",
    "episode/return_std": "std of train return",
    "episode/count": "episodes finished per iteration",
    "policy/entropy": "policy entropy (nats)",
    "value/explained_variance": "explained variance of the value function",
    "value/loss": "value-function loss",
    "trpo/kl_max_state": "largest KL over the batch's states",
    "trpo/line_search_steps": "line-search trials",
    "trpo/step_fraction": "accepted step fraction",
    "cg/nit": "CG iterations",
    "cg/residual": "CG residual norm",
    "ppo/clip_fraction": "clipped fraction of samples",
    "steps": "environment steps",
    "iteration": "iteration",
}
_SUFFIXES = {"kl": "mean KL of the step", "surrogate_before": "surrogate before the step",
             "surrogate_after": "surrogate after the step",
             "expected_improvement": "expected improvement (linear model)",
             "actual_improvement": "actual improvement of the surrogate",
             "grad_norm": "gradient norm"}


def metric_label(key: str) -> str:
    """An axis label in words for a metrics column (``"trpo/kl"`` → ``"TRPO: mean KL ..."``).

    >>> metric_label("episode/return_mean")
    'train return (stochastic)'
    >>> metric_label("ppo/kl")
    'PPO: mean KL of the step'
    >>> metric_label("time/update_s")
    'update time (s)'
    """
    key = RENAMED_METRICS.get(key, key)
    if key in _LABELS:
        return _LABELS[key]
    prefix, _, name = key.rpartition("/")
    if prefix == "time" and name.endswith("_s"):
        return f"{name[:-2].replace('_', ' ')} time (s)"
    words = _SUFFIXES.get(name, name.replace("_", " "))
    return f"{prefix.upper() if prefix in ('trpo', 'npg', 'ppo', 'vpg') else prefix}: {words}" \
        if prefix else words


def read_metrics(run_dir):
    """The rows of ``RUN_DIR/metrics.csv`` as a dict of float arrays (missing values → NaN).

    Columns of earlier versions are returned under their current names
    (:data:`rl.algorithms.RENAMED_METRICS`: ``trpo/max_kl`` is read as
    ``trpo/kl_max_state``; a run resumed across the rename has its rows of both kinds in
    one column). A file with a header and no rows (a run before its first iteration) gives
    empty arrays. Where the run folder's checkpoint manifest commits fewer rows than the file
    holds (a process killed between writing ``metrics.csv`` and committing its checkpoint,
    see :mod:`rl.checkpoint`), only the committed rows are read.
    """
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise ValueError(f"no metrics.csv in {run_dir}; pass a run folder written by "
                         "'python -m rl train'")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    committed = committed_rows(run_dir)
    if committed is not None:
        rows = rows[:committed]
    columns = {}
    for key in header:
        vals = []
        for r in rows:
            try:
                vals.append(float(r[key]))
            except (TypeError, ValueError):
                vals.append(math.nan)
        columns[key] = np.asarray(vals, dtype=float)
    for old_key, new_key in RENAMED_METRICS.items():
        if old_key in columns:  # a run of an earlier version, perhaps resumed by this one
            old_values = columns.pop(old_key)
            new_values = columns.get(new_key, np.full_like(old_values, math.nan))
            columns[new_key] = np.where(np.isnan(new_values), old_values, new_values)
    return columns


def _read_config(run_dir) -> dict:
    """``config.json`` of a run folder, or ``{}`` when it has none (or an unreadable one)."""
    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _flat(config: dict) -> dict:
    """``{"train.seed": 0, "algo.max_kl": 0.01, ...}`` from a ``config.json`` dict."""
    out = {}
    for scope, values in config.items():
        if isinstance(values, dict):
            out.update({f"{scope}.{k}": json.dumps(v) for k, v in values.items()})
    return out


def _runs_text(values) -> str:
    values = sorted(set(values))
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    return ", ".join(map(str, values))


def _title(configs) -> str:
    trains = [c.get("train", {}) for c in configs]
    algos = list(dict.fromkeys(str(t.get("algo", "?")).upper() for t in trains))
    envs = list(dict.fromkeys(str(t.get("env", "?")) for t in trains))
    seeds = [t["seed"] for t in trains if isinstance(t.get("seed"), int)]
    title = f"{' vs '.join(algos)} on {', '.join(envs)}"
    if seeds:
        title += f", seed{'s' if len(set(seeds)) > 1 else ''} {_runs_text(seeds)}"
    return title


def _group_indices(run_dirs, configs, labels):
    """Runs grouped by configuration (all settings but the seed and the step budget), or
    by label when labels are given; returns ``[(label, [run indices])]`` in first-seen
    order."""
    if labels is not None:
        keys = list(labels)
    else:
        ignore = {"train.seed", "train.steps"}
        keys = [json.dumps({k: v for k, v in _flat(c).items() if k not in ignore},
                           sort_keys=True) if c else f"run:{d}"
                for d, c in zip(run_dirs, configs, strict=True)]
    order = list(dict.fromkeys(keys))
    members = {k: [i for i, key in enumerate(keys) if key == k] for k in order}
    if labels is not None:
        return [(k, members[k]) for k in order]
    # name each configuration by the algorithm, the environment (where they differ) and
    # the settings all configurations have but set differently
    flats = [_flat(configs[members[k][0]]) for k in order]
    shared = set.intersection(*(set(f) for f in flats)) if all(flats) else set()
    differing = sorted(n for n in shared - {"train.seed", "train.steps"}
                       if len({f[n] for f in flats}) > 1)
    out = []
    for k, f in zip(order, flats, strict=True):
        if not f:
            out.append((Path(run_dirs[members[k][0]]).name, members[k]))
            continue
        parts = [str(json.loads(f["train.algo"])).upper()]
        parts += [json.loads(f[n]) for n in differing if n == "train.env"]
        parts += [f"{n.split('.', 1)[1]}={json.loads(f[n])}" for n in differing
                  if n not in ("train.algo", "train.env")]
        out.append((", ".join(map(str, parts)), members[k]))
    return out


def _curve(steps, values):
    """The finite points of one run's curve, in step order."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(steps) & np.isfinite(values)
    order = np.argsort(steps[keep], kind="stable")
    return steps[keep][order], values[keep][order]


def seed_band(curves):
    """Mean, min and max over the runs of a group.

    Parameters
    ----------
    curves : list of (steps, values)
        One curve per run, steps increasing.

    Returns
    -------
    grid, mean, low, high : ndarray
        The union of the runs' step points within the range every run covers, and the
        mean, minimum and maximum over the runs there (each run linearly interpolated
        between its own points).

    Examples
    --------
    >>> grid, mean, low, high = seed_band([([0, 2], [0.0, 2.0]), ([1, 3], [5.0, 5.0])])
    >>> grid.tolist(), mean.tolist(), low.tolist(), high.tolist()
    ([1.0, 2.0], [3.0, 3.5], [1.0, 2.0], [5.0, 5.0])
    """
    curves = [(np.asarray(s, dtype=float), np.asarray(v, dtype=float)) for s, v in curves]
    lo = max(s[0] for s, _ in curves)
    hi = min(s[-1] for s, _ in curves)
    grid = np.unique(np.concatenate([s[(s >= lo) & (s <= hi)] for s, _ in curves]))
    ys = np.stack([np.interp(grid, s, v) for s, v in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def group_runs(run_dirs, labels=None):
    """Run folders grouped as :func:`plot_runs` draws them: ``[(label, [run_dir, ...])]``.

    Runs whose ``config.json`` agree in everything but the seed and the step budget are one
    group; with ``labels`` (one per run), runs with the same label are. A group is named by
    its algorithm, and by the environment and the settings that differ between the groups.

    Examples
    --------
    >>> group_runs(["runs/a", "runs/b"], labels=["TRPO", "TRPO"])
    [('TRPO', ['runs/a', 'runs/b'])]
    """
    configs = [_read_config(d) for d in run_dirs]
    return [(label, [run_dirs[i] for i in members])
            for label, members in _group_indices(run_dirs, configs, labels)]


def _check_output(output) -> Path:
    output = Path(output)
    if output.suffix.lower() not in FORMATS:
        raise ValueError(f"plot output {output}: unknown format {output.suffix or '(none)'!r}; "
                         f"name the file with one of {', '.join(FORMATS)}")
    return output


def plot_runs(run_dirs, output, *, histories=None, metric="episode/return_mean", labels=None):
    """Plot metrics against environment steps for one or more runs.

    Runs that differ only in their seed are drawn as one configuration: the mean over the
    seeds and a band from the lowest to the highest seed (on the steps all of them reached).

    Parameters
    ----------
    run_dirs : list of path
        Run folders (their ``metrics.csv`` is read unless ``histories`` is given; their
        ``config.json``, if any, names the runs and groups them).
    output : path
        The figure to write (atomically); ``.png``, ``.pdf`` or ``.svg`` chooses the format.
    histories : list of list of dict, optional
        In-memory histories instead of reading ``metrics.csv``.
    metric : str or list of str
        The column(s) to plot, one panel each; a string may list several separated by
        commas (default: mean episode return of the iteration's batch).
    labels : list of str, optional
        Legend labels, one per run; runs with the same label form one group (default:
        group by configuration, named by the settings that differ between groups).

    Returns
    -------
    pathlib.Path
        ``output``.

    Raises
    ------
    ValueError
        An unknown output format, a run folder without metrics or without the metric.
    """
    output = _check_output(output)
    metrics = [m.strip() for item in ([metric] if isinstance(metric, str) else metric)
               for m in str(item).split(",") if m.strip()]
    if not metrics:
        raise ValueError("no metric given; pass --metric KEY (e.g. episode/return_mean)")
    metrics = [RENAMED_METRICS.get(m, m) for m in metrics]
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"labels: {len(labels)} given for {len(run_dirs)} runs; give one per "
                         "run")
    configs = [_read_config(d) for d in run_dirs]
    data = []  # per run: {metric: (steps, values)}
    for i, run_dir in enumerate(run_dirs):
        if histories is not None:
            rows = histories[i]
            cols = {k: np.array([r.get(k, math.nan) for r in rows], dtype=float)
                    for k in ["steps", *metrics] if any(k in r for r in rows)}
            n_rows = len(rows)
        else:
            cols = read_metrics(run_dir)
            n_rows = len(next(iter(cols.values()), []))
        if n_rows == 0:
            raise ValueError(f"{run_dir}/metrics.csv has no rows yet: the run has not completed "
                             "an iteration; plot it once it has")
        for m in metrics:
            if m not in cols:
                raise ValueError(f"{run_dir}/metrics.csv has no column {m!r}; its columns: "
                                 f"{', '.join(sorted(cols))}")
        data.append({m: _curve(cols["steps"], cols[m]) for m in metrics})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _group_indices(run_dirs, configs, labels)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(7.5, 1.2 + 3.0 * len(metrics)),
                             sharex=True, squeeze=False)
    for row, (ax, m) in enumerate(zip(axes[:, 0], metrics, strict=True)):
        for g, (label, members) in enumerate(groups):
            color = f"C{g % 10}"
            curves = [data[i][m] for i in members if data[i][m][0].size]
            if not curves:
                continue
            if len(curves) == 1:
                ax.plot(*curves[0], color=color, lw=1.6,
                        label=label + (f" (seed {configs[members[0]]['train']['seed']})"
                                       if configs[members[0]].get("train", {}).get("seed")
                                       is not None else ""))
                continue
            grid, mean, low, high = seed_band(curves)
            ax.fill_between(grid, low, high, color=color, alpha=0.2, lw=0)
            ax.plot(grid, mean, color=color, lw=1.6,
                    label=f"{label} (mean of {len(curves)} seeds, band: min–max)")
        ax.set_ylabel(metric_label(m))
        ax.grid(alpha=0.3)
        if row == 0:
            ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("environment steps")
    if any(configs):
        axes[0, 0].set_title(_title([c for c in configs if c]))
    fig.tight_layout()
    tmp = output.with_name(f".{output.stem}.tmp{os.getpid()}{output.suffix}")
    try:
        fig.savefig(tmp, dpi=110, format=output.suffix.lower()[1:])
        os.replace(tmp, output)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return output
