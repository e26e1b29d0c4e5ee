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

Environments with ``Discrete`` actions get a 64x64 ``CategoricalMLP`` and random actions
from ``rng.integers``; environments with a 1-D ``Box`` action space (``--env Pendulum-v1``)
get a 64x64 ``GaussianMLP`` and actions drawn uniformly between the bounds with one
``rng.uniform`` call per step (standard normal where a bound is infinite). The environment
is made once before any timing, so an unknown id or an unsupported space stops the run with
a one-line error.

Results go to ``benchmarks/results/sampling.json`` and ``sampling.md`` (written atomically;
``--out DIR`` elsewhere). ``OPENBLAS_NUM_THREADS=1`` is set before numpy is imported.
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
    positive_int,
    timestamp,
    write_atomic,
    write_json,
)
from gymnasium import spaces  # noqa: E402
from gymnasium.vector import AutoresetMode, SyncVectorEnv  # noqa: E402

from rl.envs import check_spaces, env_factory, make_vector_env  # noqa: E402
from rl.policies import make_policy  # noqa: E402
from rl.sampling import SinglePathSampler  # noqa: E402

GOAL_RATIO = 2.0


def random_actions(action_space, num_envs: int, rng: np.random.Generator):
    """A function drawing one batch of ``num_envs`` uniformly random actions per call (one
    vectorised call of ``rng``): integers for ``Discrete``, uniform between the bounds for
    ``Box`` (standard normal in the dimensions with an infinite bound)."""
    if isinstance(action_space, spaces.Discrete):
        n_actions = int(action_space.n)
        return lambda: rng.integers(0, n_actions, size=num_envs)
    low = np.asarray(action_space.low, dtype=np.float64)
    high = np.asarray(action_space.high, dtype=np.float64)
    shape = (num_envs, *action_space.shape)
    finite = np.isfinite(low) & np.isfinite(high)
    if finite.all():
        return lambda: rng.uniform(low, high, size=shape)
    low, high = np.where(finite, low, 0.0), np.where(finite, high, 1.0)
    return lambda: np.where(finite, rng.uniform(low, high, size=shape),
                            rng.standard_normal(shape))


def time_random(venv, num_steps: int, rng: np.random.Generator) -> float:
    """Seconds to take ``num_steps`` vector-env steps with uniformly random actions."""
    draw = random_actions(venv.single_action_space, venv.num_envs, rng)
    start = time.perf_counter()
    for _ in range(num_steps):
        venv.step(draw())
    return time.perf_counter() - start


def check_env(env_id: str) -> None:
    """Make ``env_id`` once and check its spaces; :class:`SystemExit` with a one-line
    message naming the id when it cannot be made or is not benchmarked here."""
    def fail(exc: Exception):
        kind = "" if isinstance(exc, ValueError) else f"{type(exc).__name__}: "
        message = " ".join(str(exc).split())  # one line
        return SystemExit(f"bench_sampling.py: error: --env {env_id!r}: {kind}{message}")

    try:
        env = env_factory(env_id)()
    except Exception as exc:  # noqa: BLE001 - any failure to make the env ends the run here
        raise fail(exc) from None
    try:
        check_spaces(env.observation_space, env.action_space)
        if not isinstance(env.observation_space, spaces.Box):
            raise ValueError(f"observation space {env.observation_space!r} is not a 1-D Box; "
                             "this benchmark times MLP policies on vector observations")
    except ValueError as exc:
        raise fail(exc) from None
    finally:
        env.close()


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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1",
                        help="Gymnasium id, Discrete or 1-D Box actions, 1-D Box observations")
    parser.add_argument("--num-envs", type=positive_int, default=8)
    parser.add_argument("--total-steps", type=positive_int, default=100_000,
                        help="environment steps per arm and round (all envs together)")
    parser.add_argument("--steps-per-env", type=positive_int, default=1250,
                        help="T of one sampler batch (default: 10k-step batches)")
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", "--out-dir", dest="out", type=Path, default=RESULTS_DIR,
                        help="results directory (--out-dir is an alias)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"argument --seed: expected a non-negative integer; got {args.seed}")
    check_env(args.env)  # before any work: a bad id or space is a one-line error

    load_before = machine_info()["load_average"]
    N = args.num_envs
    vector_steps = args.total_steps // N
    num_batches = max(1, vector_steps // args.steps_per_env)
    vector_steps = num_batches * args.steps_per_env  # both arms take exactly this many

    venv = make_vector_env(args.env, N, seed=args.seed)
    # the same sub-environments behind gymnasium's own SyncVectorEnv, for the env arm
    gym_venv = SyncVectorEnv([env_factory(args.env)] * N, autoreset_mode=AutoresetMode.SAME_STEP)
    gym_venv.reset(seed=args.seed)
    policy = make_policy(venv.single_observation_space, venv.single_action_space,
                         hidden_sizes=(64, 64), seed=args.seed)
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
    policy_name = f"{type(policy).__name__}(hidden_sizes=(64, 64))"
    result = {
        "benchmark": "sampling",
        "goal": f"sampler time / random-action time <= {GOAL_RATIO}",
        "env": args.env,
        "num_envs": N,
        "env_steps_per_arm": env_steps,
        "steps_per_env": args.steps_per_env,
        "num_batches": num_batches,
        "policy": policy_name,
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
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "machine": machine_info(),
        "load_average_before": load_before,
        "command": command_line("bench_sampling.py", argv),
        "date": timestamp(),
    }

    us = result["per_vector_step_us"]
    md = "\n".join([
        "# Sampling overhead",
        "",
        f"{args.env}, {N} envs (SameStepSyncVectorEnv, SAME_STEP autoreset), {env_steps} "
        f"env steps per arm, {args.repeats} interleaved rounds, medians. Policy: 64x64 "
        f"{type(policy).__name__}.",
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
        f"Command: `{result['command']}`; {result['date']}; "
        f"{result['machine']['platform']}, {result['machine']['cpu_count']} CPUs; numpy "
        f"{result['machine']['numpy']}, scipy {result['machine']['scipy']}; code "
        f"{result['machine']['code_version']}; OPENBLAS_NUM_THREADS={result['blas_threads']} "
        f"(BLAS threads {result['machine']['blas_threads']}); load average before "
        f"{load_before}, after {result['machine']['load_average']}.",
        "",
    ])
    write_json(args.out / "sampling.json", result)
    write_atomic(args.out / "sampling.md", md)
    print(md)
    return result


if __name__ == "__main__":
    main()
