"""K-FAC as the preconditioner of TRPO's conjugate gradient, and as a direction of its own.

Question (issue "K-FAC"): on real TRPO batches, does CG preconditioned by the exact inverse of
the K-FAC approximation (Martens & Grosse 2015) reach the same residual with fewer Fisher
products and in less time, and does TRPO's usual budget of 10 iterations give a better step?

The batches are those of :func:`rl.train` with its defaults (8 envs x 512 steps, 64x64
networks, damping 0.1): for each environment the runner trains with plain TRPO and, every
``--every`` iterations (default 15), the batch just sampled is taken (``--batches`` of
them), before the update on it. On each batch, with ``g`` the surrogate's gradient and ``F``
the damped Fisher operator of the objective TRPO builds
(:meth:`PolicyObjective.fisher_operator` plus :func:`trustregion.damped`):

* **to a residual** ``||g - F d|| <= rtol ||g||`` (``--rtol``, several): plain CG against CG
  preconditioned by ``M = K^{-1}`` (:func:`rl.kfac.kfac_fisher_operator`, same damping, the
  :math:`\\pi` split), both by :func:`trustregion.cg` from zero with ``maxiter`` 500. Reported:
  iterations, Fisher products (``nmatvec``, the residual check included), and wall time of
  the whole solve, K-FAC's construction (factors, eigendecompositions) included for the
  preconditioned arm; medians of ``--repeats`` interleaved rounds (ABBA), side by side.
* **at TRPO's budget** (10 iterations, :func:`trustregion.natural_step` with ``max_kl``
  0.01), and for ``direction="kfac"`` (one preconditioned iteration, the ACKTR-style
  step): the relative residual reached, and the quality of the step at the same KL
  radius, measured against the converged step :math:`s^\\star` (CG to rtol 1e-10): the
  linear gain :math:`g^T s` relative to :math:`g^T s^\\star` (the KL of the quadratic model
  is :math:`\\delta` for every arm, by construction), and the cosine of :math:`s` and
  :math:`s^\\star` in the :math:`F` inner product.

``--learning`` runs a short learning comparison instead: :func:`rl.train` of TRPO with the
runner's defaults on ``--learning-env`` (CartPole-v1) for ``--learning-steps`` (100k) steps
and ``--seeds`` (0-4), in three settings -- plain CG, ``preconditioner=kfac``,
``direction=kfac`` -- one after the other per seed, their order rotating from seed to seed.
Reported per setting: the final deterministic evaluation return (mean and min over seeds),
the wall-clock and CPU time of the whole run, and the training return reached within the
training CPU time (evaluation excluded) the fastest setting of the seed needed (the mean
episode return of the last iteration finished by then), so the settings are compared at
equal steps and at equal time. CPU time (``time.process_time``, one BLAS thread) stands in
for wall-clock because other processes on a shared machine disturb it less. Not measured:
the same on the MuJoCo tasks (a million steps per run).

Run::

    python benchmarks/bench_kfac.py                        # CartPole-v1 and Hopper-v5
    python benchmarks/bench_kfac.py --quick                # one batch per env, 3 repeats
    python benchmarks/bench_kfac.py --learning             # CartPole-v1, 3 settings x 5 seeds
    python benchmarks/bench_kfac.py --learning --learning-env Hopper-v5 --learning-steps 50000

Results: ``benchmarks/results/kfac.json`` and ``kfac.md``, ``--learning``:
``kfac_learning_<env>.json`` and ``.md`` (written atomically).
``OPENBLAS_NUM_THREADS=1`` is set before numpy is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
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

import trustregion as tr  # noqa: E402
from rl.advantages import compute_advantages  # noqa: E402
from rl.algorithms.objective import PolicyObjective  # noqa: E402
from rl.kfac import kfac_fisher_operator  # noqa: E402
from rl.train import Run, resolve_config  # noqa: E402

DEFAULT_ENVS = ("CartPole-v1", "Hopper-v5")
RTOLS = (1e-1, 1e-2, 1e-3)
MAX_KL = 0.01
BUDGET = 10
MAXITER = 500


def objective_of(algo, batch) -> PolicyObjective:
    """The objective TRPO's update builds from a single-path batch (advantages by GAE)."""
    cfg = algo.config
    adv, _ = compute_advantages(batch, algo.baseline, cfg.gamma, cfg.lam,
                                normalize=cfg.normalize_advantages)
    return PolicyObjective.from_arrays(
        algo.policy, batch.flat("observations"), batch.flat("actions"), adv.reshape(-1),
        batch.flat("log_probs"), batch.flat("dist_params"))


def bench_env(env_id: str, count: int, every: int, seed: int, repeats: int) -> list[dict]:
    """``count`` rows from one plain-TRPO run: the batch of every ``every``-th iteration,
    measured before the update on it (the policy and its observation normaliser are then
    still those that built the batch)."""
    cfg, algo_cfg = resolve_config("trpo", env_id, seed=seed)
    run = Run(cfg, algo_cfg)
    rows = []
    try:
        k = 0
        while len(rows) < count:
            batch = run.sampler.sample()
            if k % every == 0:
                print(f"{env_id}: the batch of iteration {k}", file=sys.stderr)
                rows.append(bench_batch(env_id, k, objective_of(run.algo, batch),
                                        algo_cfg.damping, repeats))
            run.algo.update(batch)
            k += 1
    finally:
        run.close()
    return rows


def f_inner(F, a, b) -> float:
    return float(a @ (F @ b))


def bench_batch(env_id, k, objective, damping, repeats) -> dict:
    g = objective.gradient()
    policy = objective.policy
    theta = objective.theta_old
    F = tr.damped(objective.fisher_operator(), damping)

    def kfac_inverse():
        return kfac_fisher_operator(policy, objective.observations, objective.weights,
                                    theta=theta, damping=damping).inverse()

    g_norm = float(np.linalg.norm(g))
    ref = tr.cg(F, g, rtol=1e-10, maxiter=MAXITER)
    s_star = tr.natural_step(g, F, MAX_KL, rtol=1e-10, maxiter=MAXITER).step
    row = {"env": env_id, "iteration": k, "num_params": int(g.size),
           "batch": int(objective.weights.size), "reference_residual": ref.residual_norm / g_norm,
           "reference_nit": ref.nit, "to_residual": [], "at_budget": {}}
    kfac_s = interleaved_medians({"kfac_build": kfac_inverse}, repeats)["kfac_build"]
    row["kfac_build_s"] = kfac_s["median_s"]
    M_fixed = kfac_s["result"]
    for rtol in RTOLS:
        arms = {
            "plain": lambda rtol=rtol: tr.cg(F, g, rtol=rtol, maxiter=MAXITER),
            "kfac": lambda rtol=rtol: tr.cg(F, g, M=kfac_inverse(), rtol=rtol, maxiter=MAXITER),
        }
        timed = interleaved_medians(arms, repeats)
        entry = {"rtol": rtol}
        for name, t in timed.items():
            res = t["result"]
            entry[name] = {"nit": res.nit, "nmatvec": res.nmatvec,
                           "residual": res.residual_norm / g_norm,
                           "success": bool(res.success), "median_s": t["median_s"],
                           "cpu_median_s": t["cpu_median_s"]}
        entry["time_ratio_kfac_over_plain"] = entry["kfac"]["median_s"] / entry["plain"]["median_s"]
        entry["matvec_ratio_kfac_over_plain"] = entry["kfac"]["nmatvec"] / entry["plain"]["nmatvec"]
        row["to_residual"].append(entry)
    gain_star = float(g @ s_star)
    for name, kw in {"plain CG, 10 it.": {"maxiter": BUDGET},
                     "K-FAC PCG, 10 it.": {"maxiter": BUDGET, "M": M_fixed},
                     "K-FAC direction (1 PCG it.)": {"maxiter": 1, "M": M_fixed}}.items():
        ns = tr.natural_step(g, F, MAX_KL, rtol=1e-10, **kw)
        s = ns.step
        row["at_budget"][name] = {
            "nmatvec": ns.cg.nmatvec,
            "residual": ns.cg.residual_norm / g_norm,
            "gain_over_converged": float(g @ s) / gain_star,
            "cosine_F": f_inner(F, s, s_star) / np.sqrt(f_inner(F, s, s) * f_inner(F, s_star,
                                                                                  s_star)),
        }
    return row


LEARNING_SETTINGS = {
    "plain CG": {},
    "preconditioner=kfac": {"preconditioner": "kfac"},
    "direction=kfac": {"direction": "kfac"},
}


def learning(args, argv) -> dict:
    """TRPO's three settings trained side by side, seed by seed (see the module docstring)."""
    import tempfile

    from rl.train import train

    runs = []
    names = list(LEARNING_SETTINGS)
    for i, seed in enumerate(args.seeds):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            times, cpu_times, returns = [], [], []
            start, cpu_start = time.perf_counter(), time.process_time()

            def record(row, start=start, cpu_start=cpu_start, times=times, cpu_times=cpu_times,
                       returns=returns):
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
                returns.append(float(row.get("episode/return_mean", float("nan"))))

            with tempfile.TemporaryDirectory() as tmp:
                result = train("trpo", args.learning_env, steps=args.learning_steps, seed=seed,
                               out=Path(tmp) / "run", config=LEARNING_SETTINGS[name],
                               progress=False, plot=False, callback=record)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            print(f"{name} seed {seed}: eval {result.evaluation['eval/return_mean']:.1f} in "
                  f"{wall:.0f} s", file=sys.stderr)
            runs.append({"setting": name, "seed": seed, "wall_s": wall, "cpu_s": cpu,
                         "eval_return_mean": result.evaluation["eval/return_mean"],
                         "iteration_end_s": times, "iteration_end_cpu_s": cpu_times,
                         "train_return": returns})
    summary = {}
    for name in names:
        mine = [r for r in runs if r["setting"] == name]
        summary[name] = {
            "eval_mean": statistics.mean(r["eval_return_mean"] for r in mine),
            "eval_min": min(r["eval_return_mean"] for r in mine),
            "wall_mean_s": statistics.mean(r["wall_s"] for r in mine),
            "cpu_mean_s": statistics.mean(r["cpu_s"] for r in mine),
        }
    for seed in args.seeds:  # the training return at the fastest setting's CPU time
        mine = [r for r in runs if r["seed"] == seed]
        budget = min(r["iteration_end_cpu_s"][-1] for r in mine)  # training, not evaluation
        for r in mine:
            done = [ret for t, ret in zip(r["iteration_end_cpu_s"], r["train_return"],
                                          strict=True) if t <= budget]
            r["train_return_at_equal_time"] = done[-1] if done else float("nan")
            r["equal_time_budget_s"] = budget
    for name in names:
        vals = [r["train_return_at_equal_time"] for r in runs if r["setting"] == name]
        summary[name]["train_return_at_equal_time_mean"] = statistics.mean(vals)
    result = {
        "benchmark": "kfac_learning",
        "command": command_line("bench_kfac.py", argv),
        "timestamp": timestamp(),
        "machine": machine_info(),
        "settings": {"env": args.learning_env, "steps": args.learning_steps,
                     "seeds": args.seeds, "variants": LEARNING_SETTINGS},
        "summary": summary,
        "runs": runs,
        "not_measured": "the same on the MuJoCo tasks of the learning benchmark",
    }
    rows = [[name, f"{v['eval_mean']:.1f}", f"{v['eval_min']:.1f}", f"{v['wall_mean_s']:.1f}",
             f"{v['cpu_mean_s']:.1f}", f"{v['train_return_at_equal_time_mean']:.1f}"]
            for name, v in summary.items()]
    md = "\n".join([
        "# K-FAC in TRPO: a short learning comparison", "",
        f"Command: `{result['command']}`  ", f"Date: {result['timestamp']}", "",
        f"TRPO with the runner's defaults on {args.learning_env}, {args.learning_steps} steps, "
        f"seeds {args.seeds}; settings run one after the other per seed, order rotating.", "",
        markdown_table(["setting", "eval return (mean)", "eval return (min)", "wall s (mean)",
                        "CPU s (mean)", "train return at equal CPU time (mean)"], rows), "",
        "Equal CPU time: per seed, the mean episode return of the last iteration each "
        "setting finished within the training CPU time (this process, evaluation excluded) "
        "of that seed's fastest setting. CPU time rather than wall-clock: other processes "
        "share the machine and move the wall-clock of a run by a factor of up to 4.", "",
        "Not measured: " + result["not_measured"] + ".", ""])
    save_results(Path(args.out), f"kfac_learning_{args.learning_env}", result, md, complete=True)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--batches", type=positive_int, default=3)
    parser.add_argument("--every", type=positive_int, default=15)
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one batch per env, 3 repeats")
    parser.add_argument("--out", default=str(RESULTS_DIR))
    parser.add_argument("--learning", action="store_true",
                        help="the short learning comparison instead of the CG measurements")
    parser.add_argument("--learning-env", default="CartPole-v1")
    parser.add_argument("--learning-steps", type=positive_int, default=100_000)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    if args.learning:
        return learning(args, argv)
    if args.quick:
        args.batches, args.repeats = 1, 3
    rows = []
    for env_id in args.envs:
        rows += bench_env(env_id, args.batches, args.every, args.seed, args.repeats)
    result = {
        "benchmark": "kfac",
        "question": "K-FAC-preconditioned CG vs plain CG on TRPO batches: Fisher products and "
                    "time to the same residual; step quality at TRPO's budget",
        "command": command_line("bench_kfac.py", argv),
        "timestamp": timestamp(),
        "machine": machine_info(),
        "settings": {"rtols": RTOLS, "max_kl": MAX_KL, "budget": BUDGET, "maxiter": MAXITER,
                     "batches": args.batches, "every": args.every, "repeats": args.repeats,
                     "seed": args.seed},
        "rows": rows,
        "not_measured": "learning at equal wall-clock over >= 5 seeds",
    }
    save_results(Path(args.out), "kfac", result, report(result), complete=True)
    return result


def report(result) -> str:
    rows = result["rows"]
    lines = ["# K-FAC: preconditioner and direction for TRPO's CG", "",
             f"Command: `{result['command']}`  ", f"Date: {result['timestamp']}", ""]
    table = []
    for r in rows:
        for e in r["to_residual"]:
            p, k = e["plain"], e["kfac"]
            table.append([r["env"], r["iteration"], f"{e['rtol']:.0e}",
                          f"{p['nit']}" + ("" if p["success"] else " (cap)"),
                          f"{k['nit']}" + ("" if k["success"] else " (cap)"),
                          p["nmatvec"], k["nmatvec"],
                          f"{1e3 * p['median_s']:.1f}", f"{1e3 * k['median_s']:.1f}",
                          f"{e['time_ratio_kfac_over_plain']:.2f}"])
    lines += ["## To the same residual ||g - F d|| <= rtol ||g||", "",
              markdown_table(["env", "iter.", "rtol", "CG it.", "PCG it.", "CG F-prods",
                              "PCG F-prods", "CG ms", "PCG ms (incl. K-FAC)",
                              "time PCG/CG"], table), ""]
    build = [[r["env"], r["iteration"], r["num_params"], r["batch"],
              f"{1e3 * r['kfac_build_s']:.1f}"] for r in rows]
    lines += ["K-FAC construction (factors, eigendecompositions), median ms:", "",
              markdown_table(["env", "iter.", "params", "batch", "K-FAC build ms"], build), ""]
    table = []
    for r in rows:
        for name, b in r["at_budget"].items():
            table.append([r["env"], r["iteration"], name, b["nmatvec"], f"{b['residual']:.2e}",
                          f"{b['gain_over_converged']:.3f}"])
    lines += ["## At TRPO's budget, same KL radius (max_kl 0.01)", "",
              "The step is scaled to the quadratic KL boundary in every arm; `gain` is "
              "g^T s / g^T s*, s* the converged step. Since both steps have s^T F s = 2 delta "
              "and s* is parallel to F^-1 g, the gain is also the cosine of s and s* in the F "
              "inner product (the json's `cosine_F`, equal to it to rounding).", "",
              markdown_table(["env", "iter.", "arm", "F-prods", "rel. residual", "gain"],
                             table), "",
              "Not measured: " + result["not_measured"] + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
