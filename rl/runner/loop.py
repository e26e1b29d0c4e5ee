"""The training loop: :func:`train` makes or resumes a run, samples and updates until the
step budget is spent, checkpoints as it goes, handles Ctrl-C / SIGTERM / SIGHUP and failures
with a status, then evaluates and plots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import gymnasium
import numpy as np
from threadpoolctl import threadpool_limits

from rl import checkpoint as ckpt
from rl.algorithms.base import check_range
from rl.checkpoint import atomic_write_text
from rl.envs import (
    EnvironmentFailure,
    NonFiniteEnvironmentError,
)
from rl.progress import TrainingProgress
from rl.runner.build import Run
from rl.runner.checkpoints import load_run, save_snapshot, snapshot
from rl.runner.config import TrainResult, plain_value, resolve_config
from rl.runner.errors import CheckpointWriteError, ConfigError, RunTerminated
from rl.runner.evaluation import evaluate_policy
from rl.tensorboard import TensorBoardWriter

__all__ = ["train"]


def _default_run_dir(cfg):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{cfg.algo}-{cfg.env}-seed{cfg.seed}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def _write_config(run_dir, cfg, algo_cfg):
    atomic_write_text(run_dir / "config.json", json.dumps(
        {"train": dataclasses.asdict(cfg), "algo": algo_cfg.to_dict()}, indent=2,
        default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a setting of type {type(value).__name__} cannot be saved in config.json")


_RUN_FILES = (ckpt.MANIFEST, "checkpoint.pkl", "config.json", "metrics.csv")


def _check_out_folder(run_dir):
    """A new run goes into a new or empty folder, never over a user's files."""
    if not run_dir.exists() and not run_dir.is_symlink():
        return
    if not run_dir.is_dir():
        raise ConfigError(f"the run folder {run_dir} is a file, not a folder; choose another "
                          "--out")
    if not any(run_dir.iterdir()):
        return
    if any((run_dir / name).exists() for name in _RUN_FILES):
        raise ConfigError(f"{run_dir} already holds a run; resume it with --resume {run_dir} "
                          "or choose another --out")
    raise ConfigError(f"{run_dir} is not empty and is not a trpokit run folder; choose "
                      "another --out (a new or empty folder), or --resume a run folder")


class _Signals:
    """SIGTERM and SIGHUP end a run like Ctrl-C: raise :class:`RunTerminated` in the loop,
    but never inside a checkpoint write (the signal waits until the write is committed).

    Installed only in the main thread and only over the default handlers (a handler the
    program set, or an ignored SIGHUP under ``nohup``, is left alone)."""

    NAMES = ("SIGTERM", "SIGHUP")

    def __init__(self):
        self.pending, self.writing, self.previous = None, False, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                signum = getattr(signal, name, None)
                if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, frame):
        if self.writing:
            self.pending = signum
        else:
            raise RunTerminated(signum)

    @contextlib.contextmanager
    def critical(self):
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise RunTerminated(signum)


def train(algo="trpo", env="CartPole-v1", *, steps=None, seed=0, out=None, config=None,
          resume=None, progress=None, eval_episodes=None, plot=True, callback=None):
    """Train a policy; return a :class:`TrainResult`.

    Parameters
    ----------
    algo : str
        ``"trpo"`` (default), ``"npg"``, ``"ppo"`` or ``"vpg"``.
    env : str or gymnasium.Env or callable
        A Gymnasium id (default ``"CartPole-v1"``), an environment, or a factory. With
        ``resume``, pass the same environment or factory again for a run trained on one
        (a registered id needs nothing).
    steps : int, optional
        Total environment steps (default :attr:`TrainConfig.steps`).
    seed : int
        The run's seed, in ``[0, 2**64)``; the same seed gives the same numbers.
    out : path, optional
        The run folder (default ``runs/<algo>-<env>-seed<seed>-<time>``): a new or empty
        folder.
    config : dict, optional
        Overrides ``{key: value}`` for the algorithm config or :class:`TrainConfig`.
    resume : path, optional
        Continue the run in this folder from its checkpoint (``steps`` may extend it).
    progress : bool, optional
        Show progress (default: on when standard error is a terminal or a log).
    eval_episodes : int, optional
        Override :attr:`TrainConfig.eval_episodes`.
    plot : bool
        Write ``learning_curve.png``.
    callback : callable, optional
        ``callback(row)`` after every iteration; returning ``True`` stops the run.

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        Unknown algorithm, environment or setting, a value out of range, or an ``out``
        folder that is not new or empty.
    CheckpointError
        ``resume`` names a folder without a valid checkpoint.
    RunTerminated
        SIGTERM or SIGHUP arrived (handled like ``KeyboardInterrupt``: the last completed
        iteration is saved first).

    Warns
    -----
    ResumeWarning
        At the start, if the environments' state cannot be checkpointed (a resumed run
        would then start fresh episodes).
    """
    if resume is not None:
        run_dir = Path(resume)
        if steps is not None:
            try:
                check_range("steps", plain_value(steps), 1, None, integer=True)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        run = load_run(run_dir, env=None if isinstance(env, str) else env)
        if steps is not None:
            if int(steps) < run.total_steps:
                run.close()
                raise ConfigError(f"steps={int(steps)} is below the {run.total_steps} steps the "
                                  f"run in {run_dir} has done; pass more steps to continue it")
            run.cfg.steps = int(steps)
        ckpt.remove_stale_files(run_dir)
        try:
            if steps is not None:
                _write_config(run_dir, run.cfg, run.algo_cfg)  # the new budget is part of the run
        except OSError as exc:
            run.close()
            raise ConfigError(f"cannot write to the run folder {run_dir}: "
                              f"{exc.strerror or exc}") from None
    else:
        overrides = dict(config or {})
        if eval_episodes is not None:
            overrides["eval_episodes"] = eval_episodes
        env_name = env if isinstance(env, str) else getattr(getattr(env, "spec", None), "id",
                                                             None) or _env_label(env)
        cfg, algo_cfg = resolve_config(algo, env_name, steps=steps, seed=seed, overrides=overrides)
        run_dir = Path(out) if out is not None else _default_run_dir(cfg)
        _check_out_folder(run_dir)
        run = Run(cfg, algo_cfg, env=None if isinstance(env, str) else env)
        created = not run_dir.exists()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_config(run_dir, cfg, algo_cfg)
        except (OSError, TypeError) as exc:
            run.close()
            if created:
                with contextlib.suppress(OSError):
                    run_dir.rmdir()
            detail = exc.strerror or exc if isinstance(exc, OSError) else exc
            raise ConfigError(f"cannot write the run folder {run_dir}: {detail}; choose "
                              "another --out") from None
    run.warn_if_not_resumable()
    cfg = run.cfg
    limits = (threadpool_limits(limits=cfg.blas_threads, user_api="blas")
              if cfg.blas_threads is not None else contextlib.nullcontext())
    with limits, _Signals() as signals:
        return _train_loop(run, run_dir, env, resume, progress, plot, callback, signals)


def _env_label(env) -> str:
    """A name for an environment object or factory (for config.json and messages)."""
    if isinstance(env, gymnasium.Env):
        return type(env.unwrapped).__name__
    return getattr(env, "__qualname__", None) or getattr(env, "__name__", None) or \
        type(env).__name__


def _train_loop(run, run_dir, env, resume, progress, plot, callback, signals=None):
    try:
        return _train_and_evaluate(run, run_dir, env, resume, progress, plot, callback,
                                   signals)
    except BaseException as exc:  # an interrupt or an error: say where the run is kept
        if not hasattr(exc, "run_dir"):
            exc.run_dir, exc.saved_iteration = run_dir, run.saved_iteration
        raise


def _train_and_evaluate(run, run_dir, env, resume, progress, plot, callback, signals):
    cfg = run.cfg
    bar = TrainingProgress(cfg.steps, enabled=sys.stderr is not None if progress is None
                           else progress, start=run.total_steps,
                           headline=type(run.algo).headline_metrics,
                           description=f"training {cfg.algo} on {cfg.env}")
    status = "completed"
    # _iterate keeps the checkpoint of the last completed iteration in memory between the
    # files written every checkpoint_every iterations: a run that stops (non-finite
    # environment, interrupt, error) writes it, so the folder holds its last good iteration
    stopped = None
    evaluation = {}
    board = None  # the TensorBoard writer of tensorboard=true
    try:
        if cfg.tensorboard:
            board = TensorBoardWriter(run_dir / "tensorboard")
        try:
            stopped = _iterate(run, run_dir, bar, callback, signals, board)
        except (NonFiniteEnvironmentError, EnvironmentFailure) as exc:
            status = f"stopped: {exc}"
        except CheckpointWriteError as exc:
            status = f"stopped: {exc}"
        except BaseException as exc:  # an interrupt or an error: keep the last good iteration
            try:
                save_snapshot(run, run_dir)
            except CheckpointWriteError as write_error:
                exc.add_note(str(write_error))
            exc.run_dir = run_dir  # where it is kept, for the command line's message
            exc.saved_iteration = run.saved_iteration
            raise
        if stopped is not None:
            status = stopped
        if not status.startswith("stopped: cannot write"):
            try:
                save_snapshot(run, run_dir, signals)
            except CheckpointWriteError as exc:
                status = f"stopped: {exc}"
        bar.close()
        if status == "completed" and cfg.eval_episodes > 0:
            try:
                evaluation = evaluate_policy(run.policy, cfg.env if resume is not None and env
                                             is None or isinstance(env, str) else env,
                                             episodes=cfg.eval_episodes, seed=cfg.seed + 10_000,
                                             progress=bar.enabled)
            except (NonFiniteEnvironmentError, EnvironmentFailure) as exc:
                status = f"stopped: {exc} (training completed and is saved)"
            else:
                try:
                    atomic_write_text(run_dir / "evaluation.json",
                                      json.dumps(evaluation, indent=2) + "\n")
                except OSError as exc:
                    status = (f"stopped: cannot write {run_dir / 'evaluation.json'}: "
                              f"{exc.strerror or exc} (training completed and is saved)")
                if board is not None:
                    board.write(evaluation, run.total_steps)
        if plot and run.history and not status.startswith("stopped: cannot write"):
            from rl.plotting import plot_runs
            try:
                plot_runs([run_dir], run_dir / "learning_curve.png", histories=[run.history])
            except OSError as exc:
                warnings.warn(f"the learning curve could not be written: {exc.strerror or exc}",
                              stacklevel=2)
    finally:
        if board is not None:
            board.close()
        run.close()
    return TrainResult(run.policy, run.history, run_dir, evaluation, status, run.baseline,
                       {"train": dataclasses.asdict(cfg), "algo": run.algo_cfg.to_dict()})


def _iterate(run, run_dir, bar, callback, signals=None, board=None):
    """Sample and update until the step budget is spent; returns a stop status or None.

    After every iteration ``run.snapshot`` holds the run's checkpoint (with the number of
    history rows it covers) and ``run.snapshot_saved`` whether it is on disk.
    """
    cfg = run.cfg
    while run.total_steps < cfg.steps:
        t0 = time.perf_counter()
        batch = run.sampler.sample()
        if run.reward_scaler is not None:
            batch = run.reward_scaler.scale(batch)
        t1 = time.perf_counter()
        diag = run.algo.update(batch)
        run.iteration += 1
        # environment steps consumed: a vine batch counts its trunk and its rollouts
        run.total_steps += int(batch.num_env_steps)
        rets = np.asarray(batch.episode_returns, dtype=float)
        row = {"iteration": run.iteration, "steps": run.total_steps,
               "episode/count": int(rets.size),
               "episode/return_mean": float(rets.mean()) if rets.size else math.nan,
               "episode/return_std": float(rets.std()) if rets.size else math.nan,
               "time/sample_s": t1 - t0, **batch.diagnostics, **diag}
        row["time/iteration_s"] = time.perf_counter() - t0
        run.history.append(row)
        run.snapshot, run.snapshot_saved = snapshot(run), False
        bar.update(run.total_steps, row)
        if board is not None:
            board.write(row, run.total_steps)
        last = run.total_steps >= cfg.steps
        stop = callback is not None and callback(row) is True
        if last or stop or run.iteration % cfg.checkpoint_every == 0:
            save_snapshot(run, run_dir, signals)
        if stop:
            return "stopped: callback"
    return None
