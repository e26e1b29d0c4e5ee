"""MuJoCo speed: trpokit TRPO (presets) vs sb3-contrib TRPO (rl-baselines3-zoo), side by side.

Goals (MuJoCo suite, Speed), per task:

- sampling at most 1.1x the time of stepping the same vector env with random actions;
- the whole update (policy step and value fit) at most 0.3x the sampling time;
- end to end at most 0.4x sb3-contrib's wall-clock.

For each task, in this one invocation:

1. **Side by side.** Two processes start together, one per core: ours (``rl.train`` with
   the task's preset, no evaluation) and sb3-contrib's ``TRPO`` with rl-baselines3-zoo's
   settings (:mod:`sb3_zoo`), each training ``--steps`` environment steps with
   single-threaded numerics. The ratio is ours' training wall-clock over sb3's, both
   measured inside their processes under the same load (each other).
2. **Where ours' time goes**, from the same run's ``metrics.csv``: sampling, policy step
   and value fit, in µs per environment step.
3. **Floor**, right after, alone: the same vector env (``rl.envs.make_vector_env``, the
   preset's number of envs, same seed) stepped ``--steps`` times with uniformly random
   actions, in µs per step.

Run::

    python benchmarks/bench_mujoco_speed.py                 # five tasks, 51,200 steps each
    python benchmarks/bench_mujoco_speed.py --envs Hopper-v5 --steps 20480

Results: ``benchmarks/results/mujoco_speed.json`` / ``mujoco_speed.md`` (merged by task).
``OPENBLAS_NUM_THREADS=1`` before numpy is imported; torch with one thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS_DIR,
    code_version,
    command_line,
    machine_info,
    markdown_table,
    timestamp,
    write_atomic,
    write_json,
)

TASKS = ("Swimmer-v5", "Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5")
GOALS = {"sampling_over_random": 1.1, "update_over_sampling": 0.3, "ours_over_sb3": 0.4}


def _ours(env, steps, seed, out, queue):
    import rl

    t0 = time.perf_counter()
    rl.train("trpo", env, steps=steps, seed=seed, out=out, progress=False, plot=False,
             config={"eval_episodes": 0})
    queue.put(("ours", time.perf_counter() - t0))


def _sb3(env, steps, seed, queue):
    import torch
    from sb3_contrib import TRPO
    from sb3_zoo import ZOO_N_ENVS, zoo_kwargs
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    kwargs = zoo_kwargs(env)
    t0 = time.perf_counter()
    venv = VecNormalize(make_vec_env(env, n_envs=ZOO_N_ENVS, seed=seed), gamma=kwargs["gamma"])
    TRPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs).learn(steps)
    queue.put(("sb3", time.perf_counter() - t0))
    venv.close()


def _random_floor(env, steps, seed, num_envs) -> float:
    """µs per environment step of the vector env with uniformly random actions."""
    from rl.envs import make_vector_env

    venv = make_vector_env(env, num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    space = venv.single_action_space
    venv.reset(seed=seed)
    n = steps // num_envs
    t0 = time.perf_counter()
    for _ in range(n):
        venv.step(rng.uniform(space.low, space.high, size=(num_envs, *space.shape)))
    dt = time.perf_counter() - t0
    venv.close()
    return dt / (n * num_envs) * 1e6


def _columns(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))

    def total(key):
        return float(sum(float(r[key]) for r in rows if r.get(key) not in (None, "")))

    return {"sample_s": total("time/sample_s"), "policy_step_s": total("time/policy_step_s"),
            "value_fit_s": total("time/value_fit_s"), "advantages_s": total("time/advantages_s"),
            "update_s": total("time/update_s"), "iterations": len(rows),
            "steps": int(rows[-1]["steps"]) if rows else 0}


def measure(env: str, steps: int, seed: int) -> dict:
    from rl.train import resolve_config

    cfg, _ = resolve_config("trpo", env)
    tmp = Path(tempfile.mkdtemp(prefix="mujoco-speed-"))
    try:
        ctx = mp.get_context("spawn")  # fresh interpreters: no state shared with this one
        queue = ctx.Queue()
        procs = [ctx.Process(target=_ours, args=(env, steps, seed, str(tmp / "ours"), queue)),
                 ctx.Process(target=_sb3, args=(env, steps, seed, queue))]
        load = list(os.getloadavg())
        for p in procs:
            p.start()
        walls = dict(queue.get() for _ in procs)
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"{env}: a side exited with status {p.exitcode}")
        parts = _columns(tmp / "ours" / "metrics.csv")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    floor = _random_floor(env, steps, seed, cfg.num_envs)
    n = parts["steps"]
    us = {k: parts[k] / n * 1e6 for k in ("sample_s", "policy_step_s", "value_fit_s",
                                           "advantages_s", "update_s")}
    return {"env": env, "steps": steps, "seed": seed, "num_envs": cfg.num_envs,
            "batch": cfg.batch_size, "preset": cfg.preset,
            "ours_wall_s": walls["ours"], "sb3_wall_s": walls["sb3"],
            "ours_over_sb3": walls["ours"] / walls["sb3"],
            "us_per_step": {**us, "random_actions": floor,
                            "ours_wall": walls["ours"] / n * 1e6},
            "sampling_over_random": us["sample_s"] / floor,
            "update_over_sampling": us["update_s"] / us["sample_s"],
            "load_average_start": load, "load_average_end": list(os.getloadavg()),
            "date": timestamp(), "code_version": code_version(), "machine": machine_info()}


def write(out: Path, records: list, command: str) -> str:
    path = out / "mujoco_speed.json"
    try:
        old = json.loads(path.read_text())["runs"]
    except (OSError, json.JSONDecodeError, KeyError):
        old = []
    keys = {(r["env"], r["steps"]) for r in records}
    runs = [r for r in old if (r["env"], r["steps"]) not in keys] + records
    runs.sort(key=lambda r: (TASKS.index(r["env"]) if r["env"] in TASKS else 99, r["steps"]))

    def mark(v, goal):
        return f"{v:.2f} ({'met' if v <= goal else 'not met'})"

    rows = [[r["env"], f"{r['steps']:,}", f"{r['batch']:,}",
             f"{r['us_per_step']['random_actions']:.0f}", f"{r['us_per_step']['sample_s']:.0f}",
             f"{r['us_per_step']['policy_step_s']:.0f}", f"{r['us_per_step']['value_fit_s']:.0f}",
             f"{r['us_per_step']['update_s']:.0f}",
             mark(r["sampling_over_random"], GOALS["sampling_over_random"]),
             mark(r["update_over_sampling"], GOALS["update_over_sampling"]),
             f"{r['ours_wall_s']:.1f}", f"{r['sb3_wall_s']:.1f}",
             mark(r["ours_over_sb3"], GOALS["ours_over_sb3"]),
             f"{r['load_average_start'][0]:.1f}"] for r in runs]
    md = "\n".join([
        "# MuJoCo speed: trpokit TRPO (preset) vs sb3-contrib TRPO (rl-baselines3-zoo)",
        "",
        "Per task, ours and sb3-contrib train the same number of steps in two processes "
        "started together, one per core, single-threaded numerics; then the preset's vector "
        "env is stepped alone with random actions (the floor). µs per environment step; "
        "ours' parts from its metrics.csv (sampling; update = advantages + policy step + "
        f"value fit). Goals: sampling ≤ {GOALS['sampling_over_random']}x random stepping, "
        f"update ≤ {GOALS['update_over_sampling']}x sampling, ours ≤ "
        f"{GOALS['ours_over_sb3']}x sb3's wall-clock.",
        "",
        markdown_table(["env", "steps", "batch", "random (µs)", "sampling (µs)",
                        "policy step (µs)", "value fit (µs)", "update (µs)",
                        "sampling / random", "update / sampling", "ours (s)", "sb3 (s)",
                        "ours / sb3", "1-min load"], rows, "lrrrrrrrrrrrrr"),
        "",
        f"Command: `{command}`; {timestamp()}.",
        "",
    ])
    write_json(path, {"benchmark": "mujoco_speed", "runs": runs, "goals": GOALS,
                      "machine": machine_info(), "command": command, "date": timestamp()})
    write_atomic(out / "mujoco_speed.md", md)
    return md


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(TASKS))
    parser.add_argument("--steps", type=int, default=51_200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.steps < 4096:
        parser.error(f"--steps must be at least 4096 (two batches); got {args.steps}")
    from sb3_zoo import zoo_kwargs

    for env in args.envs:
        try:
            zoo_kwargs(env)
        except ValueError as exc:
            parser.error(str(exc))
    command = command_line("bench_mujoco_speed.py", argv)
    records = []
    for env in args.envs:
        rec = measure(env, args.steps, args.seed)
        records.append(rec)
        print(f"{env}: ours {rec['ours_wall_s']:.1f} s, sb3 {rec['sb3_wall_s']:.1f} s "
              f"({rec['ours_over_sb3']:.2f}x); sampling {rec['sampling_over_random']:.2f}x "
              f"random; update {rec['update_over_sampling']:.2f}x sampling", flush=True)
        md = write(args.out, records, command)
    print(md)


if __name__ == "__main__":
    main()
