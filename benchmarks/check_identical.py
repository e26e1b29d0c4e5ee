"""Bit-identity check of training runs across a change of the code.

Trains a fixed set of short configurations through :func:`rl.train` and records every
metrics number (timing columns left out), the evaluation and the final policy parameters
``theta`` in a JSON file. Run it on the code before a change and after it, and compare::

    python benchmarks/check_identical.py --out /tmp/before.json --keep-runs /tmp/before-runs
    # ... change the code ...
    python benchmarks/check_identical.py --out /tmp/after.json --compare /tmp/before.json \
        --resume-runs /tmp/before-runs

``--keep-runs DIR`` keeps the run folders of the resumable configurations (stopped halfway);
``--resume-runs DIR`` resumes copies of run folders written by the other code, so the check
also covers reading checkpoints written before the change. ``--only NAME`` runs one
configuration. Floats are stored with ``repr`` (exact round trip), so equality of the JSON
values is equality of the bits.

Configurations (``CONFIGS``): CartPole-v1 with TRPO, PPO, NPG and VPG at the test suite's
small settings; PPO on Pendulum-v1 with observation normalisation; TRPO with vine sampling
on a registered random tabular MDP; TRPO on InvertedPendulum-v5 (MuJoCo); the README main
job's settings (TRPO, CartPole-v1, 8 x 512 steps) for three iterations; asynchronous
(subprocess) vectorization; and a stop-and-resume of the CartPole and vine runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import rl  # noqa: E402
from rl.mdp import random_mdp  # noqa: E402

SMALL = {"num_envs": 2, "steps_per_env": 128, "eval_episodes": 2, "checkpoint_every": 1,
         "value_iterations": 5}
TABULAR_ID = "TrpokitCheckRandomMDP-v0"
VINE = {"sampling": "vine", "num_envs": 1, "steps_per_env": 32, "gamma": 0.9,
        "vine_rollout_states": 4, "vine_actions_per_state": 2, "vine_rollout_length": 10,
        "baseline": "linear", "eval_episodes": 2, "checkpoint_every": 1}

# name: (algo, env, steps, seed, config, resume_from_steps or None)
CONFIGS = {
    "cartpole-trpo": ("trpo", "CartPole-v1", 1024, 1, SMALL, 512),
    "cartpole-ppo": ("ppo", "CartPole-v1", 1024, 1, dict(SMALL, epochs=1), None),
    "cartpole-npg": ("npg", "CartPole-v1", 1024, 1, SMALL, None),
    "cartpole-vpg": ("vpg", "CartPole-v1", 1024, 1, SMALL, None),
    "pendulum-ppo-obsnorm": ("ppo", "Pendulum-v1", 1024, 2,
                             dict(SMALL, epochs=2, obs_normalization=True), 512),
    "tabular-vine-trpo": ("trpo", TABULAR_ID, 600, 3, VINE, 250),
    "invertedpendulum-trpo": ("trpo", "InvertedPendulum-v5", 3072, 4,
                              dict(SMALL, steps_per_env=512, obs_normalization=True), 2048),
    "readme-main-job-3-iterations": ("trpo", "CartPole-v1", 3 * 4096, 0,
                                     {"eval_episodes": 3}, None),
    "cartpole-trpo-async": ("trpo", "CartPole-v1", 512, 5, dict(SMALL, vectorization="async"),
                            None),
}


def _register():
    if TABULAR_ID not in gym.registry:
        gym.register(TABULAR_ID, entry_point=functools.partial(random_mdp, 4, 2, gamma=0.9,
                                                                 seed=0, horizon=30))


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return repr(float(value)) if not math.isfinite(value) else float(value)
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def _record(result) -> dict:
    history = [{k: _plain(v) for k, v in row.items() if "time" not in k}
               for row in result.history]
    return {"status": result.status,
            "history": history,
            "evaluation": {k: _plain(v) for k, v in result.evaluation.items()},
            "theta": [float(x) for x in np.asarray(result.policy.theta, dtype=np.float64)]}


def run_one(name, tmp: Path, keep: Path | None, resume_from: Path | None) -> dict:
    algo, env, steps, seed, config, half = CONFIGS[name]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = rl.train(algo, env, steps=steps, seed=seed, out=tmp / name, config=config,
                          progress=False, plot=False)
        out["full"] = _record(result)
        if half is not None:
            part_dir = tmp / f"{name}-part"
            rl.train(algo, env, steps=half, seed=seed, out=part_dir, config=config,
                     progress=False, plot=False)
            if keep is not None:
                shutil.copytree(part_dir, keep / name, dirs_exist_ok=True)
            out["resumed"] = _record(rl.train(resume=part_dir, steps=steps, progress=False,
                                              plot=False))
            if resume_from is not None and (resume_from / name).is_dir():
                other = tmp / f"{name}-other"
                shutil.copytree(resume_from / name, other)
                out["resumed_from_other_code"] = _record(
                    rl.train(resume=other, steps=steps, progress=False, plot=False))
    return out


def _renamed(rec: dict) -> dict:
    """A record with its metrics under their current names (a reference file written before
    a diagnostic was renamed, see rl.algorithms.RENAMED_METRICS)."""
    from rl.algorithms import RENAMED_METRICS

    rec = dict(rec)
    rec["history"] = [{RENAMED_METRICS.get(k, k): v for k, v in row.items()}
                      for row in rec.get("history", [])]
    return rec


def compare(new: dict, old: dict) -> list[str]:
    old = {name: {part: _renamed(rec) for part, rec in parts.items()}
           for name, parts in old.items()}
    problems = []
    for name, rec in new.items():
        if name not in old:
            problems.append(f"{name}: not in the reference file")
            continue
        for part, value in rec.items():
            # a run resumed from the other code's folder must end where its full run did
            ref = old[name]["full"] if part == "resumed_from_other_code" else old[name].get(part)
            if ref is None:
                problems.append(f"{name}/{part}: not in the reference file")
            elif value != ref:
                keys = [k for k in ("status", "history", "evaluation", "theta")
                        if value.get(k) != ref.get(k)]
                problems.append(f"{name}/{part}: differs in {keys}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--compare", type=Path, help="a JSON file written before the change")
    parser.add_argument("--keep-runs", type=Path, help="keep the halfway run folders here")
    parser.add_argument("--resume-runs", type=Path,
                        help="resume copies of the halfway run folders kept here")
    parser.add_argument("--only", action="append", choices=sorted(CONFIGS),
                        help="run only this configuration (repeatable)")
    args = parser.parse_args(argv)
    _register()
    names = args.only or list(CONFIGS)
    if args.keep_runs is not None:
        args.keep_runs.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"{name} ...", file=sys.stderr, flush=True)
            results[name] = run_one(name, Path(tmp), args.keep_runs, args.resume_runs)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({len(results)} configurations)", file=sys.stderr)
    if args.compare is not None:
        problems = compare(results, json.loads(args.compare.read_text()))
        for p in problems:
            print("DIFFERENT:", p)
        if problems:
            return 1
        print(f"identical to {args.compare}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
