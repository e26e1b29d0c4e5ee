"""Checkpoints of a run folder: writing the run's state at its commit point, reading and
checking it back (:func:`load_run`), and converting the pickle checkpoints of older versions.
The file format is :mod:`rl.checkpoint`'s.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
from pathlib import Path

import gymnasium
import numpy as np

from rl import checkpoint as ckpt
from rl.algorithms import ALGORITHMS
from rl.envs import (
    snapshot_env,
)
from rl.runner.build import Run
from rl.runner.config import TrainConfig
from rl.runner.errors import CheckpointError, CheckpointWriteError, ConfigError

__all__ = ["CHECKPOINT_VERSION", "load_run", "convert_pickle_checkpoint", "snapshot",
           "save_snapshot"]


CHECKPOINT_VERSION = ckpt.FORMAT_VERSION


def _metrics_csv(history):
    keys = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    return buf.getvalue()


def _fmt(v):
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return v


_STATE_KEYS = ("config", "algo_config", "iteration", "total_steps", "policy", "baseline",
               "algo", "sampler", "env", "history")


_OPTIONAL_STATE_KEYS = ("reward_scaler",)  # present when the run scales its rewards


_ENV_KEYS = ("is_id", "name", "problem", "sub_envs")


def _read_checkpoint(run_dir):
    run_dir = Path(run_dir)
    if not (run_dir / ckpt.MANIFEST).exists() and (run_dir / "checkpoint.pkl").exists():
        raise CheckpointError(
            f"{run_dir / 'checkpoint.pkl'} is a pickle checkpoint of an older trpokit; loading "
            "a pickle can run any code, so it is refused. If you trust where it came from, "
            f"convert it with: python -m rl convert {run_dir} --trust-pickle")
    if not run_dir.is_dir():
        raise CheckpointError(f"no checkpoint at {run_dir}: there is no such folder; pass a run "
                              "folder written by 'python -m rl train'")
    try:
        manifest, state = ckpt.read_checkpoint(run_dir)
    except ckpt.CheckpointFormatError as exc:
        hint = "; pass a run folder written by 'python -m rl train'" if str(exc).startswith(
            "no checkpoint") else ""
        raise CheckpointError(f"{exc}{hint}") from None
    _check_state_layout(run_dir, manifest, state)
    return state


def _check_state_layout(run_dir, manifest, state):
    """The keys and types of a checkpoint's top level (the parts check their own)."""
    where = f"checkpoint in {run_dir}"
    fix = "delete the run folder or resume from a copy"
    if not isinstance(state, dict) or not set(_STATE_KEYS) <= set(state) <= set(
            _STATE_KEYS + _OPTIONAL_STATE_KEYS):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{where} does not hold a run's state (keys {got}); {fix}")
    for key in ("iteration", "total_steps"):
        value = state[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"{where} has a bad {key!r} entry ({value!r}); {fix}")
    if (state["iteration"], state["total_steps"]) != (manifest["iteration"],
                                                      manifest["total_steps"]):
        raise CheckpointError(f"{where} is at iteration {state['iteration']} but its manifest "
                              f"says {manifest['iteration']}; {fix}")
    history = state["history"]
    if not isinstance(history, list) or len(history) != state["iteration"] or not all(
            isinstance(r, dict) for r in history):
        raise CheckpointError(f"{where} has a bad 'history' entry (it must hold one row per "
                              f"iteration); {fix}")
    env = state["env"]
    if not isinstance(env, dict) or set(env) != set(_ENV_KEYS) or not isinstance(
            env["is_id"], bool) or not isinstance(env["name"], str) or not (
            env["sub_envs"] is None or isinstance(env["sub_envs"], list)):
        raise CheckpointError(f"{where} has a bad 'env' entry; {fix}")
    for key in ("config", "algo_config"):
        if not isinstance(state[key], dict):
            raise CheckpointError(f"{where} has a bad {key!r} entry (not a dict); {fix}")


def load_run(run_dir, env=None):
    """Rebuild the objects of a run from its folder (used by resume and evaluate).

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`train`.
    env : gymnasium.Env or callable, optional
        For a run trained on an environment object or factory (not a Gymnasium id): the
        same object or factory again. A registered id needs nothing.

    Raises
    ------
    CheckpointError
        If the folder holds no checkpoint, a damaged or tampered one, a pickle checkpoint
        (refused: see :func:`convert_pickle_checkpoint`), or one that does not fit ``env``.
    """
    state = _read_checkpoint(run_dir)
    try:
        cfg = TrainConfig(**state["config"])
        algo_cfg = ALGORITHMS[cfg.algo].config_class(**state["algo_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot rebuild the run in {run_dir}: its checkpoint's settings "
                              f"are invalid ({exc}); delete the run folder or resume from a "
                              "copy") from None
    if env is None and not state["env"]["is_id"]:
        raise CheckpointError(
            f"the run in {run_dir} was trained on an environment object ({cfg.env!r}), not a "
            "Gymnasium id: pass the same environment or factory again, "
            f"rl.train(resume={str(run_dir)!r}, env=...) or rl.evaluate({str(run_dir)!r}, "
            "env=...) from Python")
    try:
        run = Run(cfg, algo_cfg, env=env)
    except ConfigError as exc:
        raise CheckpointError(f"cannot rebuild the run in {run_dir}: {exc}") from None
    try:
        run.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any mismatch in the saved objects
        run.close()
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"checkpoint in {run_dir} does not match its config "
                              f"({type(exc).__name__}: {detail}); it was written by another "
                              "version or is damaged: start a new run") from None
    if state["env"]["problem"] is not None and run.resume_problem is None:
        run._saved_problem = state["env"]["problem"]
    return run


def convert_pickle_checkpoint(run_dir, *, trust_pickle=False):
    """Convert the ``checkpoint.pkl`` of an older trpokit run folder to the current format.

    Unpickling runs whatever code the file names: do this only for a file whose source you
    trust. ``checkpoint.pkl`` is left in place; the converted checkpoint is written beside
    it (``checkpoint.json`` and ``checkpoint-<iteration>.npz``).

    Parameters
    ----------
    run_dir : path
        The run folder holding ``checkpoint.pkl``.
    trust_pickle : bool
        Must be True: the caller states that the file is trusted.

    Returns
    -------
    pathlib.Path
        The converted checkpoint file.

    Raises
    ------
    CheckpointError
        Without ``trust_pickle``, without a ``checkpoint.pkl``, if the folder already holds
        a converted checkpoint, or if the file is not a trpokit version-1 checkpoint.
    """
    run_dir = Path(run_dir)
    path = run_dir / "checkpoint.pkl"
    if not trust_pickle:
        raise CheckpointError(f"converting {path} unpickles it, which can run any code: pass "
                              "--trust-pickle (trust_pickle=True) only for a file you trust")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint.pkl in {run_dir}")
    if (run_dir / ckpt.MANIFEST).exists():
        raise CheckpointError(f"{run_dir} already holds a converted checkpoint "
                              f"({ckpt.MANIFEST}); nothing to do")
    import pickle  # only here, on the caller's explicit statement of trust

    try:
        with open(path, "rb") as fh:
            old = pickle.load(fh)  # noqa: S301 - the caller vouched for the file
        if not isinstance(old, dict) or old.get("version") != 1:
            raise ValueError("not a version-1 trpokit checkpoint")
        envs = pickle.loads(old["env_states"]) if old.get("env_states") is not None else None
        cfg = TrainConfig(**old["config"])
        sampler = old["sampler"]
        if isinstance(sampler, dict) and sampler.get("trunk_env") is not None:
            trunk = sampler["trunk_env"]
            sampler = {**sampler, "trunk_env": {"kind": trunk.kind, "core": trunk.core,
                                                "np_random": trunk.np_random,
                                                "wrappers": [[f"{t.__module__}.{t.__qualname__}",
                                                              a] for t, a in trunk.wrappers]}}
        sub_envs = None
        if envs is not None:
            physics = old.get("env_physics")
            if physics is not None:
                from rl.envs import restore_state

                for e, snap in zip(envs, physics, strict=True):
                    restore_state(e, dataclasses.replace(snap, wrappers=tuple(
                        (f"{t.__module__}.{t.__qualname__}", a) for t, a in snap.wrappers)))
            sub_envs = [snapshot_env(e) for e in envs]
        state = {"config": dataclasses.asdict(cfg), "algo_config": old["algo_config"],
                 "iteration": int(old["iteration"]), "total_steps": int(old["total_steps"]),
                 "policy": old["policy"], "baseline": old["baseline"], "algo": old["algo"],
                 "sampler": sampler,
                 "env": {"is_id": _is_registered(cfg.env), "name": cfg.env,
                         "problem": None if sub_envs is not None or cfg.sampling == "vine" else
                         "the old checkpoint holds no environment state",
                         "sub_envs": sub_envs},
                 "history": list(old["history"])}
        data = ckpt.pack(state)
    except Exception as exc:  # noqa: BLE001 - anything wrong with the old file
        raise CheckpointError(f"cannot convert {path}: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())}") from None
    rows = len(state["history"])
    return ckpt.write_checkpoint(run_dir, data, iteration=state["iteration"],
                                 total_steps=state["total_steps"],
                                 metrics_csv=_metrics_csv(state["history"]), metrics_rows=rows)


def _is_registered(env_id) -> bool:
    try:
        gymnasium.spec(str(env_id))
    except Exception:  # noqa: BLE001 - any lookup failure: not a registered id
        return False
    return True


def snapshot(run):
    """The run's checkpoint as it stands: ``(npz bytes, rows, iteration, total_steps)``."""
    return ckpt.pack(run.state_dict()), len(run.history), run.iteration, run.total_steps


def save_snapshot(run, run_dir, signals=None):
    """Commit ``run.snapshot`` (checkpoint and metrics rows) unless it is on disk already.

    Raises
    ------
    CheckpointWriteError
        If it cannot be written; the folder keeps the checkpoint committed before.
    """
    if run.snapshot is None or run.snapshot_saved:
        return
    data, rows, iteration, total_steps = run.snapshot
    guard = signals.critical() if signals is not None else contextlib.nullcontext()
    try:
        with guard:
            ckpt.write_checkpoint(run_dir, data, iteration=iteration, total_steps=total_steps,
                                  metrics_csv=_metrics_csv(run.history[:rows]),
                                  metrics_rows=rows)
            run.snapshot_saved, run.saved_iteration = True, iteration
    except OSError as exc:
        kept = ("no checkpoint" if run.saved_iteration is None else
                f"the checkpoint of iteration {run.saved_iteration}")
        raise CheckpointWriteError(
            f"cannot write the checkpoint of iteration {iteration} to {run_dir}: "
            f"{exc.strerror or exc}; the run folder keeps {kept}") from None
