"""Acting overhead: SinglePathSampler with a 64x64 policy vs random actions on the same envs.

Goal (issue "rl foundations", Performance): sampling 100k steps of CartPole-v1 with a 64x64
categorical MLP costs at most 2x the time of stepping the same vector env with random
actions, measured in the same run.

Both arms step the same vector env from :func:`rl.envs.make_vector_env` (a
:class:`rl.envs.SameStepSyncVectorEnv`: N sub-environments, ``SAME_STEP`` autoreset).
A third arm steps the same sub-environments behind gymnasium's own ``SyncVectorEnv``
(``SAME_STEP``) with random actions, for the ratio of the two vector envs' steps.
The floor draws the random actions with one vectorised ``rng.integers`` call per step; the
sampler arm is :meth:`rl.sampling.SinglePathSampler.sample` (policy forward, sampling,
storing every field of the :class:`rl.sampling.Batch`, episode bookkeeping, finiteness
checks). The two arms are interleaved (ABBA order) for ``--repeats`` rounds and compared by
their medians, so load drifts on a shared machine hit both alike. A third, untimed-in-ratio
arm times ``policy.step`` alone on fixed observations, to split the overhead into the
policy's own cost and the sampler loop's.

Run::

    python benchmarks/bench_sampling.py            # 8 envs, 100k steps, 5 rounds

Results go to ``benchmarks/results/sampling.json`` and ``sampling.md`` (written atomically).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gymnasium.vector import AutoresetMode, SyncVectorEnv  # noqa: E402

from rl.envs import env_factory, make_vector_env  # noqa: E402
from rl.policies import CategoricalMLP  # noqa: E402
from rl.sampling import SinglePathSampler  # noqa: E402

GOAL_RATIO = 2.0


def time_random(venv, num_steps: int, rng: np.random.Generator) -> float:
    """Seconds to take ``num_steps`` vector-env steps with uniformly random actions."""
    n_actions = int(venv.single_action_space.n)
    N = venv.num_envs
    start = time.perf_counter()
    for _ in range(num_steps):
        venv.step(rng.integers(0, n_actions, size=N))
    return time.perf_counter() - start


def time_sampler(sampler: SinglePathSampler, num_batches: int) -> float:
    """Seconds for ``num_batches`` calls of ``sampler.sample()``."""
    start = time.perf_counter()
    for _ in range(num_batches):
        sampler.sample()
    return time.perf_counter() - start


def time_policy(policy, obs: np.ndarray, num_steps: int, rng: np.random.Generator) -> float:
    """Seconds for ``num_steps`` calls of ``policy.step`` on a fixed observation batch."""
    start = time.perf_counter()
    for _ in range(num_steps):
        policy.step(obs, rng)
    return time.perf_counter() - start


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--total-steps", type=int, default=100_000,
                        help="environment steps per arm and round (all envs together)")
    parser.add_argument("--steps-per-env", type=int, default=1250,
                        help="T of one sampler batch (default: 10k-step batches)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    N = args.num_envs
    vector_steps = args.total_steps // N
    num_batches = max(1, vector_steps // args.steps_per_env)
    vector_steps = num_batches * args.steps_per_env  # both arms take exactly this many

    venv = make_vector_env(args.env, N, seed=args.seed)
    # the same sub-environments behind gymnasium's own SyncVectorEnv, for the env arm
    gym_venv = SyncVectorEnv([env_factory(args.env)] * N, autoreset_mode=AutoresetMode.SAME_STEP)
    gym_venv.reset(seed=args.seed)
    obs_dim = int(venv.single_observation_space.shape[0])
    policy = CategoricalMLP(obs_dim, int(venv.single_action_space.n), (64, 64), seed=args.seed)
    sampler = SinglePathSampler(venv, policy, args.steps_per_env, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    obs_fixed = np.asarray(venv.reset(seed=args.seed)[0], dtype=np.float64)

    # warm-up: imports, caches, first allocations
    time_random(venv, 200, rng)
    time_random(gym_venv, 200, rng)
    sampler.sample()

    random_s, sampler_s, policy_s, gym_random_s = [], [], [], []
    for r in range(args.repeats):
        arms = ("random", "sampler", "gym") if r % 2 == 0 else ("gym", "sampler", "random")
        for arm in arms:
            if arm == "random":
                random_s.append(time_random(venv, vector_steps, rng))
            elif arm == "gym":
                gym_random_s.append(time_random(gym_venv, vector_steps, rng))
            else:
                sampler_s.append(time_sampler(sampler, num_batches))
        policy_s.append(time_policy(policy, obs_fixed, vector_steps, rng))
    venv.close()
    gym_venv.close()

    med_random = statistics.median(random_s)
    med_sampler = statistics.median(sampler_s)
    med_policy = statistics.median(policy_s)
    med_gym = statistics.median(gym_random_s)
    ratio = med_sampler / med_random
    env_steps = vector_steps * N
    result = {
        "benchmark": "sampling",
        "goal": f"sampler time / random-action time <= {GOAL_RATIO}",
        "env": args.env,
        "num_envs": N,
        "env_steps_per_arm": env_steps,
        "steps_per_env": args.steps_per_env,
        "num_batches": num_batches,
        "policy": "CategoricalMLP(hidden_sizes=(64, 64))",
        "repeats": args.repeats,
        "random_s": random_s,
        "sampler_s": sampler_s,
        "policy_step_s": policy_s,
        "median_random_s": med_random,
        "median_sampler_s": med_sampler,
        "median_policy_step_s": med_policy,
        "gym_sync_random_s": gym_random_s,
        "median_gym_sync_random_s": med_gym,
        "ratio_same_step_to_gym_sync": med_random / med_gym,
        "ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "passed": bool(ratio <= GOAL_RATIO),
        "per_vector_step_us": {
            "env_with_random_actions": 1e6 * med_random / vector_steps,
            "gym_sync_vector_env_with_random_actions": 1e6 * med_gym / vector_steps,
            "sampler": 1e6 * med_sampler / vector_steps,
            "policy_step_alone": 1e6 * med_policy / vector_steps,
            "sampler_loop_other": 1e6 * (med_sampler - med_random - med_policy) / vector_steps,
        },
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "command": "python benchmarks/bench_sampling.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

    us = result["per_vector_step_us"]
    md = "\n".join([
        "# Sampling overhead",
        "",
        f"{args.env}, {N} envs (SameStepSyncVectorEnv, SAME_STEP autoreset), {env_steps} "
        f"env steps per arm, {args.repeats} interleaved rounds, medians. Policy: 64x64 "
        "CategoricalMLP.",
        "",
        "| arm | median time (s) | per vector step (µs) |",
        "|---|---:|---:|",
        f"| env, random actions | {med_random:.3f} | {us['env_with_random_actions']:.1f} |",
        f"| the same envs in gymnasium's SyncVectorEnv, random actions | {med_gym:.3f} | "
        f"{us['gym_sync_vector_env_with_random_actions']:.1f} |",
        f"| SinglePathSampler | {med_sampler:.3f} | {us['sampler']:.1f} |",
        f"| policy.step alone | {med_policy:.3f} | {us['policy_step_alone']:.1f} |",
        "",
        f"**Ratio sampler / random = {ratio:.2f}** (goal ≤ {GOAL_RATIO}: "
        f"{'met' if result['passed'] else 'NOT met'}). Sampler loop other than env and policy: "
        f"{us['sampler_loop_other']:.1f} µs per vector step. SameStepSyncVectorEnv / "
        f"gymnasium's SyncVectorEnv = {med_random / med_gym:.2f}.",
        "",
        f"Command: `{result['command'].strip()}`; {result['date']}; "
        f"{result['machine']['platform']}, {result['machine']['cpu_count']} CPUs, "
        f"load {result['machine']['load_average']}.",
        "",
    ])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out_dir / "sampling.json", json.dumps(result, indent=2) + "\n")
    write_atomic(args.out_dir / "sampling.md", md)
    print(md)
    return result


if __name__ == "__main__":
    main()
