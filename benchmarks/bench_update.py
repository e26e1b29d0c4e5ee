"""Time per TRPO update (sampling excluded), split into its parts, against raw env stepping.

Goal (issue "algorithms", Benchmarks): time per TRPO update split into gradient, CG/FVP,
line search and value fit. Beside it, the time to step the same kind of vector env with
random actions for the same number of steps, and the ratio update / env-step.

The run's objects (vector env, policy, MLP value function, sampler, TRPO config) are
those of :func:`rl.train` with its defaults: 8 envs x 512 steps = 4096 steps per batch,
64x64 networks, ``max_kl`` 0.01, damping 0.1, 10 CG iterations, value fit by 5
trust-region steps; each environment is also timed with the variants of
:data:`VARIANTS` (float32 networks, and float32 with sb3-contrib's Adam critic). For
``--iterations`` iterations every variant samples a batch and runs the real
:meth:`rl.algorithms.base.PolicyOptimizer.update` on it (with
:func:`rl.algorithms.trpo.trpo_step`), its parts timed by wrappers around the functions
it calls (:func:`time.perf_counter`):

- ``advantages``: GAE and value targets and building the
  :class:`~rl.algorithms.objective.PolicyObjective` (the update's ``time/advantages_s``);
- ``gradient``: ``PolicyObjective.value_and_gradient``, the surrogate at θ_old and its
  gradient from one forward and one backward pass;
- ``cg_fvp``: ``PolicyObjective.fisher_operator`` and :func:`trustregion.natural_step`
  (CG plus the ``dᵀFd`` product); the number of FVPs and their own time are counted by a
  wrapper on the operator;
- ``line_search``: :func:`trustregion.backtracking` with TRPO's acceptance test
  (surrogate improves and mean KL ≤ δ);
- ``kl_diagnostics``: the rest of the policy step (``time/policy_step_s`` less the three
  above): the mean and max KL at the accepted θ from one pass, and the diagnostics;
- ``value_fit``: the update's ``time/value_fit_s`` (``baseline.fit``, and the explained
  variance before it where the baseline does not report it itself).

``update_total`` is the update's own ``time/update_s``. The policy moves to the accepted
θ, so the timings follow a policy that learns. The variants run side by side, their order
alternating from iteration to iteration. ``env_random`` steps a second vector env built
the same way (same id, same number of sub-environments, synchronous) for
``steps_per_env`` vector steps with uniformly random actions, once per iteration, before
the updates in odd iterations and after them in even ones. Medians over the iterations
after ``--warmup``.

Run::

    python benchmarks/bench_update.py                       # CartPole, Pendulum, Hopper

Results: ``benchmarks/results/update.json`` and ``update.md`` (written atomically).
``OPENBLAS_NUM_THREADS=1`` is set before numpy is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    machine_info,
    markdown_table,
    positive_int,
    save_results,
    timestamp,
)
from scipy.sparse.linalg import LinearOperator  # noqa: E402

import trustregion as tr  # noqa: E402
from rl.algorithms.objective import PolicyObjective  # noqa: E402
from rl.envs import make_vector_env  # noqa: E402
from rl.train import Run, resolve_config  # noqa: E402

PARTS = ("advantages", "gradient", "cg_fvp", "line_search", "kl_diagnostics", "value_fit")
DEFAULT_ENVS = ("CartPole-v1", "Pendulum-v1", "Hopper-v5")
VARIANTS = {
    "defaults": {},
    "float32": {"dtype": "float32"},
    "float32, Adam critic": {"dtype": "float32", "value_optimizer": "adam",
                             "value_iterations": 10, "value_minibatch_size": 128},
}
"""Settings timed side by side: the runner's defaults (float64, trust-region value fit), the
same in float32, and float32 with sb3-contrib's critic (10 Adam epochs, minibatch 128)."""


class CountingOperator(LinearOperator):
    """Wraps a LinearOperator; counts its products and the seconds spent in them."""

    def __init__(self, A):
        super().__init__(dtype=np.float64, shape=A.shape)
        self.A = A
        self.count = 0
        self.seconds = 0.0

    def _matvec(self, v):
        t = time.perf_counter()
        out = self.A.matvec(v)
        self.seconds += time.perf_counter() - t
        self.count += 1
        return out


class _Timer:
    """Seconds spent in the wrapped calls, summed."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        @functools.wraps(fn)
        def timed_call(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t

        return timed_call


@contextlib.contextmanager
def _instrumented(timers: dict, counters: list):
    """Time the pieces of the real ``trpo_step`` while the block runs: the gradient
    (``PolicyObjective.value_and_gradient``), the Fisher operator and the natural step
    (CG and its FVPs, each FVP counted by a :class:`CountingOperator`), and the line
    search (``trustregion.backtracking``)."""
    originals = (PolicyObjective.value_and_gradient, PolicyObjective.fisher_operator,
                 tr.natural_step, tr.backtracking)

    def counted_fisher(self, *args, **kwargs):
        op = CountingOperator(originals[1](self, *args, **kwargs))
        counters.append(op)
        return op

    PolicyObjective.value_and_gradient = timers["gradient"].wrap(originals[0])
    PolicyObjective.fisher_operator = timers["cg_fvp"].wrap(counted_fisher)
    tr.natural_step = timers["cg_fvp"].wrap(originals[2])
    tr.backtracking = timers["line_search"].wrap(originals[3])
    try:
        yield
    finally:
        (PolicyObjective.value_and_gradient, PolicyObjective.fisher_operator,
         tr.natural_step, tr.backtracking) = originals


def instrumented_update(algo, batch) -> dict:
    """One real ``algo.update(batch)`` (``PolicyOptimizer.update`` with ``trpo_step``),
    its parts timed by wrappers around the functions it calls.

    ``advantages``, ``value_fit`` and ``update_total`` are the update's own timings
    (``time/advantages_s``, ``time/value_fit_s``, ``time/update_s``); ``gradient``,
    ``cg_fvp`` and ``line_search`` are the time inside the wrapped calls, and
    ``kl_diagnostics`` the rest of the policy step (``time/policy_step_s``): the mean and
    max KL at the accepted step and the diagnostics.
    """
    timers = {k: _Timer() for k in ("gradient", "cg_fvp", "line_search")}
    counters: list[CountingOperator] = []
    with _instrumented(timers, counters):
        diag = algo.update(batch)
    t = {"advantages": diag["time/advantages_s"], "value_fit": diag["time/value_fit_s"],
         "update_total": diag["time/update_s"],
         **{k: timer.seconds for k, timer in timers.items()}}
    t["kl_diagnostics"] = diag["time/policy_step_s"] - sum(timers[k].seconds for k in timers)
    return {"times": t, "fvp_count": sum(op.count for op in counters),
            "fvp_s": sum(op.seconds for op in counters), "cg_nit": int(diag["cg/nit"]),
            "line_search_steps": int(diag["trpo/line_search_steps"]),
            "line_search_success": bool(diag["trpo/line_search_success"]),
            "kl": float(diag["trpo/kl"])}


def random_actions(space, n, rng):
    if hasattr(space, "n"):
        return rng.integers(0, int(space.n), size=n)
    low, high = space.low, space.high
    return rng.uniform(low, high, size=(n,) + tuple(space.shape)).astype(space.dtype)


def time_env_random(venv, vector_steps, rng) -> float:
    space = venv.single_action_space
    n = venv.num_envs
    start = time.perf_counter()
    for _ in range(vector_steps):
        venv.step(random_actions(space, n, rng))
    return time.perf_counter() - start


def bench_env(env_id: str, iterations: int, warmup: int, seed: int,
              variants=tuple(VARIANTS)) -> list[dict]:
    """Every variant on ``env_id``, side by side: in each iteration every variant samples
    and updates once, in an order that alternates from iteration to iteration (ABBA), and
    the random-action env arm runs before the updates in odd iterations and after them in
    even ones."""
    runs = {}
    for variant in variants:
        cfg, algo_cfg = resolve_config("trpo", env_id, seed=seed, overrides=VARIANTS[variant])
        runs[variant] = (cfg, Run(cfg, algo_cfg))
    cfg = runs[variants[0]][0]
    venv_random = make_vector_env(env_id, cfg.num_envs, seed=seed + 1)
    venv_random.reset(seed=seed + 1)
    rng = np.random.default_rng(seed)
    rows = {variant: [] for variant in variants}
    env_rows = []
    try:
        for k in range(warmup + iterations):
            if k % 2:
                env_rows.append(time_env_random(venv_random, cfg.steps_per_env, rng))
            for variant in (variants if k % 2 == 0 else variants[::-1]):
                run = runs[variant][1]
                t0 = time.perf_counter()
                batch = run.sampler.sample()
                sample_s = time.perf_counter() - t0
                row = instrumented_update(run.algo, batch)
                row["sample_s"] = sample_s
                row["episode_return_mean"] = (float(np.mean(batch.episode_returns))
                                              if len(batch.episode_returns) else float("nan"))
                row["warmup"] = k < warmup
                rows[variant].append(row)
            if k % 2 == 0:
                env_rows.append(time_env_random(venv_random, cfg.steps_per_env, rng))
    finally:
        for _cfg, run in runs.values():
            run.close()
        venv_random.close()
    env_s = statistics.median(env_rows[warmup:])
    return [_summary(env_id, variant, runs[variant], rows[variant], env_s) for variant in variants]


def _summary(env_id, variant, cfg_run, rows, env_s) -> dict:
    cfg, run = cfg_run
    timed = [r for r in rows if not r["warmup"]]

    def med(fn):
        return statistics.median(fn(r) for r in timed)

    parts = {p: med(lambda r, p=p: r["times"][p]) for p in PARTS + ("update_total",)}
    sample_s = med(lambda r: r["sample_s"])
    fvp_count = med(lambda r: r["fvp_count"])
    fvp_s = med(lambda r: r["fvp_s"])
    return {
        "env": env_id,
        "variant": variant,
        "settings": VARIANTS[variant],
        "batch_size": cfg.batch_size,
        "num_envs": cfg.num_envs,
        "steps_per_env": cfg.steps_per_env,
        "num_params": int(run.policy.num_params),
        "iterations_timed": len(timed),
        "median_s": parts,
        "median_env_random_s": env_s,
        "median_sample_s": sample_s,
        "median_fvp_count": fvp_count,
        "median_fvp_time_s": fvp_s,
        "median_s_per_fvp": fvp_s / fvp_count if fvp_count else float("nan"),
        "ratio_update_to_env_random": parts["update_total"] / env_s,
        "ratio_sample_to_env_random": sample_s / env_s,
        "per_iteration": rows,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--iterations", type=positive_int, default=8,
                        help="timed iterations per env")
    parser.add_argument("--warmup", type=int, default=2, choices=range(0, 101),
                        metavar="{0..100}", help="untimed first iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)

    load_before = machine_info()["load_average"]
    results, skipped, envs = [], {}, []
    for env_id in args.envs:  # every env is made once before any timing
        try:
            make_vector_env(env_id, 1).close()
        except Exception as exc:  # noqa: BLE001 - any failure to make it is reported
            if env_id.startswith(("Hopper", "Walker", "HalfCheetah", "Ant", "Humanoid",
                                  "Swimmer")):
                skipped[env_id] = f"the MuJoCo environment cannot be made: {exc}"
                continue
            parser.error(f"--envs: {env_id!r} cannot be made: {exc}")
        envs.append(env_id)
    variants = tuple(dict.fromkeys(args.variants))

    for k, env_id in enumerate(envs):
        results.extend(bench_env(env_id, args.iterations, args.warmup, args.seed, variants))
        result, md = _report(args, argv, results, skipped, load_before,
                             complete=k == len(envs) - 1)
    if not envs:
        result, md = _report(args, argv, results, skipped, load_before, complete=True)
    print(md)
    return result


def _report(args, argv, results, skipped, load_before, complete) -> tuple[dict, str]:
    """``update.json`` / ``update.md`` for the environments done so far (``.partial``
    files until every environment is done, so the last finished results stay)."""
    rows = []
    for r in results:
        m = r["median_s"]
        rows.append([r["env"], r["variant"], r["batch_size"], r["num_params"],
                     *(f"{1e3 * m[p]:.0f}" for p in PARTS),
                     f"{1e3 * m['update_total']:.0f}",
                     f"{r['median_fvp_count']:.0f} × {1e3 * r['median_s_per_fvp']:.1f}",
                     f"{1e3 * r['median_env_random_s']:.0f}",
                     f"{1e3 * r['median_sample_s']:.0f}",
                     f"{r['ratio_update_to_env_random']:.1f}",
                     f"{r['ratio_sample_to_env_random']:.1f}"])
    table = markdown_table(
        ["env", "settings", "batch", "policy params", "advantages (ms)", "gradient (ms)",
         "CG/FVP (ms)",
         "line search (ms)", "KL diagnostics (ms)", "value fit (ms)", "update total (ms)",
         "FVPs × ms each", "env, random actions (ms)", "sampling (ms)",
         "update / env-step", "sampling / env-step"], rows, "ll" + "r" * 14)
    result = {
        "benchmark": "update",
        "results": results,
        "skipped": skipped,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "machine": machine_info(),
        "load_average_before": load_before,
        "command": command_line("bench_update.py", argv),
        "date": timestamp(),
    }
    md = "\n".join([
        "# Time per TRPO update, split into its parts",
        "",
        "Settings: " + "; ".join(f"**{k}** {v or '(rl.train defaults)'}"
                                 for k, v in VARIANTS.items()) + ". "
        f"Medians over {args.iterations} iterations after "
        f"{args.warmup} warm-up iterations; times per iteration for one batch. The settings "
        "run side by side, their order alternating from iteration to iteration; the parts "
        "are timed inside the real `PolicyOptimizer.update` (see the script's docstring). "
        "`env, random actions` steps an identical vector env with uniformly random actions "
        "for the same number of steps; `sampling` is `SinglePathSampler.sample()` (not part "
        "of the update).",
        "",
        table,
        "",
        *([f"Not run: {k} ({v})." for k, v in skipped.items()] + [""] if skipped else []),
        f"Command: `{result['command']}`; {result['date']}; OPENBLAS_NUM_THREADS="
        f"{result['blas_threads']}; load average before {load_before}, after "
        f"{result['machine']['load_average']} ({result['machine']['cpu_count']} CPUs).",
        "",
    ])
    save_results(args.out, "update", result, md, complete)
    return result, md


if __name__ == "__main__":
    main()
