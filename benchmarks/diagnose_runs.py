"""Why seeds differ: each run's own diagnostics over training, side by side per seed.

For every run folder under ``<results>/runs/<env>/`` whose name matches ``--match`` (for
example ``trpo-seed*-1000000`` for the preset runs of the learning benchmark), read
``metrics.csv`` and the final evaluation and report, per seed and per quarter of training:

- the training return (mean of the iteration's finished episodes) and its peak, and whether
  the run *collapsed* (its last-quarter return below half its peak);
- the value function's explained variance before the fit (how well the critic predicted the
  batch it had not seen: the quality of the advantages the policy step used);
- the KL of the accepted steps and the fraction of iterations whose line search failed;
- the policy's entropy (exploration left);
- the reward scale (with reward scaling) and the episode count per batch.

Run::

    python benchmarks/diagnose_runs.py --env Hopper-v5 --match "trpo-seed*-1000000"

Results: ``benchmarks/results/diagnosis_<env>_<label>.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import math
import re
import statistics
from pathlib import Path

from _common import RESULTS_DIR, command_line, markdown_table, timestamp, write_atomic, write_json

COLUMNS = {"return": "episode/return_mean", "ev_before": "value/explained_variance_before",
           "kl": None, "ls_fail": None, "entropy": "policy/entropy", "scale": "reward/scale",
           "episodes": "episode/count"}


def _float(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def _mean(values):
    vals = [v for v in values if math.isfinite(v)]
    return statistics.fmean(vals) if vals else math.nan


def read_run(folder: Path) -> dict | None:
    path = folder / "metrics.csv"
    if not path.exists():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    algo = next((k.split("/")[0] for k in rows[0] if k.endswith("/kl")), "trpo")
    series = {name: [_float(r.get(col)) for r in rows] for name, col in COLUMNS.items() if col}
    series["kl"] = [_float(r.get(f"{algo}/kl")) for r in rows]
    success = f"{algo}/line_search_success"
    series["ls_fail"] = [0.0 if r.get(success) in ("1", "True", "true") else 1.0
                         if r.get(success) not in (None, "") else math.nan for r in rows]
    evaluation = math.nan
    for name in ("evaluation.json", "benchmark_record.json"):
        p = folder / name
        if p.exists():
            data = json.loads(p.read_text())
            evaluation = _float(data.get("eval/return_mean", data.get("eval_return_mean")))
            if math.isfinite(evaluation):
                break
    seed = re.search(r"seed(\d+)", folder.name)
    return {"run": folder.name, "seed": int(seed.group(1)) if seed else None,
            "iterations": len(rows), "steps": int(_float(rows[-1]["steps"])),
            "eval": evaluation, "series": series}


def quarters(values: list) -> list:
    n = len(values)
    cuts = [round(n * k / 4) for k in range(5)]
    return [_mean(values[cuts[k]:cuts[k + 1]]) for k in range(4)]


def diagnose(run: dict) -> dict:
    s = run["series"]
    ret = s["return"]
    finite = [v for v in ret if math.isfinite(v)]
    peak = max(finite) if finite else math.nan
    q = {name: quarters(values) for name, values in s.items()}
    last = q["return"][3]
    return {"run": run["run"], "seed": run["seed"], "eval": run["eval"],
            "iterations": run["iterations"], "peak_return": peak, "last_quarter_return": last,
            "collapsed": bool(math.isfinite(peak) and peak > 0 and last < 0.5 * peak),
            "quarters": q}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--match", default="trpo-seed*-1000000",
                        help="glob on the run folder names (default: the preset runs)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    base = args.results / "runs" / args.env
    if not base.is_dir():
        parser.error(f"no run folders for --env {args.env} under {base}")
    runs = [r for r in (read_run(p) for p in sorted(base.iterdir())
                        if p.is_dir() and fnmatch.fnmatch(p.name, args.match)) if r]
    if not runs:
        parser.error(f"no run folder in {base} matches --match {args.match!r}")
    diags = sorted((diagnose(r) for r in runs), key=lambda d: (d["seed"] is None, d["seed"]))

    def f(v, fmt=".3g"):
        return "–" if not math.isfinite(v) else format(v, fmt)

    rows = []
    for d in diags:
        q = d["quarters"]
        rows.append([d["seed"], f(d["eval"], ".0f"), f(d["peak_return"], ".0f"),
                     " / ".join(f(v, ".0f") for v in q["return"]),
                     " / ".join(f(v, ".2f") for v in q["ev_before"]),
                     " / ".join(f(v, ".4f") for v in q["kl"]),
                     " / ".join(f(v, ".2f") for v in q["ls_fail"]),
                     " / ".join(f(v, ".2f") for v in q["entropy"]),
                     " / ".join(f(v, ".3g") for v in q["scale"]),
                     "yes" if d["collapsed"] else "no"])
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.match)
    command = command_line("diagnose_runs.py", argv)
    md = "\n".join([
        f"# Diagnostics per seed: {args.env}, runs `{args.match}`",
        "",
        "Each cell gives the four quarters of training (mean over the quarter's iterations). "
        "Return: training episode return; EV: value explained variance before the fit; KL: "
        "accepted step's mean KL; LS fail: fraction of iterations whose line search failed; "
        "entropy: policy entropy; scale: reward scale (reward scaling only). Collapsed: "
        "last-quarter return below half the run's peak.",
        "",
        markdown_table(["seed", "eval", "peak return", "return", "EV before fit", "KL",
                        "LS fail", "entropy", "reward scale", "collapsed"], rows,
                       "rrrlllllll"),
        "",
        f"Command: `{command}`; {timestamp()}.",
        "",
    ])
    out = args.results / f"diagnosis_{args.env}_{label}"
    write_json(out.with_suffix(".json"), {"env": args.env, "match": args.match,
                                          "runs": diags, "command": command,
                                          "date": timestamp()})
    write_atomic(out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    main()
