"""How well and how fast each solver of :class:`rl.MLPValueFunction` fits a value function.

Two problems:

- **warm-started fits** (what every policy iteration after the first does): a smooth 4-D
  value function, ``fits`` successive fits of one network, each to ``n`` fresh noisy samples;
  after each fit the explained variance on 4096 held-out noiseless points is recorded;
- **a fit from scratch**: ``y = sin x + x^2`` on 512 points, explained variance after
  the default number of iterations and after twice as many.

Solvers: the default trust-region fit (5 steps of epsilon = 0.05, 10 CG iterations), with 10
steps, with 5 CG iterations per step, L-BFGS (25 iterations) and Adam (10 epochs). The time
ratio of each solver to L-BFGS comes from the same invocation (CPU time of this process,
which other processes on the machine disturb less than wall time).

Usage::

    python benchmarks/bench_value_fit.py [--fits 8] [--n 1024] [--seed 0]

Writes ``benchmarks/results/value_fit.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import (
    RESULTS_DIR,
    code_version,
    command_line,
    machine_info,
    markdown_table,
    positive_int,
    save_results,
    timestamp,
)

from rl.advantages import MLPValueFunction, explained_variance

SOLVERS = {
    "trust-region (default: 5 steps, 10 CG)": dict(optimizer="trust-region"),
    "trust-region, 10 steps": dict(optimizer="trust-region", iterations=10),
    "trust-region, 5 CG iterations": dict(optimizer="trust-region", cg_iters=5),
    "lbfgs (25 iterations)": dict(optimizer="lbfgs", iterations=25),
    "adam (10 epochs)": dict(optimizer="adam", iterations=10),
}


def smooth_value(x):
    """A smooth 4-D value function."""
    return np.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2 - np.cos(x[:, 2] * x[:, 3]) + 0.3 * x[:, 3]


def warm_started(solver: dict, fits: int, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    vf = MLPValueFunction(4, (64, 64), seed=seed, **solver)
    held_out = rng.uniform(-2, 2, size=(4096, 4))
    truth = smooth_value(held_out)
    scores, cpu = [], 0.0
    for _ in range(fits):
        x = rng.uniform(-2, 2, size=(n, 4))
        y = smooth_value(x) + 0.1 * rng.normal(size=n)
        start = time.process_time()
        vf.fit(x, y)
        cpu += time.process_time() - start
        scores.append(float(explained_variance(vf.predict(held_out), truth)))
    return {"held_out_ev": scores, "cpu_s_per_fit": cpu / fits}


def from_scratch(solver: dict, seed: int) -> dict:
    x = np.linspace(-2, 2, 512)[:, None]
    y = np.sin(x[:, 0]) + x[:, 0] ** 2
    out = {}
    for label, scale in (("default iterations", 1), ("twice as many", 2)):
        kwargs = dict(solver)
        if scale == 2:
            base = kwargs.get("iterations") or MLPValueFunction(1, (64, 64), seed=seed,
                                                                **solver).iterations
            kwargs["iterations"] = 2 * base
        vf = MLPValueFunction(1, (64, 64), seed=seed, **kwargs)
        vf.fit(x, y)
        out[label] = float(explained_variance(vf.predict(x), y))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fits", type=positive_int, default=8)
    p.add_argument("--n", type=positive_int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows, results = [], {}
    for name, solver in SOLVERS.items():
        warm = warm_started(solver, args.fits, args.n, args.seed)
        scratch = from_scratch(solver, args.seed)
        results[name] = {"settings": solver, "warm_started": warm, "from_scratch": scratch}
        print(f"{name}: held-out EV {warm['held_out_ev'][0]:.3f} .. "
              f"{warm['held_out_ev'][-1]:.3f}, {warm['cpu_s_per_fit']:.2f} s CPU per fit",
              file=sys.stderr)
    lbfgs = results["lbfgs (25 iterations)"]["warm_started"]["cpu_s_per_fit"]
    for name, r in results.items():
        ev = r["warm_started"]["held_out_ev"]
        r["warm_started"]["cpu_ratio_to_lbfgs"] = r["warm_started"]["cpu_s_per_fit"] / lbfgs
        rows.append([name, f"{ev[0]:.3f}", f"{ev[1]:.3f}", f"{ev[-1]:.3f}",
                     f"{min(ev):.3f}", f"{r['warm_started']['cpu_ratio_to_lbfgs']:.2f}",
                     f"{r['from_scratch']['default iterations']:.3f}",
                     f"{r['from_scratch']['twice as many']:.3f}"])
    md = "\n".join([
        "# Value-function fits",
        "",
        f"`{command_line('bench_value_fit.py', argv)}` — {timestamp()}, code "
        f"{code_version()}.",
        "",
        f"64x64 `MLPValueFunction`, float64. Warm-started: {args.fits} successive fits of one "
        f"network, each to {args.n} fresh samples of a smooth 4-D function with noise 0.1; "
        "explained variance (EV) on 4096 held-out noiseless points after each fit. From "
        "scratch: y = sin x + x^2 on 512 points, EV on those points. CPU time relative to "
        "L-BFGS, measured in this invocation.",
        "",
        markdown_table(["solver", "EV fit 1", "EV fit 2", f"EV fit {args.fits}", "worst EV",
                        "CPU / L-BFGS", "scratch EV", "scratch EV, 2x iterations"], rows),
        "",
    ])
    save_results(RESULTS_DIR, "value_fit", {"command": command_line(
        "bench_value_fit.py", argv), "machine": machine_info(),
        "code_version": code_version(), "timestamp": timestamp(), "args": vars(args),
        "results": results}, md, complete=True)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
