"""Fisher-vector product cost against one policy-gradient evaluation, on the same batch.

Goal (issue "rl foundations", Performance): one FVP on a 64x64 Gaussian MLP and a batch
of 2048 costs at most 3x one policy-gradient evaluation on the same batch.

Arms, interleaved (ABBA order) for ``--repeats`` rounds and compared by their medians:

- ``gradient``: :meth:`rl.algorithms.objective.PolicyObjective.gradient` on a fresh
  objective — one forward pass of the network, autograd's gradient of the importance-ratio
  head in the distribution parameters, and one hand-written backward pass (the ``g`` of
  TRPO's step 1);
- ``fvp``: ``F @ v`` with ``F = objective.fisher_operator()`` built once outside the
  timer (as CG uses it: one build, ten products);
- ``build+fvp``: building the operator on a fresh objective and one product (what a
  single product costs when nothing is reused);
- ``surrogate``: one forward evaluation of the surrogate at a new θ, for scale (at θ_old
  the objective would reuse its last forward pass).

The FVP is ``J^T F_dist J v``: one forward-mode JVP and one VJP of the network
(TRPO paper, App. C.1), both written by hand on the cached activations
(:meth:`rl.networks.MLP.linearize`); building the operator is one forward pass. The
policies are a 64x64 ``GaussianMLP`` with 17-dim observations and 6-dim actions
(Hopper-like sizes) and a 64x64 ``CategoricalMLP`` on CartPole's 4-dim observations and
2 actions. Observations are standard normal, actions are
sampled from the policy, advantages are standard normal.

Run::

    python benchmarks/bench_fvp.py                 # batch 2048, 30 rounds

Results: ``benchmarks/results/fvp.json`` and ``fvp.md`` (written atomically).
``OPENBLAS_NUM_THREADS=1`` is set before numpy is imported (single-threaded BLAS;
multi-threaded BLAS on small matrices competes with itself on a loaded 2-core machine).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    interleaved_medians,
    machine_info,
    markdown_table,
    timestamp,
    write_atomic,
    write_json,
)

from rl.algorithms.objective import PolicyObjective  # noqa: E402
from rl.policies import CategoricalMLP, GaussianMLP  # noqa: E402

GOAL_RATIO = 3.0


def make_objective(policy, obs_dim: int, batch: int, seed: int):
    """A factory of fresh sampled objectives on one batch of ``batch`` standard-normal
    observations (a fresh objective shares no forward pass with an earlier one)."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((batch, obs_dim))
    actions, log_probs, params = policy.step(obs, rng)
    adv = rng.standard_normal(batch)
    return lambda: PolicyObjective.from_arrays(policy, obs, actions, adv, log_probs, params)


def bench_case(name: str, policy, obs_dim: int, batch: int, repeats: int, seed: int) -> dict:
    fresh = make_objective(policy, obs_dim, batch, seed)
    objective = fresh()
    v = np.random.default_rng(seed + 1).standard_normal(policy.num_params)
    F = objective.fisher_operator()
    thetas = [objective.theta_old + 1e-3 * v, objective.theta_old - 1e-3 * v]

    def theta_alternating():  # a different θ every call: no forward pass is reused
        thetas.reverse()
        return thetas[0]

    arms = {
        # fresh objectives: an objective linearises the policy once at theta_old and
        # shares it between its gradient and its Fisher operator (as one TRPO step does),
        # so these two arms would otherwise time that cached pass away
        "gradient": lambda: fresh().gradient(),
        "fvp": lambda: F @ v,
        "build+fvp": lambda: fresh().fisher_operator() @ v,
        "surrogate": lambda: float(objective.surrogate(theta_alternating())),
    }
    for fn in arms.values():  # warm-up
        fn()
    timings = interleaved_medians(arms, repeats)
    g = timings["gradient"]["median_s"]
    return {
        "case": name,
        "num_params": int(policy.num_params),
        "batch": batch,
        "median_s": {k: t["median_s"] for k, t in timings.items()},
        "min_s": {k: t["min_s"] for k, t in timings.items()},
        "cpu_median_s": {k: t["cpu_median_s"] for k, t in timings.items()},
        "times_s": {k: t["times_s"] for k, t in timings.items()},
        "ratio_fvp_to_gradient": timings["fvp"]["median_s"] / g,
        "ratio_build_fvp_to_gradient": timings["build+fvp"]["median_s"] / g,
        "ratio_fvp_to_gradient_cpu": (timings["fvp"]["cpu_median_s"]
                                      / timings["gradient"]["cpu_median_s"]),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    load_before = machine_info()["load_average"]
    cases = [
        bench_case("GaussianMLP 17→64→64→6 (Hopper-sized)",
                   GaussianMLP(17, 6, (64, 64), seed=args.seed), 17, args.batch, args.repeats,
                   args.seed),
        bench_case("CategoricalMLP 4→64→64→2 (CartPole-sized)",
                   CategoricalMLP(4, 2, (64, 64), seed=args.seed), 4, args.batch, args.repeats,
                   args.seed),
    ]
    gauss = cases[0]
    passed = bool(gauss["ratio_fvp_to_gradient"] <= GOAL_RATIO)
    result = {
        "benchmark": "fvp",
        "goal": f"FVP (GaussianMLP 64x64, batch 2048) / policy gradient <= {GOAL_RATIO}",
        "passed": passed,
        "goal_ratio": GOAL_RATIO,
        "cases": cases,
        "repeats": args.repeats,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "machine": machine_info(),
        "load_average_before": load_before,
        "command": command_line("bench_fvp.py", argv),
        "date": timestamp(),
    }

    rows = []
    for c in cases:
        m = c["median_s"]
        rows.append([c["case"], c["num_params"], c["batch"],
                     f"{1e3 * m['surrogate']:.2f}", f"{1e3 * m['gradient']:.2f}",
                     f"{1e3 * m['fvp']:.2f}", f"{1e3 * m['build+fvp']:.2f}",
                     f"{c['ratio_fvp_to_gradient']:.2f}",
                     f"{c['ratio_build_fvp_to_gradient']:.2f}",
                     f"{c['ratio_fvp_to_gradient_cpu']:.2f}"])
    table = markdown_table(
        ["policy", "params", "batch", "surrogate (ms)", "gradient (ms)", "FVP (ms)",
         "build + FVP (ms)", "FVP / grad", "(build + FVP) / grad", "FVP / grad (CPU time)"],
        rows, "lrrrrrrrrr")
    md = "\n".join([
        "# Fisher-vector product vs policy gradient",
        "",
        f"Same batch, {args.repeats} interleaved rounds (ABBA), medians of wall time. "
        "`gradient` = `PolicyObjective.gradient()` (forward pass, autograd on the "
        "importance-ratio head, hand-written backward pass); `FVP` = `F @ v` with "
        "`F = objective.fisher_operator()` built once; "
        "`build + FVP` = both.",
        "",
        table,
        "",
        f"**FVP / gradient (GaussianMLP, batch {args.batch}) = "
        f"{gauss['ratio_fvp_to_gradient']:.2f}** (goal ≤ {GOAL_RATIO}: "
        f"{'met' if passed else 'NOT met'}).",
        "",
        f"Command: `{result['command']}`; {result['date']}; OPENBLAS_NUM_THREADS="
        f"{result['blas_threads']}; load average before {load_before}, after "
        f"{result['machine']['load_average']} ({result['machine']['cpu_count']} CPUs).",
        "",
    ])
    write_json(args.out / "fvp.json", result)
    write_atomic(args.out / "fvp.md", md)
    print(md)
    return result


if __name__ == "__main__":
    main()
