"""``trustregion.cg`` against ``scipy.sparse.linalg.cg``: same operator, same tolerance, one run.

Goal (issue "trustregion", Benchmarks): never more iterations than scipy at equal
tolerance, and wall time within 1.1x of scipy's.

Systems ``A x = b`` with ``b`` standard normal (fixed seed per system):

* 1-D Poisson, ``tridiag(-1, 2, -1)``, n = 10^4 (solved to the tolerance; CG needs
  about n iterations) and n = 10^5 (a fixed budget of ``--budget`` iterations, since
  convergence takes about 10^5 iterations: both solvers stop at the budget and the time
  compares the cost per iteration);
* 2-D Poisson, the 5-point Laplacian on a k x k grid, k = 200 and 400;
* random SPD ``Q diag(lambda) Q^T`` with ``Q`` the Q factor of a Gaussian matrix and
  ``lambda`` log-spaced in ``[1, kappa]``, kappa = 10^2, 10^4, 10^6, 10^8, n = 1000
  (scipy's default ``maxiter = 10 n`` for both).

Each system is passed to both solvers in two forms: the matrix itself (CSR sparse, or
the dense ndarray) and ``scipy.sparse.linalg.aslinearoperator`` of it -- the same object
to both. Both run with ``rtol`` (``--rtol``), ``atol = 0`` and the same ``maxiter``; both
stop when ``||r_k|| <= max(rtol ||b||, atol)`` (scipy: ``<``).

Reported per system and form: iterations (ours: ``nit``; scipy: callback calls, counted
in a separate untimed run so the callback costs nothing in the timed runs), exit status,
the true relative residual ``||b - A x|| / ||b||`` of both answers (recomputed here the
same way for both), wall time (median of ``--repeats`` runs of each solver, more for
short solves so that each solver is timed for at least 0.5 s; interleaved ABBA so load
drifts on a shared machine hit both alike), the ratio ours / scipy of the
medians, and the same ratio for CPU time (``time.process_time``), which other processes
on the machine disturb less.

Run::

    python benchmarks/bench_cg.py                 # full set, 5 repeats (a few minutes)
    python benchmarks/bench_cg.py --quick         # small sizes, smoke test

Results: ``benchmarks/results/cg.json`` and ``cg.md`` (written atomically after every
case, so a run that stops keeps the cases it finished; ``"complete"`` in the JSON says
whether the run ended). A case that raises is recorded under ``"failures"``, the other cases
still run, and the script exits with status 1.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from _common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    interleaved_medians,
    machine_info,
    markdown_table,
    positive_int,
    save_results,
    timestamp,
)

import trustregion as tr  # after _common, which puts the checkout on sys.path

GOAL_TIME_RATIO = 1.1
MIN_TIME_S = 0.5  # total timed seconds per solver and case, at least
MAX_REPEATS = 41


def tolerance(text: str) -> float:
    """An ``argparse`` type: a relative tolerance in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1); got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1); got {value}")
    return value


def scipy_status(info: int) -> str:
    """scipy's ``info`` as a word: 0 converged, > 0 iteration budget spent, < 0 error."""
    return "converged" if info == 0 else ("maxiter" if info > 0 else f"error {info}")


def poisson_1d(n: int) -> sp.csr_matrix:
    """``tridiag(-1, 2, -1)``, the 1-D Laplacian with Dirichlet ends (eigenvalues in (0, 4))."""
    e = np.ones(n)
    return sp.diags([-e[1:], 2 * e, -e[1:]], [-1, 0, 1], format="csr")


def poisson_2d(k: int) -> sp.csr_matrix:
    """The 5-point Laplacian on a ``k x k`` grid: ``T (x) I + I (x) T``, n = k^2."""
    T = poisson_1d(k)
    identity = sp.identity(k, format="csr")
    return (sp.kron(T, identity) + sp.kron(identity, T)).tocsr()


def random_spd(n: int, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """``Q diag(lambda) Q^T`` with ``lambda`` log-spaced in ``[1, kappa]`` (condition ``kappa``)."""
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    Q *= np.sign(np.diag(R))
    lam = np.geomspace(1.0, kappa, n)
    A = (Q * lam) @ Q.T
    return 0.5 * (A + A.T)


def poisson_1d_condition(n: int) -> float:
    return (1 + np.cos(np.pi / (n + 1))) / (1 - np.cos(np.pi / (n + 1)))


def systems(quick: bool, budget: int):
    """``(name, A, kappa, maxiter, note)`` for every benchmark system."""
    rng = np.random.default_rng(20240601)
    sizes_1d = [(10**3, None), (10**4, budget)] if quick else [(10**4, None), (10**5, budget)]
    grids = [50, 100] if quick else [200, 400]
    spd_n = 300 if quick else 1000
    for n, maxiter in sizes_1d:
        note = "" if maxiter is None else f"fixed budget of {maxiter} iterations"
        name = f"Poisson 1-D n=10^{round(np.log10(n))}"
        yield name, poisson_1d(n), poisson_1d_condition(n), maxiter, note
    for k in grids:
        kappa = poisson_1d_condition(k)  # same extreme eigenvalue ratio as the 1-D factor
        yield f"Poisson 2-D {k}x{k}", poisson_2d(k), kappa, None, ""
    for kappa in (1e2, 1e4, 1e6, 1e8):
        name = f"random SPD κ=10^{round(np.log10(kappa))}"
        yield name, random_spd(spd_n, kappa, rng), kappa, None, ""


def relative_residual(A, x, b) -> float:
    return float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))


def run_case(name, A, kappa, maxiter, note, form, rtol, repeats, seed):
    n = A.shape[0]
    b = np.random.default_rng(seed).standard_normal(n)
    operator = A if form != "LinearOperator" else sla.aslinearoperator(A)
    kwargs = {"rtol": rtol, "atol": 0.0, "maxiter": maxiter}

    # untimed runs: iteration counts (scipy's through a counting callback) and answers
    start = time.perf_counter()
    ours = tr.cg(operator, b, **kwargs)
    once = time.perf_counter() - start
    # short solves get more timed runs (odd, at most MAX_REPEATS) so each arm runs >= MIN_TIME_S
    repeats = max(repeats, min(MAX_REPEATS, math.ceil(MIN_TIME_S / max(once, 1e-9))))
    repeats += 1 - repeats % 2
    count = [0]

    def counter(_xk):
        count[0] += 1

    x_scipy, info = sla.cg(operator, b, callback=counter, **kwargs)

    timing = interleaved_medians(
        {
            "ours": lambda: tr.cg(operator, b, **kwargs),
            "scipy": lambda: sla.cg(operator, b, **kwargs),
        },
        repeats,
    )
    t_ours, t_scipy = timing["ours"], timing["scipy"]
    return {
        "system": name,
        "form": form,
        "n": n,
        "kappa": kappa,
        "nnz": int(A.nnz) if sp.issparse(A) else n * n,
        "rtol": rtol,
        "maxiter": maxiter if maxiter is not None else 10 * n,
        "note": note,
        "iterations_ours": ours.nit,
        "iterations_scipy": count[0],
        "status_ours": ours.status.name,
        "info_scipy": int(info),
        "relres_ours": relative_residual(A, ours.x, b),
        "relres_scipy": relative_residual(A, x_scipy, b),
        "relres_reported_ours": ours.residual_norm / float(np.linalg.norm(b)),
        "max_abs_x_difference": float(np.max(np.abs(ours.x - x_scipy))),
        "time_ours_s": t_ours["median_s"],
        "time_scipy_s": t_scipy["median_s"],
        "time_ratio": t_ours["median_s"] / t_scipy["median_s"],
        "cpu_ours_s": t_ours["cpu_median_s"],
        "cpu_scipy_s": t_scipy["cpu_median_s"],
        "cpu_ratio": t_ours["cpu_median_s"] / t_scipy["cpu_median_s"],
        "times_ours_s": t_ours["times_s"],
        "times_scipy_s": t_scipy["times_s"],
        "repeats": repeats,
        "per_iteration_us_ours": 1e6 * t_ours["median_s"] / max(ours.nit, 1),
        "per_iteration_us_scipy": 1e6 * t_scipy["median_s"] / max(count[0], 1),
    }


def markdown(rows, meta) -> str:
    table = markdown_table(
        [
            "system",
            "form",
            "n",
            "κ",
            "iters ours",
            "iters scipy",
            "status ours / scipy",
            "‖b−Ax‖/‖b‖ ours",
            "‖b−Ax‖/‖b‖ scipy",
            "time ours (ms)",
            "time scipy (ms)",
            "ratio",
            "CPU ratio",
        ],
        [
            [
                r["system"],
                r["form"],
                r["n"],
                f"{r['kappa']:.1e}",
                r["iterations_ours"],
                r["iterations_scipy"],
                f"{r['status_ours']} / {scipy_status(r['info_scipy'])}",
                f"{r['relres_ours']:.2e}",
                f"{r['relres_scipy']:.2e}",
                f"{1e3 * r['time_ours_s']:.1f}",
                f"{1e3 * r['time_scipy_s']:.1f}",
                f"{r['time_ratio']:.2f}",
                f"{r['cpu_ratio']:.2f}",
            ]
            for r in rows
        ],
        align="lllrrrlrrrrrr",
    )
    s = meta["summary"]
    m = meta["machine"]
    notes = [f"- {r['system']}: {r['note']}." for r in rows if r["note"] and r["form"] == "sparse"]
    failed = [f"- **Failed:** {f['system']} ({f['form']}): {f['error']}" for f in meta["failures"]]
    status = [] if meta["complete"] else [
        f"**Incomplete:** {len(rows) + len(failed)} cases so far (the run is in progress or "
        "stopped).", ""]
    summary = [
        f"**Iterations:** ours ≤ scipy on {s['iterations_not_more']} of {s['cases']} cases "
        f"(max difference ours − scipy: {s['max_iteration_excess']}).  ",
        f"**Time ratio (wall, median):** median over cases {s['median_time_ratio']:.2f}, "
        f"max {s['max_time_ratio']:.2f}; ≤ {GOAL_TIME_RATIO} on {s['time_goal_met']} of "
        f"{s['cases']} cases.  ",
        f"**CPU-time ratio:** median {s['median_cpu_ratio']:.2f}, "
        f"max {s['max_cpu_ratio']:.2f}.",
    ] if s else ["No case finished."]
    return "\n".join(
        [
            "# Conjugate gradient: trustregion.cg vs scipy.sparse.linalg.cg",
            "",
            f"Same operator object and `rtol={meta['rtol']}`, `atol=0`, same `maxiter` for both; "
            f"b standard normal. Times are medians of {meta['repeats']} runs per solver (more, "
            f"up to {MAX_REPEATS}, for solves under {MIN_TIME_S / meta['repeats']:.2g} s), "
            "interleaved; ratio = ours / scipy (wall), CPU ratio = the same for process CPU "
            "time. Iterations of scipy counted by a callback in an untimed run.",
            "",
            table,
            "",
            *status,
            *summary,
            "",
            *notes,
            *failed,
            "",
            f"Command: `{meta['command']}`; {meta['date']}; {m['platform']}, "
            f"{m['cpu_count']} CPUs, load average before {meta['load_average_before']}, "
            f"after {m['load_average']}; numpy {m['numpy']}, scipy {m['scipy']}; code "
            f"{m['code_version']}; BLAS threads {m['blas_threads']} (see `_common.py`).",
            "",
        ]
    )


def summarize(rows) -> dict | None:
    """Iteration and time-ratio summary of the finished cases (None if there are none)."""
    if not rows:
        return None
    excess = [r["iterations_ours"] - r["iterations_scipy"] for r in rows]
    ratios = [r["time_ratio"] for r in rows]
    cpu_ratios = [r["cpu_ratio"] for r in rows]
    return {
        "cases": len(rows),
        "iterations_not_more": sum(e <= 0 for e in excess),
        "max_iteration_excess": max(excess),
        "median_time_ratio": statistics.median(ratios),
        "max_time_ratio": max(ratios),
        "time_goal_met": sum(r <= GOAL_TIME_RATIO for r in ratios),
        "median_cpu_ratio": statistics.median(cpu_ratios),
        "max_cpu_ratio": max(cpu_ratios),
        "goal": f"iterations ours <= scipy and time ratio <= {GOAL_TIME_RATIO}",
    }


def write_results(args, rows, failures, command, load_before, complete) -> tuple[dict, str]:
    """``cg.json`` and ``cg.md`` for the cases done so far (atomically); both contents."""
    meta = {
        "benchmark": "cg",
        "command": command,
        "date": timestamp(),
        "machine": machine_info(),
        "load_average_before": load_before,
        "rtol": args.rtol,
        "repeats": args.repeats,
        "budget": args.budget,
        "quick": args.quick,
        "complete": complete,
        "summary": summarize(rows),
        "failures": failures,
    }
    out = {**meta, "cases": rows}
    md = markdown(rows, meta)
    # a run with failed cases keeps the last finished results too
    save_results(Path(args.out), "cg", out, md, complete and not failures)
    return out, md


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed runs per solver")
    parser.add_argument("--rtol", type=tolerance, default=1e-8,
                        help="relative tolerance, in (0, 1)")
    parser.add_argument("--budget", type=positive_int, default=2000,
                        help="iterations for 1-D n=1e5")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="results directory")
    args = parser.parse_args(argv)

    command = command_line("bench_cg.py", argv)
    load_before = machine_info()["load_average"]
    rows, failures = [], []
    for i, (name, A, kappa, maxiter, note) in enumerate(systems(args.quick, args.budget)):
        forms = ["sparse" if sp.issparse(A) else "ndarray", "LinearOperator"]
        for form in forms:
            try:
                row = run_case(name, A, kappa, maxiter, note, form, args.rtol, args.repeats,
                               seed=i)
            except Exception as exc:  # noqa: BLE001 - one failed case must not lose the rest
                error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                failures.append({"system": name, "form": form, "error": error})
                print(f"{name:28s} {form:15s} FAILED: {error}", file=sys.stderr, flush=True)
            else:
                rows.append(row)
                print(
                    f"{name:28s} {form:15s} iters {row['iterations_ours']:6d} / "
                    f"{row['iterations_scipy']:6d}  relres {row['relres_ours']:.1e} / "
                    f"{row['relres_scipy']:.1e}  time {1e3 * row['time_ours_s']:9.1f} / "
                    f"{1e3 * row['time_scipy_s']:9.1f} ms  ratio {row['time_ratio']:.2f} "
                    f"(cpu {row['cpu_ratio']:.2f})",
                    file=sys.stderr,
                    flush=True,
                )
            write_results(args, rows, failures, command, load_before, complete=False)

    out, md = write_results(args, rows, failures, command, load_before, complete=True)
    print(md)
    return out


if __name__ == "__main__":
    sys.exit(1 if main()["failures"] else 0)
