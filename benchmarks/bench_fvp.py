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

Results: ``benchmarks/results/fvp.json`` and ``fvp.md`` (written atomically after each
policy, so a failure in the second keeps the first; ``"complete"`` in the JSON says whether
every policy ran).
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
    positive_int,
    save_results,
    timestamp,
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


CASES = [  # (name, policy class, obs_dim, act_dim)
    ("GaussianMLP 17→64→64→6 (Hopper-sized)", GaussianMLP, 17, 6),
    ("CategoricalMLP 4→64→64→2 (CartPole-sized)", CategoricalMLP, 4, 2),
]


def write_results(args, cases: list, command: str, load_before) -> tuple[dict, str]:
    """``fvp.json`` and ``fvp.md`` for the cases done so far (atomically); both contents."""
    gauss = next((c for c in cases if c["case"] == CASES[0][0]), None)
    passed = bool(gauss["ratio_fvp_to_gradient"] <= GOAL_RATIO) if gauss else None
    complete = len(cases) == len(CASES)
    result = {
        "benchmark": "fvp",
        "goal": f"FVP (GaussianMLP 64x64, batch 2048) / policy gradient <= {GOAL_RATIO}",
        "passed": passed,
        "goal_ratio": GOAL_RATIO,
        "complete": complete,
        "cases": cases,
        "batch": args.batch,
        "repeats": args.repeats,
        "seed": args.seed,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "machine": machine_info(),
        "load_average_before": load_before,
        "command": command,
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
    verdict = (
        f"**FVP / gradient (GaussianMLP, batch {args.batch}) = "
        f"{gauss['ratio_fvp_to_gradient']:.2f}** (goal ≤ {GOAL_RATIO}: "
        f"{'met' if passed else 'NOT met'})." if gauss else "GaussianMLP not measured."
    )
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
        *([] if complete else [f"**Incomplete:** {len(cases)} of {len(CASES)} policies "
                               "measured (the run is in progress or stopped; the last "
                               "finished results are in fvp.md).", ""]),
        verdict,
        "",
        f"Command: `{command}`; {result['date']}; code {result['machine']['code_version']}; "
        f"numpy {result['machine']['numpy']}, scipy {result['machine']['scipy']}; "
        f"OPENBLAS_NUM_THREADS={result['blas_threads']} (BLAS threads "
        f"{result['machine']['blas_threads']}); load average before {load_before}, after "
        f"{result['machine']['load_average']} ({result['machine']['cpu_count']} CPUs).",
        "",
    ])
    save_results(args.out, "fvp", result, md, complete)
    return result, md


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=positive_int, default=2048)
    parser.add_argument("--repeats", type=positive_int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"argument --seed: expected a non-negative integer; got {args.seed}")

    command = command_line("bench_fvp.py", argv)
    load_before = machine_info()["load_average"]
    cases = []
    for name, policy_class, obs_dim, act_dim in CASES:
        policy = policy_class(obs_dim, act_dim, (64, 64), seed=args.seed)
        cases.append(bench_case(name, policy, obs_dim, args.batch, args.repeats, args.seed))
        # written after every policy: a failure in a later one keeps this one's results
        result, md = write_results(args, cases, command, load_before)
    print(md)
    return result


if __name__ == "__main__":
    main()
