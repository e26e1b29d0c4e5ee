"""``trustregion.minimize`` against scipy's ``trust-ncg`` and ``trust-krylov`` on a standard set.

Goal (issue "trustregion", Benchmarks): ``tr.minimize`` solves at least as many problems
as ``trust-ncg``, with no more function evaluations in the median.

The problems are unconstrained least-squares test functions ``f(x) = sum_i f_i(x)^2`` of
Moré, Garbow and Hillstrom (1981) -- numbered "MGH k" below -- with their standard
starting points, plus the Dixon-Price function (Dixon and Price 1989; start x = 1) and a
convex quadratic with condition number 10^4. Every method gets the same callables: ``fun``
(written with ``autograd.numpy``), ``jac = autograd.grad(fun)`` and a Hessian-vector
product ``hessp(x, p)`` from ``autograd.make_hvp`` (the gradient graph traced once per
point and reused for every product at that point). All run with the same ``gtol``
(``--gtol``, default 1e-5) and their default ``maxiter`` (``200 n``).

Reported per problem and method: success flag of the method, final ``f`` and ``||g||``
(recomputed here), ``nit``, ``nfev``, ``njev``, ``nhev`` (calls of the three callables,
counted by the same wrappers for every method; the counts the methods report themselves
are kept in the JSON), and wall time (median of ``--repeats`` runs, the methods run side by
side on each problem in ABBA order). A problem is
*solved* when ``||g|| <= 10 gtol`` and ``|f - f*| <= 1e-6 max(1, |f*|)`` for one of the
minima ``f*`` known for it (global, or the local minimum the literature reports from the
standard start; which one is reported).

Run::

    python benchmarks/bench_minimize.py           # full set, 3 repeats (about a minute)
    python benchmarks/bench_minimize.py --quick   # a few small problems

Results: ``benchmarks/results/minimize.json`` and ``minimize.md`` (written atomically).

References: J. J. Moré, B. S. Garbow and K. E. Hillstrom, "Testing unconstrained
optimization software", ACM TOMS 7(1), 17-41, 1981. L. C. W. Dixon and R. C. Price,
"Truncated Newton method for sparse unconstrained optimization using automatic
differentiation", JOTA 60(2), 261-275, 1989.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import autograd
import autograd.numpy as anp
import numpy as np
import scipy.optimize
from _common import (
    RESULTS_DIR,
    command_line,
    interleaved_medians,
    machine_info,
    markdown_table,
    positive_int,
    timestamp,
    write_atomic,
    write_json,
)

import trustregion as tr  # after _common, which puts the checkout on sys.path

METHODS = ("trustregion", "trust-ncg", "trust-krylov")


@dataclass
class Problem:
    name: str
    fun: object
    x0: np.ndarray
    minima: list  # known minimum values: the global one first, then reported local ones
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.x0.size


def sum_of_squares(residuals):
    def f(x):
        r = residuals(x)
        return anp.sum(r * r)

    return f


# ---- Moré-Garbow-Hillstrom problems (residual form, f = sum r_i^2) --------------------------


def rosenbrock(x):  # MGH 1
    return anp.array([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def freudenstein_roth(x):  # MGH 2
    return anp.array(
        [
            -13.0 + x[0] + ((5.0 - x[1]) * x[1] - 2.0) * x[1],
            -29.0 + x[0] + ((x[1] + 1.0) * x[1] - 14.0) * x[1],
        ]
    )


def powell_badly_scaled(x):  # MGH 3
    return anp.array([1e4 * x[0] * x[1] - 1.0, anp.exp(-x[0]) + anp.exp(-x[1]) - 1.0001])


def brown_badly_scaled(x):  # MGH 4
    return anp.array([x[0] - 1e6, x[1] - 2e-6, x[0] * x[1] - 2.0])


def beale(x):  # MGH 5
    y = np.array([1.5, 2.25, 2.625])
    i = np.arange(1, 4)
    return y - x[0] * (1.0 - x[1] ** i)


def helical_valley(x):  # MGH 7
    theta = anp.arctan(x[1] / x[0]) / (2 * np.pi) + anp.where(x[0] < 0, 0.5, 0.0)
    return anp.array(
        [10.0 * (x[2] - 10.0 * theta), 10.0 * (anp.sqrt(x[0] ** 2 + x[1] ** 2) - 1.0), x[2]]
    )


def box_3d(x):  # MGH 12, m = 10
    t = 0.1 * np.arange(1, 11)
    return anp.exp(-t * x[0]) - anp.exp(-t * x[1]) - x[2] * (np.exp(-t) - np.exp(-10.0 * t))


def powell_singular(x):  # MGH 13
    return anp.array(
        [
            x[0] + 10.0 * x[1],
            np.sqrt(5.0) * (x[2] - x[3]),
            (x[1] - 2.0 * x[2]) ** 2,
            np.sqrt(10.0) * (x[0] - x[3]) ** 2,
        ]
    )


def wood(x):  # MGH 14
    return anp.array(
        [
            10.0 * (x[1] - x[0] ** 2),
            1.0 - x[0],
            np.sqrt(90.0) * (x[3] - x[2] ** 2),
            1.0 - x[2],
            np.sqrt(10.0) * (x[1] + x[3] - 2.0),
            (x[1] - x[3]) / np.sqrt(10.0),
        ]
    )


def extended_rosenbrock(x):  # MGH 21
    odd, even = x[0::2], x[1::2]
    return anp.concatenate([10.0 * (even - odd**2), 1.0 - odd])


def extended_powell_singular(x):  # MGH 22
    a, b, c, d = x[0::4], x[1::4], x[2::4], x[3::4]
    return anp.concatenate(
        [a + 10.0 * b, np.sqrt(5.0) * (c - d), (b - 2.0 * c) ** 2, np.sqrt(10.0) * (a - d) ** 2]
    )


def penalty_1(x):  # MGH 23
    return anp.concatenate([np.sqrt(1e-5) * (x - 1.0), anp.array([anp.sum(x**2) - 0.25])])


def variably_dimensioned(x):  # MGH 25
    j = np.arange(1, x.size + 1)
    s = anp.sum(j * (x - 1.0))
    return anp.concatenate([x - 1.0, anp.array([s, s**2])])


def trigonometric(x):  # MGH 26
    n = x.size
    i = np.arange(1, n + 1)
    return n - anp.sum(anp.cos(x)) + i * (1.0 - anp.cos(x)) - anp.sin(x)


def brown_almost_linear(x):  # MGH 27
    n = x.size
    head = x[:-1] + anp.sum(x) - (n + 1.0)
    return anp.concatenate([head, anp.array([anp.prod(x) - 1.0])])


def broyden_tridiagonal(x):  # MGH 30
    padded = anp.concatenate([anp.zeros(1), x, anp.zeros(1)])
    return (3.0 - 2.0 * x) * x - padded[:-2] - 2.0 * padded[2:] + 1.0


def extended_freudenstein_roth(x):  # MGH 2 on consecutive pairs
    u, v = x[0::2], x[1::2]
    return anp.concatenate(
        [
            -13.0 + u + ((5.0 - v) * v - 2.0) * v,
            -29.0 + u + ((v + 1.0) * v - 14.0) * v,
        ]
    )


def dixon_price(x):
    i = np.arange(2, x.size + 1)
    return (x[0] - 1.0) ** 2 + anp.sum(i * (2.0 * x[1:] ** 2 - x[:-1]) ** 2)


def quadratic(n: int, kappa: float, seed: int = 0):
    """``1/2 x^T A x - b^T x``, eigenvalues log-spaced in ``[1, kappa]``.

    Returns ``(f, f*)`` with the minimum ``f* = -1/2 b^T A^-1 b``.
    """
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    Q *= np.sign(np.diag(R))
    lam = np.geomspace(1.0, kappa, n)
    A = (Q * lam) @ Q.T
    A = 0.5 * (A + A.T)
    b = rng.standard_normal(n)
    x_star = Q @ ((Q.T @ b) / lam)

    def f(x):
        return 0.5 * anp.dot(x, anp.dot(A, x)) - anp.dot(b, x)

    return f, float(-0.5 * b @ x_star)


def problems(quick: bool) -> list[Problem]:
    ls = sum_of_squares
    fr_local = 48.98425367924  # MGH 2: local minimum from the standard start
    out = [
        Problem("Rosenbrock", ls(rosenbrock), np.array([-1.2, 1.0]), [0.0], "MGH 1"),
        Problem(
            "Freudenstein-Roth",
            ls(freudenstein_roth),
            np.array([0.5, -2.0]),
            [0.0, fr_local],
            "MGH 2",
        ),
        Problem(
            "Powell badly scaled", ls(powell_badly_scaled), np.array([0.0, 1.0]), [0.0], "MGH 3"
        ),
        Problem("Brown badly scaled", ls(brown_badly_scaled), np.array([1.0, 1.0]), [0.0], "MGH 4"),
        Problem("Beale", ls(beale), np.array([1.0, 1.0]), [0.0], "MGH 5"),
        Problem("Helical valley", ls(helical_valley), np.array([-1.0, 0.0, 0.0]), [0.0], "MGH 7"),
        Problem("Box 3-D", ls(box_3d), np.array([0.0, 10.0, 20.0]), [0.0], "MGH 12"),
        Problem(
            "Powell singular", ls(powell_singular), np.array([3.0, -1.0, 0.0, 1.0]), [0.0], "MGH 13"
        ),
        Problem("Wood", ls(wood), np.array([-3.0, -1.0, -3.0, -1.0]), [0.0], "MGH 14"),
    ]
    if quick:
        return out[:5]
    for n in (10, 100):
        out.append(
            Problem(
                f"Extended Rosenbrock n={n}",
                ls(extended_rosenbrock),
                np.tile([-1.2, 1.0], n // 2),
                [0.0],
                "MGH 21",
            )
        )
    out += [
        Problem(
            "Extended Powell singular n=20",
            ls(extended_powell_singular),
            np.tile([3.0, -1.0, 0.0, 1.0], 5),
            [0.0],
            "MGH 22",
        ),
        Problem("Penalty I n=10", ls(penalty_1), np.arange(1.0, 11.0), [7.08765146e-5], "MGH 23"),
        Problem(
            "Variably dimensioned n=10",
            ls(variably_dimensioned),
            1.0 - np.arange(1, 11) / 10,
            [0.0],
            "MGH 25",
        ),
        Problem(
            "Trigonometric n=10", ls(trigonometric), np.full(10, 0.1), [0.0, 2.79506e-5], "MGH 26"
        ),
        Problem(
            "Brown almost-linear n=10",
            ls(brown_almost_linear),
            np.full(10, 0.5),
            [0.0, 1.0],
            "MGH 27",
        ),
        Problem(
            "Broyden tridiagonal n=10", ls(broyden_tridiagonal), np.full(10, -1.0), [0.0], "MGH 30"
        ),
        Problem(
            "Extended Freudenstein-Roth n=10",
            ls(extended_freudenstein_roth),
            np.tile([0.5, -2.0], 5),
            [k * fr_local for k in range(6)],
            "MGH 2, 5 pairs",
        ),
        Problem("Dixon-Price n=10", dixon_price, np.ones(10), [0.0], "Dixon & Price 1989"),
    ]
    f_quad, f_star = quadratic(100, 1e4)
    out.append(Problem("Convex quadratic κ=1e4 n=100", f_quad, np.zeros(100), [f_star], "random"))
    return out


# ---- one run ------------------------------------------------------------------------------


class Counted:
    """The three callables every method gets, with call counters."""

    def __init__(self, fun):
        self._fun = fun
        self._grad = autograd.grad(fun)
        self._point = None
        self._hvp = None
        self.nfev = self.njev = self.nhev = 0

    def fun(self, x):
        self.nfev += 1
        return float(self._fun(x))

    def jac(self, x):
        self.njev += 1
        return self._grad(x)

    def hessp(self, x, p):
        self.nhev += 1
        key = np.asarray(x, dtype=np.float64).tobytes()
        if key != self._point:  # trace the gradient once per point, reuse it for every product
            self._hvp = autograd.make_hvp(self._fun)(np.array(x, dtype=np.float64))[0]
            self._point = key
        return self._hvp(np.asarray(p, dtype=np.float64))


def solve(problem: Problem, method: str, gtol: float):
    calls = Counted(problem.fun)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when it stops at maxiter; we report it
        if method == "trustregion":
            res = tr.minimize(calls.fun, problem.x0, jac=calls.jac, hessp=calls.hessp, gtol=gtol)
        else:
            res = scipy.optimize.minimize(
                calls.fun,
                problem.x0,
                method=method,
                jac=calls.jac,
                hessp=calls.hessp,
                options={"gtol": gtol},
            )
    return res, calls


def evaluate_problem(problem: Problem, gtol: float, repeats: int) -> list[dict]:
    """Every method on ``problem``, timed side by side (ABBA order from run to run)."""
    timings = interleaved_medians(
        {m: (lambda m=m: solve(problem, m, gtol)) for m in METHODS}, repeats)
    return [evaluate(problem, m, gtol, timings[m]) for m in METHODS]


def evaluate(problem: Problem, method: str, gtol: float, timing: dict) -> dict:
    """The record of one method's run on ``problem`` (``timing`` from interleaved_medians)."""
    res, calls = timing["result"]
    x = np.asarray(res.x, dtype=np.float64)
    f = float(problem.fun(x))
    gnorm = float(np.linalg.norm(autograd.grad(problem.fun)(x)))
    ftol = [1e-6 * max(1.0, abs(fs)) for fs in problem.minima]
    # at a listed minimum (not merely below one: a saddle or maximum with a small gradient
    # can lie below the larger listed local minima)
    hit = [i for i, (fs, tol) in enumerate(zip(problem.minima, ftol, strict=True))
           if abs(f - fs) <= tol]
    solved = bool(np.isfinite(f) and gnorm <= 10 * gtol and hit)
    return {
        "problem": problem.name,
        "source": problem.source,
        "n": problem.n,
        "method": method,
        "success_reported": bool(res.success),
        "message": str(res.message),
        "f": f,
        "f_star": problem.minima[hit[0]] if hit else problem.minima[0],
        "minimum": ("global" if hit[0] == 0 else "local") if hit else None,
        "grad_norm": gnorm,
        "solved": solved,
        "nit": int(res.nit),
        "nfev": calls.nfev,
        "njev": calls.njev,
        "nhev": calls.nhev,
        "reported_counts": {k: int(res.get(k, -1)) for k in ("nfev", "njev", "nhev")},
        "time_s": timing["median_s"],
        "times_s": timing["times_s"],
    }


def summarize(rows) -> dict:
    by_method = {m: [r for r in rows if r["method"] == m] for m in METHODS}
    problems_all = sorted({r["problem"] for r in rows})
    solved_by_all = [p for p in problems_all if all(r["solved"] for r in rows if r["problem"] == p)]
    out = {}
    for m, rs in by_method.items():
        common = [r for r in rs if r["problem"] in solved_by_all]
        out[m] = {
            "solved": sum(r["solved"] for r in rs),
            "solved_global": sum(r["solved"] and r["minimum"] == "global" for r in rs),
            "problems": len(rs),
            "median_nfev": statistics.median(r["nfev"] for r in rs),
            "median_njev": statistics.median(r["njev"] for r in rs),
            "median_nhev": statistics.median(r["nhev"] for r in rs),
            "median_nfev_solved_by_all": statistics.median(r["nfev"] for r in common)
            if common
            else None,
            "median_nhev_solved_by_all": statistics.median(r["nhev"] for r in common)
            if common
            else None,
            "total_time_s": sum(r["time_s"] for r in rs),
        }
    ours, ncg = out["trustregion"], out["trust-ncg"]
    out["goal"] = {
        "solves_at_least_as_many_as_trust_ncg": ours["solved"] >= ncg["solved"],
        "median_nfev_not_more_than_trust_ncg": ours["median_nfev"] <= ncg["median_nfev"],
        "problems_solved_by_all": len(solved_by_all),
    }
    return out


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def markdown(rows, meta) -> str:
    def fmt_row(r):
        return [
            r["problem"],
            r["n"],
            r["method"],
            ("yes" if r["solved"] else "**no**")
            + (f" ({r['minimum']})" if r["minimum"] == "local" else ""),
            "yes" if r["success_reported"] else "no",
            f"{r['f']:.3e}",
            f"{r['grad_norm']:.1e}",
            r["nit"],
            r["nfev"],
            r["njev"],
            r["nhev"],
            f"{1e3 * r['time_s']:.1f}",
        ]

    table = markdown_table(
        [
            "problem",
            "n",
            "method",
            "solved",
            "success",
            "f",
            "‖g‖",
            "nit",
            "nfev",
            "njev",
            "nhev",
            "time (ms)",
        ],
        [fmt_row(r) for r in rows],
        align="lrllllrrrrrr",
    )
    s = meta["summary"]
    summary_rows = [
        [
            m,
            f"{s[m]['solved']} / {s[m]['problems']}",
            s[m]["solved_global"],
            s[m]["median_nfev"],
            s[m]["median_njev"],
            s[m]["median_nhev"],
            s[m]["median_nfev_solved_by_all"],
            s[m]["median_nhev_solved_by_all"],
            f"{s[m]['total_time_s']:.2f}",
        ]
        for m in METHODS
    ]
    summary = markdown_table(
        [
            "method",
            "solved",
            "at global min",
            "median nfev",
            "median njev",
            "median nhev",
            f"median nfev (solved by all, {s['goal']['problems_solved_by_all']})",
            "median nhev (solved by all)",
            "total time (s)",
        ],
        summary_rows,
        align="lrrrrrrrr",
    )
    g = s["goal"]
    m = meta["machine"]
    return "\n".join(
        [
            "# Unconstrained minimization: trustregion.minimize vs scipy trust-ncg / trust-krylov",
            "",
            f"Same `fun`, `jac` (autograd) and `hessp` (autograd HVP) for every method; "
            f"`gtol={meta['gtol']}`, default `maxiter`. Counts are calls of those callables. "
            f"Solved: ‖g‖ ≤ 10·gtol and |f − f*| ≤ 1e-6·max(1, |f*|) for a known minimum f* "
            f'("local" marks a documented local minimum). Time: median of {meta["repeats"]} runs, '
            "the methods run side by side on each problem in ABBA order.",
            "",
            summary,
            "",
            f"Goal: solves at least as many as trust-ncg — "
            f"{verdict(g['solves_at_least_as_many_as_trust_ncg'])}; median nfev "
            f"not above trust-ncg's — {verdict(g['median_nfev_not_more_than_trust_ncg'])}.",
            "",
            table,
            "",
            f"Command: `{meta['command']}`; {meta['date']}; {m['platform']}, "
            f"{m['cpu_count']} CPUs, load average {m['load_average']} (at the end); "
            f"numpy {m['numpy']}, scipy {m['scipy']}; BLAS threads "
            f"{m['blas_threads']}.",
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed runs per method")
    parser.add_argument("--gtol", type=float, default=1e-5, help="gradient tolerance")
    parser.add_argument("--quick", action="store_true", help="a few small problems")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    args = parser.parse_args(argv)

    if not args.gtol >= 0.0:
        parser.error(f"--gtol must be >= 0; got {args.gtol}")
    rows = []
    for problem in problems(args.quick):
        for row in evaluate_problem(problem, args.gtol, args.repeats):
            rows.append(row)
            print(
                f"{problem.name:34s} {row['method']:12s} solved={row['solved']!s:5s} "
                f"f={row['f']:.3e} "
                f"|g|={row['grad_norm']:.1e} nit={row['nit']:4d} nfev={row['nfev']:4d} "
                f"nhev={row['nhev']:5d} {1e3 * row['time_s']:8.1f} ms",
                file=sys.stderr,
                flush=True,
            )
    meta = {
        "benchmark": "minimize",
        "command": command_line("bench_minimize.py", argv),
        "date": timestamp(),
        "machine": machine_info(),
        "gtol": args.gtol,
        "repeats": args.repeats,
        "quick": args.quick,
        "summary": summarize(rows),
    }
    out = {**meta, "runs": rows}
    out_dir = Path(args.out)
    write_json(out_dir / "minimize.json", out)
    md = markdown(rows, meta)
    write_atomic(out_dir / "minimize.md", md)
    print(md)
    return out


if __name__ == "__main__":
    main()
