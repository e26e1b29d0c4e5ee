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

**Backends** (``--backends``): every sampling backend side by side in one invocation, on
CartPole-v1 and Hopper-v5, against random-action stepping of the same vector env: the
single-path sampler on ``SameStepSyncVectorEnv``, on ``AsyncVectorEnv`` (subprocesses), on
the native vector env (CartPole), two
in-process blocks (:class:`rl.sampling.BlockSampler`), and one and two Ray workers (local
cluster). Each arm draws whole batches, interleaved round by round (rotating order); the
Ray arms also report the per-iteration overhead, wall time of ``sample()`` minus the
slowest worker's own sampling time (broadcast, gather, join, finishing step). A second
table compares the native vector env with ``SameStepSyncVectorEnv`` at 8 and 64
environments. Results: ``sampling_backends.json`` / ``.md``::

    python benchmarks/bench_sampling.py --backends

**Main job** (``--main-job --seeds 0 1``): the README's ``python -m rl train`` with the
default ``vectorization=sync`` and with ``native``, per seed, side by side: wall-clock and
final evaluation (``sampling_main_job.json`` / ``.md``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
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


# ------------------------------------------------------------------------- backends
def _arm_time(fn, results, name):
    start = time.perf_counter()
    out = fn()
    results.setdefault(name, []).append(time.perf_counter() - start)
    return out


def backends_main(args) -> dict:
    """The ``--backends`` mode (see the module notes)."""
    import ray

    from rl.sampling import BlockSampler

    load_before = machine_info()["load_average"]
    # logical CPUs for the 1 + 2 Ray actors alive at once (the arms run one at a time)
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    setups = {"CartPole-v1": (8, 512), "Hopper-v5": (8, 256)}  # (num_envs, steps_per_env)
    tables = {}
    for env_id, (N, T) in setups.items():
        check_env(env_id)
        probe = make_vector_env(env_id, 1)
        obs_space, act_space = probe.single_observation_space, probe.single_action_space
        probe.close()
        policy = make_policy(obs_space, act_space, hidden_sizes=(64, 64), seed=args.seed)
        rng = np.random.default_rng(args.seed)
        venv = make_vector_env(env_id, N, seed=args.seed)
        samplers = {"single path, sync vector env": SinglePathSampler(
            make_vector_env(env_id, N, seed=args.seed), policy, T, seed=args.seed)}
        samplers["single path, async vector env (subprocesses)"] = SinglePathSampler(
            make_vector_env(env_id, N, seed=args.seed, vectorization="async"), policy, T,
            seed=args.seed)
        if env_id == "CartPole-v1":
            samplers["single path, native vector env"] = SinglePathSampler(
                make_vector_env(env_id, N, seed=args.seed, vectorization="native"), policy, T,
                seed=args.seed)
        samplers["2 blocks in process"] = BlockSampler(env_id, policy, num_envs=N,
                                                       steps_per_env=T, num_blocks=2,
                                                       seed=args.seed)
        for k in (1, 2):
            samplers[f"{k} Ray worker{'s' if k > 1 else ''}"] = BlockSampler(
                env_id, policy, num_envs=N, steps_per_env=T, num_blocks=k, seed=args.seed,
                backend="ray")
        arms = {"random actions, sync vector env": functools.partial(time_random, venv, T, rng)}
        arms.update({name: s.sample for name, s in samplers.items()})
        for fn in arms.values():  # warm-up: imports, caches, actors
            fn()
        times, overhead = {}, {}
        names = list(arms)
        for r in range(args.repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                out = _arm_time(arms[name], times, name)
                if "Ray" in name:
                    overhead.setdefault(name, []).append(
                        times[name][-1] - out.diagnostics["time/sample_blocks_s"])
        for s in samplers.values():
            s.close()
        venv.close()
        base = statistics.median(times["random actions, sync vector env"])
        rows = []
        for name in names:
            med = statistics.median(times[name])
            rows.append({"arm": name, "median_s": med, "steps_per_s": N * T / med,
                         "ratio_to_random": med / base,
                         "overhead_s": statistics.median(overhead[name])
                         if name in overhead else None})
        tables[env_id] = {"num_envs": N, "steps_per_env": T, "batch": N * T,
                          "policy": f"{type(policy).__name__}(hidden_sizes=(64, 64))",
                          "rows": rows, "times": times, "overheads": overhead}
    ray.shutdown()

    # native vs sync vector env at 8 and 64 envs (CartPole), random actions and sampler
    native = []
    for N in (8, 64):
        T = max(1, 32768 // N)
        policy = make_policy(*_cartpole_spaces(), hidden_sizes=(64, 64), seed=args.seed)
        rng = np.random.default_rng(args.seed)
        venvs = {m: make_vector_env("CartPole-v1", N, seed=args.seed, vectorization=m)
                 for m in ("sync", "native")}
        samplers = {m: SinglePathSampler(make_vector_env("CartPole-v1", N, seed=args.seed,
                                                         vectorization=m), policy, T,
                                         seed=args.seed) for m in ("sync", "native")}
        arms = {}
        for m in ("sync", "native"):
            arms[f"{m} random"] = functools.partial(time_random, venvs[m], T, rng)
            arms[f"{m} sampler"] = samplers[m].sample
        for fn in arms.values():
            fn()
        times = {}
        names = list(arms)
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                _arm_time(arms[name], times, name)
        med = {name: statistics.median(v) for name, v in times.items()}
        native.append({"num_envs": N, "steps": N * T,
                       "sync_random_steps_per_s": N * T / med["sync random"],
                       "native_random_steps_per_s": N * T / med["native random"],
                       "sync_sampler_steps_per_s": N * T / med["sync sampler"],
                       "native_sampler_steps_per_s": N * T / med["native sampler"],
                       "random_speedup": med["sync random"] / med["native random"],
                       "sampler_speedup": med["sync sampler"] / med["native sampler"],
                       "times": times})
        for v in list(venvs.values()) + list(samplers.values()):
            v.close()

    result = {"benchmark": "sampling_backends", "repeats": args.repeats, "envs": tables,
              "native_vs_sync": native, "machine": machine_info(),
              "load_average_before": load_before,
              "command": command_line("bench_sampling.py", ["--backends", *(
                  [] if args.repeats == 5 else ["--repeats", str(args.repeats)])]),
              "date": timestamp(), "ray": ray.__version__}
    lines = ["# Sampling backends", "",
             "Every backend draws whole batches with a 64x64 policy, interleaved round by round "
             f"(rotating order), {args.repeats} rounds, medians. Ray: a local cluster on this "
             "machine. The machine's cores were shared with other work while this ran (load "
             f"average before {load_before}, after {result['machine']['load_average']}): "
             "compare the ratios, measured side by side, rather than the absolute rates.", ""]
    for env_id, tab in tables.items():
        lines += [f"## {env_id}: {tab['num_envs']} envs x {tab['steps_per_env']} steps = "
                  f"{tab['batch']} steps per batch", "",
                  "| arm | median s per batch | env steps/s | time / random actions | "
                  "overhead per iteration (s) |", "|---|---:|---:|---:|---:|"]
        for row in tab["rows"]:
            over = "" if row["overhead_s"] is None else f"{row['overhead_s']:.4f}"
            lines.append(f"| {row['arm']} | {row['median_s']:.3f} | {row['steps_per_s']:,.0f} | "
                         f"{row['ratio_to_random']:.2f} | {over} |")
        lines.append("")
    lines += ["## Native vector env vs SameStepSyncVectorEnv (CartPole-v1)", "",
              "| envs | steps per arm | sync random steps/s | native random steps/s | "
              "speed-up | sync sampler steps/s | native sampler steps/s | speed-up |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in native:
        lines.append(f"| {row['num_envs']} | {row['steps']} | "
                     f"{row['sync_random_steps_per_s']:,.0f} | "
                     f"{row['native_random_steps_per_s']:,.0f} | {row['random_speedup']:.2f}x | "
                     f"{row['sync_sampler_steps_per_s']:,.0f} | "
                     f"{row['native_sampler_steps_per_s']:,.0f} | "
                     f"{row['sampler_speedup']:.2f}x |")
    result["model"] = scaling_model(tables)
    lines += ["", "## Model for more workers", "",
              "From the Ray rows above: per-step sampling cost on one worker "
              "``t_s = (wall(1) - overhead(1)) / B``, overhead ``a + b K`` through the measured "
              "``overhead(1)`` and ``overhead(2)``, each worker on its own core. Fixed batch "
              "(B as above, split over K workers): ``t(K) = t_s B / K + a + b K``; growing "
              "batch (B steps per worker): "
              "``t(K) = t_s B + a + b K`` for ``K B`` steps. Fitted to two points measured "
              "on a shared 2-core machine: an extrapolation, not a measurement.", "",
              "| env | t_s (µs/step) | a (ms) | b (ms/worker) | K | fixed batch: s/iteration | "
              "steps/s | batch x K: s/iteration | steps/s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for env_id, mod in result["model"].items():
        for row in mod["rows"]:
            lines.append(f"| {env_id} | {1e6 * mod['t_s']:.1f} | {1e3 * mod['a']:.2f} | "
                         f"{1e3 * mod['b']:.2f} | {row['K']} | {row['fixed_s']:.4f} | "
                         f"{row['fixed_steps_per_s']:,.0f} | {row['weak_s']:.4f} | "
                         f"{row['weak_steps_per_s']:,.0f} |")
    m = result["machine"]
    lines += ["", f"Command: `{result['command']}`; {result['date']}; {m['platform']}, "
              f"{m['cpu_count']} CPUs; numpy {m['numpy']}; ray {result['ray']}; code "
              f"{m['code_version']}.", ""]
    md = "\n".join(lines)
    write_json(args.out / "sampling_backends.json", result)
    write_atomic(args.out / "sampling_backends.md", md)
    print(md)
    return result


def scaling_model(tables) -> dict:
    """The linear model of the module notes, from the 1- and 2-worker Ray rows."""
    model = {}
    for env_id, tab in tables.items():
        rows = {r["arm"]: r for r in tab["rows"]}
        one, two = rows["1 Ray worker"], rows["2 Ray workers"]
        B = tab["batch"]
        t_s = (one["median_s"] - one["overhead_s"]) / B
        b = max(two["overhead_s"] - one["overhead_s"], 0.0)
        a = one["overhead_s"] - b
        out = []
        for K in (1, 2, 4, 16, 64):
            fixed = t_s * B / K + a + b * K
            weak = t_s * B + a + b * K
            out.append({"K": K, "fixed_s": fixed, "fixed_steps_per_s": B / fixed,
                        "weak_s": weak, "weak_steps_per_s": K * B / weak})
        model[env_id] = {"t_s": t_s, "a": a, "b": b, "batch": B, "rows": out}
    return model


def main_job(args) -> dict:
    """``--main-job``: the README's main job (``python -m rl train``: TRPO, CartPole-v1,
    100k steps, 8 x 512) with ``vectorization=sync`` (the default) and ``native``, each seed
    run with both, alternating which goes first; wall-clock and final evaluation."""
    import tempfile

    import rl

    load_before = machine_info()["load_average"]
    runs = []
    for i, seed in enumerate(args.seeds):
        modes = ("sync", "native") if i % 2 == 0 else ("native", "sync")
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = rl.train("trpo", "CartPole-v1", seed=seed, out=Path(tmp) / "run",
                                  config={"vectorization": mode}, progress=False, plot=False)
                wall = time.perf_counter() - start
            runs.append({"seed": seed, "vectorization": mode, "wall_s": wall,
                         "sample_s": sum(r["time/sample_s"] for r in result.history),
                         "eval_return_mean": result.evaluation["eval/return_mean"],
                         "status": result.status})
    by_mode = {m: [r for r in runs if r["vectorization"] == m] for m in ("sync", "native")}
    med = {m: statistics.median(r["wall_s"] for r in rs) for m, rs in by_mode.items()}
    result = {"benchmark": "sampling_main_job", "seeds": args.seeds, "runs": runs,
              "median_wall_s": med, "ratio_native_to_sync": med["native"] / med["sync"],
              "machine": machine_info(), "load_average_before": load_before,
              "command": "python benchmarks/bench_sampling.py --main-job --seeds "
                         + " ".join(map(str, args.seeds)), "date": timestamp()}
    lines = ["# README main job: sync vs native vector env", "",
             "`python -m rl train` (TRPO, CartPole-v1, 100k steps, 8 envs x 512) per seed with "
             "`vectorization=sync` (default) and `native`, order alternating by seed. The "
             "machine's 2 cores were shared with other work (load average before "
             f"{load_before}, after {result['machine']['load_average']}).", "",
             "| seed | vectorization | wall-clock (s) | of which sampling (s) | eval return |",
             "|---:|---|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['seed']} | {r['vectorization']} | {r['wall_s']:.1f} | "
                     f"{r['sample_s']:.1f} | {r['eval_return_mean']:.1f} |")
    lines += ["", f"Median wall-clock native / sync = **{result['ratio_native_to_sync']:.2f}**. "
              "The native env draws its random numbers from one generator, so its runs are "
              "not those of the default (different returns per seed).", "",
              f"Command: `{result['command']}`; {result['date']}; code "
              f"{result['machine']['code_version']}.", ""]
    md = "\n".join(lines)
    write_json(args.out / "sampling_main_job.json", result)
    write_atomic(args.out / "sampling_main_job.md", md)
    print(md)
    return result


def _cartpole_spaces():
    venv = make_vector_env("CartPole-v1", 1)
    try:
        return venv.single_observation_space, venv.single_action_space
    finally:
        venv.close()


if __name__ == "__main__":
    if "--main-job" in sys.argv[1:]:
        parser = argparse.ArgumentParser(description="README main job, sync vs native")
        parser.add_argument("--main-job", action="store_true")
        parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
        parser.add_argument("--out", type=Path, default=RESULTS_DIR)
        main_job(parser.parse_args())
    elif "--backends" in sys.argv[1:]:
        parser = argparse.ArgumentParser(description="sampling backends side by side")
        parser.add_argument("--backends", action="store_true")
        parser.add_argument("--repeats", type=positive_int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, default=RESULTS_DIR)
        backends_main(parser.parse_args())
    else:
        main()
