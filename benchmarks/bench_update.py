"""Time per TRPO update (sampling excluded), split into its parts, against raw env stepping.

Goal (issue "algorithms", Benchmarks): time per TRPO update split into gradient, CG/FVP,
line search and value fit. Beside it, the time to step the same kind of vector env with
random actions for the same number of steps, and the ratio update / env-step.

The run's objects (vector env, policy, MLP value function, sampler, TRPO config) are
those of :func:`rl.train` with its defaults: 8 envs x 512 steps = 4096 steps per batch,
64x64 networks, ``max_kl`` 0.01, damping 0.1, 10 CG iterations, value fit by 5
trust-region steps; each environment is also timed with the variants of
:data:`VARIANTS` (float32 networks, and float32 with sb3-contrib's Adam critic). For
``--iterations`` iterations the script samples a batch, then runs
the pieces of :meth:`rl.algorithms.base.PolicyOptimizer.update` and
:func:`rl.algorithms.trpo.trpo_step` in the same order and with the same arguments, each
timed with :func:`time.perf_counter`:

- ``advantages``: GAE and value targets (:func:`rl.advantages.compute_advantages`) and
  building the :class:`~rl.algorithms.objective.PolicyObjective`;
- ``gradient``: the surrogate at θ_old and its gradient;
- ``cg_fvp``: building the damped Fisher operator and :func:`trustregion.natural_step`
  (CG plus the ``dᵀFd`` product); the number of FVPs and their own time are counted by a
  wrapper on the operator;
- ``line_search``: :func:`trustregion.backtracking` with TRPO's acceptance test
  (surrogate improves and mean KL ≤ δ);
- ``kl_diagnostics``: the mean and max KL at the accepted θ that ``trpo_step`` reports;
- ``value_fit``: explained variance before the fit and ``baseline.fit``.

The policy is then moved to the accepted θ, so the timings follow a policy that learns.
``env_random`` steps a second vector env built the same way (same id, same number of
sub-environments, synchronous) for ``steps_per_env`` vector steps with uniformly random
actions, interleaved with the updates. Medians over the iterations after ``--warmup``.

Run::

    python benchmarks/bench_update.py                       # CartPole, Pendulum, Hopper

Results: ``benchmarks/results/update.json`` and ``update.md`` (written atomically).
``OPENBLAS_NUM_THREADS=1`` is set before numpy is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    machine_info,
    markdown_table,
    timestamp,
    write_atomic,
    write_json,
)
from scipy.sparse.linalg import LinearOperator  # noqa: E402

import trustregion as tr  # noqa: E402
from rl.advantages import compute_advantages, explained_variance  # noqa: E402
from rl.algorithms.objective import PolicyObjective  # noqa: E402
from rl.envs import make_vector_env  # noqa: E402
from rl.train import _Run, resolve_config  # noqa: E402

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


def instrumented_update(algo, batch) -> dict:
    """One TRPO update on ``batch`` as ``PolicyOptimizer.update`` / ``trpo_step`` do it."""
    cfg = algo.config
    policy, baseline = algo.policy, algo.baseline
    t = {}

    t0 = time.perf_counter()
    adv, targets = compute_advantages(batch, baseline, cfg.gamma, cfg.lam,
                                      normalize=cfg.normalize_advantages)
    objective = PolicyObjective.from_arrays(
        policy, batch.flat("observations"), batch.flat("actions"), adv.reshape(-1),
        batch.flat("log_probs"), batch.flat("dist_params"))
    t1 = time.perf_counter()
    t["advantages"] = t1 - t0

    # trpo_step, step 1: g = grad L(theta_old)
    theta_old = objective.theta_old
    L_old = float(objective.surrogate(theta_old))
    g = objective.gradient()
    t2 = time.perf_counter()
    t["gradient"] = t2 - t1

    # step 2: d ~ F^{-1} g by CG on the damped Fisher, maximal step beta d
    F = objective.fisher_operator(fraction=cfg.fisher_fraction, rng=algo.rng)
    if cfg.damping > 0:
        F = tr.damped(F, cfg.damping)
    F = CountingOperator(F)
    ns = tr.natural_step(g, F, cfg.max_kl, maxiter=cfg.cg_iterations, rtol=cfg.cg_rtol)
    t3 = time.perf_counter()
    t["cg_fvp"] = t3 - t2

    # step 3: backtracking until the surrogate improves and mean KL <= delta
    theta, ls_steps, ls_ok = theta_old, 0, False
    if ns.success:
        kl = objective.max_kl if cfg.constraint == "max" else objective.mean_kl

        def accept(th, L):
            return bool(L > L_old) and float(kl(th)) <= cfg.max_kl

        ls = tr.backtracking(objective.surrogate, theta_old, ns.step, step=1.0,
                             shrink=cfg.backtrack_shrink, max_steps=cfg.max_backtracks,
                             accept=accept, f0=L_old)
        theta = ls.x if ls.success else theta_old
        ls_steps, ls_ok = int(ls.nsteps), bool(ls.success)
    t4 = time.perf_counter()
    t["line_search"] = t4 - t3
    mean_kl = float(objective.mean_kl(theta))
    objective.max_kl(theta)
    t5 = time.perf_counter()
    t["kl_diagnostics"] = t5 - t4
    policy.theta = theta

    # value fit, as PolicyOptimizer.update does it
    obs, ts, y = batch.flat("observations"), batch.flat("timesteps"), targets.reshape(-1)
    explained_variance(baseline.predict(obs, ts), y)
    baseline.fit(obs, y, ts)
    t6 = time.perf_counter()
    t["value_fit"] = t6 - t5
    t["update_total"] = t6 - t0
    return {"times": t, "fvp_count": F.count, "fvp_s": F.seconds, "cg_nit": int(ns.cg.nit),
            "line_search_steps": ls_steps, "line_search_success": ls_ok, "kl": mean_kl}


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
              variant: str = "defaults") -> dict:
    cfg, algo_cfg = resolve_config("trpo", env_id, seed=seed, overrides=VARIANTS[variant])
    run = _Run(cfg, algo_cfg)
    venv_random = make_vector_env(env_id, cfg.num_envs, seed=seed + 1)
    venv_random.reset(seed=seed + 1)
    rng = np.random.default_rng(seed)
    rows = []
    try:
        for k in range(warmup + iterations):
            t0 = time.perf_counter()
            batch = run.sampler.sample()
            sample_s = time.perf_counter() - t0
            row = instrumented_update(run.algo, batch)
            row["sample_s"] = sample_s
            row["env_random_s"] = time_env_random(venv_random, cfg.steps_per_env, rng)
            row["episode_return_mean"] = (float(np.mean(batch.episode_returns))
                                          if len(batch.episode_returns) else float("nan"))
            row["warmup"] = k < warmup
            rows.append(row)
    finally:
        run.close()
        venv_random.close()
    timed = [r for r in rows if not r["warmup"]]

    def med(fn):
        return statistics.median(fn(r) for r in timed)

    parts = {p: med(lambda r, p=p: r["times"][p]) for p in PARTS + ("update_total",)}
    env_s = med(lambda r: r["env_random_s"])
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
    parser.add_argument("--iterations", type=int, default=8, help="timed iterations per env")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)

    load_before = machine_info()["load_average"]
    results, skipped = [], {}
    for env_id in args.envs:
        if env_id.startswith(("Hopper", "Walker", "HalfCheetah", "Ant", "Humanoid", "Swimmer")):
            try:
                import mujoco  # noqa: F401
            except ImportError as exc:
                skipped[env_id] = f"mujoco does not import: {exc}"
                continue
        for variant in args.variants:
            results.append(bench_env(env_id, args.iterations, args.warmup, args.seed, variant))

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
        f"{args.warmup} warm-up iterations; times per iteration for one batch. "
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
    write_json(args.out / "update.json", result)
    write_atomic(args.out / "update.md", md)
    print(md)
    return result


if __name__ == "__main__":
    main()
