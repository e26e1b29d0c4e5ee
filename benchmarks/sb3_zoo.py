"""sb3-contrib TRPO with rl-baselines3-zoo's tuned MuJoCo settings: learning runs over seeds.

Used by ``bench_sb3.py --zoo``. Each (env, seed) trains sb3-contrib's ``TRPO`` with the
settings of rl-baselines3-zoo's ``hyperparams/trpo.yml`` for that task (the ``v4`` entries,
which the zoo applies to the MuJoCo tasks; here on ``v5``), wrapped as the zoo wraps it:
``make_vec_env`` (a ``Monitor`` per env) and ``VecNormalize`` on observations and rewards
with the algorithm's discount. The final evaluation is :func:`rl.train.evaluate_policy`,
the same function our runs use: 10 deterministic episodes on an env seeded
``seed + 10000``, observations normalised with the frozen training statistics, rewards
unnormalised. The learning curve is the mean return of the episodes completed in each
rollout (``Monitor``'s undiscounted return), as in our ``metrics.csv``.

Each finished run is merged into ``<out>/sb3_zoo.json`` (re-read before every write, so
that invocations running side by side keep each other's runs) and ``sb3_zoo.md``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from _common import (
    code_version,
    command_line,
    machine_info,
    markdown_table,
    timestamp,
    write_atomic,
    write_json,
)

#: rl-baselines3-zoo ``hyperparams/trpo.yml``: the ``mujoco-defaults`` anchor (``normalize:
#: true``, ``n_envs: 2``, ``n_timesteps: 1e6``, ``batch_size: 128``, ``n_steps: 1024``,
#: ``gamma: 0.99``, ``gae_lambda: 0.95``, ``sub_sampling_factor: 1``, ``cg_max_steps: 25``,
#: ``cg_damping: 0.1``, ``n_critic_updates: 20``, ``learning_rate: 1e-3``) and the per-task
#: changes (HalfCheetah ``target_kl: 0.04``, Swimmer ``gamma: 0.9999``).
ZOO_MUJOCO = {"n_steps": 1024, "batch_size": 128, "gamma": 0.99, "gae_lambda": 0.95,
              "sub_sampling_factor": 1, "cg_max_steps": 25, "cg_damping": 0.1,
              "n_critic_updates": 20, "learning_rate": 1e-3}
ZOO_TASK = {"HalfCheetah-v5": {"target_kl": 0.04}, "Swimmer-v5": {"gamma": 0.9999},
            "Hopper-v5": {}, "Walker2d-v5": {}, "Ant-v5": {}}
ZOO_N_ENVS = 2


def zoo_kwargs(env: str) -> dict:
    """sb3-contrib ``TRPO`` keyword arguments of rl-baselines3-zoo for ``env``."""
    if env not in ZOO_TASK:
        raise ValueError(f"env={env!r} has no rl-baselines3-zoo MuJoCo TRPO entry here; "
                         f"choose one of {sorted(ZOO_TASK)}")
    return dict(ZOO_MUJOCO, **ZOO_TASK[env])


def run_zoo(env: str, seed: int, steps: int) -> dict:
    """Train and evaluate one sb3-contrib run with the zoo's settings; return its record."""
    from bench_sb3 import SB3Actor
    from sb3_contrib import TRPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from rl.train import evaluate_policy

    kwargs = zoo_kwargs(env)

    class Curve(BaseCallback):
        def __init__(self):
            super().__init__()
            self.steps, self.returns, self._episodes = [], [], []

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                if "episode" in info:
                    self._episodes.append(float(info["episode"]["r"]))
            return True

        def _on_rollout_end(self) -> None:
            self.steps.append(int(self.num_timesteps))
            self.returns.append(statistics.fmean(self._episodes) if self._episodes else None)
            self._episodes = []

    load_start = list(os.getloadavg())
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    venv = make_vec_env(env, n_envs=ZOO_N_ENVS, seed=seed)
    venv = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=kwargs["gamma"])
    model = TRPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    curve = Curve()
    model.learn(total_timesteps=steps, callback=curve)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    venv.training = False  # evaluation reads the statistics, it does not update them
    venv.norm_reward = False
    t1 = time.perf_counter()
    ev = evaluate_policy(SB3Actor(model, venv), env, episodes=10, seed=seed + 10_000)
    venv.close()
    return {"env": env, "seed": seed, "steps": steps, "steps_done": int(model.num_timesteps),
            "eval_return_mean": ev["eval/return_mean"], "evaluation": ev,
            "train_wall_s": wall, "train_cpu_s": cpu, "eval_wall_s": time.perf_counter() - t1,
            "curve": {"steps": curve.steps, "return_mean": curve.returns},
            "settings": {"n_envs": ZOO_N_ENVS, "normalize": "VecNormalize(norm_obs=True, "
                         "norm_reward=True, clip_obs=10, clip_reward=10, gamma=gamma)",
                         **kwargs, "policy": "MlpPolicy (sb3 defaults: 64x64 tanh, "
                         "orthogonal init, log_std_init 0)"},
            "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
            "date": timestamp(), "code_version": code_version(), "machine": machine_info()}


def merge_and_write(out: Path, record: dict, command: str) -> str:
    """Merge ``record`` into ``out/sb3_zoo.json`` (replacing the same env, seed and steps)
    and rewrite ``sb3_zoo.md``; return the markdown."""
    import sb3_contrib
    import torch

    path = out / "sb3_zoo.json"
    try:
        runs = json.loads(path.read_text())["runs"]
    except (OSError, json.JSONDecodeError, KeyError):
        runs = []
    key = (record["env"], record["seed"], record["steps"])
    runs = [r for r in runs if (r["env"], r["seed"], r["steps"]) != key] + [record]
    summary, rows, sum_rows = {}, [], []
    for env, steps in sorted({(r["env"], r["steps"]) for r in runs}):
        rs = sorted((r for r in runs if (r["env"], r["steps"]) == (env, steps)),
                    key=lambda r: r["seed"])
        rets = [r["eval_return_mean"] for r in rs]
        sd = statistics.stdev(rets) if len(rets) > 1 else float("nan")
        summary[f"{env} {steps}"] = {"env": env, "steps": steps,
                                     "seeds": [r["seed"] for r in rs],
                                     "return_mean": statistics.fmean(rets), "return_std": sd,
                                     "return_min": min(rets), "return_max": max(rets),
                                     "train_wall_s_mean": statistics.fmean(
                                         r["train_wall_s"] for r in rs)}
        sum_rows.append([env, f"{steps:,}", len(rs), f"{statistics.fmean(rets):.1f} ± {sd:.1f}",
                         " / ".join(f"{r['seed']}: {r['eval_return_mean']:.1f}" for r in rs),
                         f"{min(rets):.1f} – {max(rets):.1f}"])
        rows += [[env, r["seed"], f"{steps:,}", f"{r['eval_return_mean']:.1f}",
                  f"{r['train_wall_s']:.0f}", f"{r['load_average_start'][0]:.1f} → "
                  f"{r['load_average_end'][0]:.1f}", r["code_version"]] for r in rs]
    result = {"benchmark": "sb3_zoo", "summary": summary, "runs": runs,
              "sb3_contrib_version": sb3_contrib.__version__, "torch_version": torch.__version__,
              "torch_threads": torch.get_num_threads(),
              "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
              "machine": machine_info(), "command": command, "date": timestamp()}
    md = "\n".join([
        "# sb3-contrib TRPO with rl-baselines3-zoo's MuJoCo settings",
        "",
        f"sb3-contrib {sb3_contrib.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread). Settings: rl-baselines3-zoo `trpo.yml` "
        f"(`{ZOO_MUJOCO}`, per task `{ZOO_TASK}`), 2 envs, VecNormalize on observations and "
        "rewards. Final evaluation: `rl.train.evaluate_policy`, 10 deterministic episodes, "
        "env seed = seed + 10000, true rewards. Mean ± sample standard deviation over seeds. "
        "Wall-clock per run as run (up to two runs side by side on the 2-CPU machine); "
        "wall-clock ratios against ours are in `sb3.md`.",
        "",
        markdown_table(["env", "steps", "seeds", "eval return", "per seed", "min – max"],
                       sum_rows, "lrrrll"),
        "",
        markdown_table(["env", "seed", "steps", "eval return", "wall (s)", "1-min load",
                        "code version"], rows, "lrrrrll"),
        "",
        f"Last command: `{command}`; {timestamp()}.",
        "",
    ])
    write_json(path, result)
    write_atomic(out / "sb3_zoo.md", md)
    return md


def main(envs, seeds, steps, out: Path, argv=None) -> list:
    import torch

    torch.set_num_threads(1)
    command = command_line("bench_sb3.py", argv)
    records = []
    for env in envs:
        zoo_kwargs(env)  # refuse an unknown env before any run
    for env in envs:
        for seed in seeds:
            rec = run_zoo(env, seed, steps or 1_000_000)
            rec["command"] = command
            merge_and_write(out, rec, command)
            print(f"{env} seed {seed}: sb3-contrib (zoo) {rec['eval_return_mean']:.1f} in "
                  f"{rec['train_wall_s']:.0f} s", flush=True)
            records.append(rec)
    return records
