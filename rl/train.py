"""The training runner: config, the sample → update loop, run folders, checkpoints, resume.

>>> result = rl.train("trpo", "CartPole-v1", steps=100_000, seed=0)   # doctest: +SKIP
>>> result.evaluation["eval/return_mean"]                               # doctest: +SKIP

A run folder holds ``config.json``, ``metrics.csv`` (one row per iteration),
``checkpoint.pkl`` (policy, value function, normaliser, optimizer, sampler and RNG
state) and ``learning_curve.png``. Every file is written atomically (a temporary file
renamed into place), so an interrupted or failed run keeps everything already saved.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import difflib
import io
import json
import math
import os
import pickle
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium
import numpy as np
from threadpoolctl import threadpool_limits

from rl.advantages import ConstantBaseline, LinearFeatureBaseline, MLPValueFunction, ZeroBaseline
from rl.algorithms import ALGORITHMS
from rl.algorithms.base import check_range
from rl.envs import (
    NonFiniteEnvironmentError,
    _state_kind,
    check_spaces,
    env_factory,
    make_vector_env,
    restore_state,
    save_state,
)
from rl.policies import make_policy
from rl.progress import EvaluationProgress, TrainingProgress
from rl.sampling import EnvAction, SinglePathSampler, VineSampler
from rl.tensorboard import TensorBoardWriter

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "load_run", "resolve_config",
           "ConfigError", "CheckpointError"]

CHECKPOINT_VERSION = 1


class ConfigError(ValueError):
    """A bad algorithm, environment or setting; the message says how to fix it."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or does not match the requested run."""


@dataclass
class TrainConfig:
    """Settings of a training run that are not the algorithm's own.

    Attributes
    ----------
    algo : str
        ``"trpo"``, ``"npg"``, ``"ppo"`` or ``"vpg"``.
    env : str
        A Gymnasium environment id.
    steps : int
        Environment steps to train for (100k: CartPole-v1 is solved well within it).
    seed : int
        Seeds the policy initialisation, the environments and every update.
    num_envs : int
        Environments stepped in lockstep (a vector env).
    steps_per_env : int
        Steps per environment per iteration; the batch is ``num_envs * steps_per_env``
        (8 x 512 = 4096, within the 1k-5k range of the TRPO paper and Spinning Up).
    hidden_sizes : tuple of int
        Hidden layers of the policy and value networks (64, 64: Spinning Up, sb3).
    baseline : str
        ``"mlp"`` (a value network, GAE paper), ``"linear"`` (Duan et al. 2016),
        ``"constant"`` or ``"none"``.
    value_optimizer : str
        How the value network is fitted: ``"trust-region"`` (Gauss-Newton CG steps in a
        trust region, GAE paper §5), ``"lbfgs"`` or ``"adam"``
        (see :class:`rl.advantages.MLPValueFunction`).
    value_iterations : int or None
        Optimiser iterations of each value fit (``None``: the value function's default).
    value_minibatch_size : int
        Minibatch size of the ``"adam"`` value fit (64, the PPO paper's MuJoCo setting;
        sb3's TRPO critic uses 128).
    value_learning_rate : float
        Step size of the ``"adam"`` value fit (1e-3, OpenAI baselines and sb3).
    obs_normalization : bool
        Normalise observations by running mean and std (clipped at 10).
    dtype : str
        Compute precision of the policy and value networks, ``"float64"`` (default) or
        ``"float32"`` (about twice as fast; the precision deep-learning libraries train in).
        Parameters, solvers and diagnostics are float64 either way.
    sampling : str
        ``"single_path"`` or ``"vine"`` (TRPO paper §5; needs an env whose state can be
        saved and restored).
    vine_rollout_states, vine_actions_per_state, vine_rollout_length : int
        The vine's rollout-set size, actions per state (or ``"all"``: branch on every
        action of a Discrete action space, the paper's choice for small action sets) and
        leaf rollout length.
    vine_estimator : str
        ``"leave_one_out"`` (advantages against the mean of the other branches) or
        ``"self_normalized"`` (the TRPO paper's eq. (16); not with PPO's clipped
        objective); see :class:`rl.sampling.VineSampler`.
    eval_episodes : int
        Deterministic-policy episodes in the final evaluation.
    checkpoint_every : int
        Iterations between checkpoints (the last iteration always checkpoints).
    vectorization : str
        ``"sync"`` or ``"async"`` (subprocess) vector env.
    blas_threads : int or None
        Threads the BLAS library may use during the run (``None``: leave it alone). The
        updates are many small matrix products, for which threads only add
        synchronisation: on a 2-core machine one thread made a CartPole TRPO update 4-10x
        faster than OpenBLAS's default (``benchmarks/bench_update.py``).
    tensorboard : bool
        Also log every metric of every iteration as TensorBoard scalars under
        ``RUN_DIR/tensorboard`` (off by default: it needs the optional extra
        ``trpokit[tensorboard]``); see :mod:`rl.tensorboard`.
    """

    algo: str = "trpo"
    env: str = "CartPole-v1"
    steps: int = 100_000
    seed: int = 0
    num_envs: int = 8
    steps_per_env: int = 512
    hidden_sizes: tuple = (64, 64)
    baseline: str = "mlp"
    value_optimizer: str = "trust-region"
    value_iterations: int | None = None
    value_minibatch_size: int = 64
    value_learning_rate: float = 1e-3
    obs_normalization: bool = False
    dtype: str = "float64"
    sampling: str = "single_path"
    vine_rollout_states: int = 64
    vine_actions_per_state: int | str = 4
    vine_rollout_length: int = 50
    vine_estimator: str = "leave_one_out"
    eval_episodes: int = 10
    checkpoint_every: int = 5
    vectorization: str = "sync"
    blas_threads: int | None = 1
    tensorboard: bool = False

    def __post_init__(self):
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if self.algo not in ALGORITHMS:
            raise ConfigError(_unknown("algorithm", self.algo, ALGORITHMS))
        check_range("steps", self.steps, 1, None, integer=True)
        check_range("seed", self.seed, 0, None, integer=True)
        check_range("num_envs", self.num_envs, 1, None, integer=True)
        check_range("steps_per_env", self.steps_per_env, 1, None, integer=True)
        if self.value_iterations is not None:
            check_range("value_iterations", self.value_iterations, 1, None, integer=True)
        check_range("value_minibatch_size", self.value_minibatch_size, 1, None, integer=True)
        check_range("value_learning_rate", self.value_learning_rate, 0.0, None, low_open=True)
        check_range("eval_episodes", self.eval_episodes, 0, None, integer=True)
        check_range("checkpoint_every", self.checkpoint_every, 1, None, integer=True)
        if self.blas_threads is not None:
            check_range("blas_threads", self.blas_threads, 1, None, integer=True)
        per_state = self.vine_actions_per_state
        if isinstance(per_state, str):  # "all", or a number given as text (--set)
            if per_state.strip().lower() == "all":
                self.vine_actions_per_state = "all"
            else:
                try:
                    self.vine_actions_per_state = int(per_state)
                except ValueError:
                    raise ConfigError(f"vine_actions_per_state must be a positive integer or "
                                      f"'all'; got {per_state!r}") from None
        names = ("vine_rollout_states", "vine_rollout_length") + (
            () if self.vine_actions_per_state == "all" else ("vine_actions_per_state",))
        for name in names:
            check_range(name, getattr(self, name), 1, None, integer=True)
        if any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes must be positive; got {self.hidden_sizes}")
        for name, allowed in (("baseline", ("mlp", "linear", "constant", "none")),
                              ("value_optimizer", ("trust-region", "lbfgs", "adam")),
                              ("dtype", ("float64", "float32")),
                              ("sampling", ("single_path", "vine")),
                              ("vine_estimator", ("leave_one_out", "self_normalized")),
                              ("vectorization", ("sync", "async"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {list(allowed)}; got "
                                  f"{getattr(self, name)!r}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.steps_per_env


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    policy : rl.policies.Policy
        The trained policy.
    history : list of dict
        One diagnostics dict per iteration (the rows of ``metrics.csv``).
    run_dir : pathlib.Path
        The run folder.
    evaluation : dict
        Final deterministic evaluation (``eval/return_mean`` ...); empty if skipped.
    status : str
        ``"completed"`` or ``"stopped: <reason>"``.
    """

    policy: object
    history: list
    run_dir: Path
    evaluation: dict = field(default_factory=dict)
    status: str = "completed"
    baseline: object = None
    config: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------- config
def _unknown(kind, value, valid, note=""):
    close = difflib.get_close_matches(str(value), list(valid), n=3)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {value!r}.{hint}{note} Valid: {sorted(valid)}"


def _coerce(name, text, annotation):
    """Convert a command-line string to the type of a dataclass field."""
    if not isinstance(text, str):
        return text
    kind = typing.get_origin(annotation) or annotation
    args = typing.get_args(annotation)
    lowered = text.strip().lower()
    if lowered in ("none", "null") and (annotation is type(None) or type(None) in args):
        return None
    if args and type(None) in args:  # Optional[X] / X | None
        annotation = next(a for a in args if a is not type(None))
        kind = typing.get_origin(annotation) or annotation
    try:
        if annotation in (bool, "bool"):
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if annotation in (int, "int"):
            return int(float(text)) if float(text).is_integer() else int(text)
        if annotation in (float, "float"):
            return float(text)
        if kind is tuple or annotation in (tuple, "tuple"):
            return tuple(int(v) for v in text.replace("(", "").replace(")", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"setting {name}={text!r}: expected a value of type "
                          f"{getattr(annotation, '__name__', annotation)}") from None
    return text


def resolve_config(algo="trpo", env="CartPole-v1", *, steps=None, seed=0, overrides=None):
    """Build the ``(TrainConfig, algorithm config)`` pair from names and ``key=value`` overrides.

    Keys are looked up in the algorithm's config first, then in :class:`TrainConfig`;
    ``algo.key`` / ``train.key`` pick one explicitly. Unknown keys raise
    :class:`ConfigError` with the closest valid names.
    """
    if algo not in ALGORITHMS:
        raise ConfigError(_unknown("algorithm", algo, ALGORITHMS))
    overrides = dict(overrides or {})
    algo_cls = ALGORITHMS[algo].config_class
    algo_hints = typing.get_type_hints(algo_cls)
    train_hints = typing.get_type_hints(TrainConfig)
    algo_kw, train_kw = {}, {"algo": algo, "env": env, "seed": seed}
    if steps is not None:
        train_kw["steps"] = steps
    for key, value in overrides.items():
        scope, _, bare = key.rpartition(".")
        if scope not in ("", "algo", "train"):
            raise ConfigError(f"setting {key!r}: the prefix must be 'algo.' or 'train.'")
        if scope != "train" and bare in algo_hints:
            algo_kw[bare] = _coerce(key, value, algo_hints[bare])
        elif scope != "algo" and bare in train_hints and bare not in ("algo", "env"):
            train_kw[bare] = _coerce(key, value, train_hints[bare])
        else:
            if scope == "algo":
                valid, kind = sorted(algo_hints), f"{algo} setting"
            elif scope == "train":
                valid, kind = sorted(set(train_hints) - {"algo", "env"}), "train setting"
            else:
                valid = sorted(set(algo_hints) | set(train_hints) - {"algo", "env"})
                kind = f"setting for {algo}"
            note = ""
            if scope == "algo" and bare in train_hints:
                note = f" {bare!r} is a train setting: train.{bare}."
            elif scope == "train" and bare in algo_hints:
                note = f" {bare!r} is a {algo} setting: algo.{bare}."
            raise ConfigError(_unknown(kind, key if scope else bare, valid, note))
    try:
        train_cfg = TrainConfig(**train_kw)
        algo_cfg = algo_cls(**algo_kw)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None
    if (train_cfg.sampling == "vine" and train_cfg.vine_estimator == "self_normalized"
            and getattr(algo_cfg, "variant", None) == "clip"):
        raise ConfigError("vine_estimator=self_normalized does not combine with PPO's clipped "
                          "objective (defined per sample); use vine_estimator=leave_one_out or "
                          "variant=kl")
    return train_cfg, algo_cfg


# ---------------------------------------------------------------------------- file output
def atomic_write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path, text: str):
    atomic_write_bytes(path, text.encode("utf-8"))


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


# ------------------------------------------------------------------------------ building
def _make_baseline(cfg: TrainConfig, obs_dim, normalizer, seed):
    if cfg.baseline == "none":
        return ZeroBaseline()
    if cfg.baseline == "constant":
        return ConstantBaseline()
    if cfg.baseline == "linear":
        return LinearFeatureBaseline()
    return MLPValueFunction(obs_dim, cfg.hidden_sizes, seed=seed, optimizer=cfg.value_optimizer,
                            iterations=cfg.value_iterations,
                            minibatch_size=cfg.value_minibatch_size,
                            learning_rate=cfg.value_learning_rate, obs_normalizer=normalizer,
                            dtype=cfg.dtype)


def _obs_dim(space):
    shape = getattr(space, "shape", None)
    return int(np.prod(shape)) if shape else 1


class _Run:
    """The objects of one run, built from a config (and optionally a checkpoint)."""

    def __init__(self, cfg: TrainConfig, algo_cfg, env=None):
        self.cfg, self.algo_cfg = cfg, algo_cfg
        ss = np.random.SeedSequence(cfg.seed)
        s_policy, s_value, s_algo, s_env, s_sample = (int(s.generate_state(1)[0]) for s in
                                                      ss.spawn(5))
        env_spec = env if env is not None else cfg.env
        try:
            if cfg.sampling == "vine":  # the vine sampler builds its own environments
                self.venv = None
                probe = env_factory(env_spec)()
                obs_space, act_space = probe.observation_space, probe.action_space
                probe.close()
                check_spaces(obs_space, act_space)
            else:  # make_vector_env checks the spaces
                self.venv = make_vector_env(env_spec, cfg.num_envs, seed=s_env,
                                            vectorization=cfg.vectorization)
                obs_space = self.venv.single_observation_space
                act_space = self.venv.single_action_space
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        except (gymnasium.error.Error, ImportError) as exc:  # e.g. a missing extra (Box2D)
            raise ConfigError(f"environment {cfg.env!r} could not be made: {exc}") from None
        self.policy = make_policy(obs_space, act_space, hidden_sizes=cfg.hidden_sizes,
                                  seed=s_policy, obs_normalization=cfg.obs_normalization,
                                  dtype=cfg.dtype)
        self.baseline = _make_baseline(cfg, _obs_dim(obs_space),
                                       getattr(self.policy, "obs_normalizer", None), s_value)
        self.algo = ALGORITHMS[cfg.algo](self.policy, self.baseline, algo_cfg, seed=s_algo)
        if cfg.sampling == "vine":
            try:
                self.sampler = VineSampler(
                    env_spec, self.policy, num_trunk_steps=cfg.batch_size,
                    num_rollout_states=cfg.vine_rollout_states,
                    actions_per_state=cfg.vine_actions_per_state,
                    rollout_length=cfg.vine_rollout_length, gamma=algo_cfg.gamma, seed=s_sample,
                    estimator=cfg.vine_estimator)
            except ValueError as exc:  # e.g. VineUnsupportedError: no state save/restore
                raise ConfigError(str(exc)) from None
        else:
            self.sampler = SinglePathSampler(self.venv, self.policy, cfg.steps_per_env,
                                             seed=s_sample)
        self.iteration = 0
        self.total_steps = 0
        self.history = []
        self.snapshot, self.snapshot_saved = None, True  # see _iterate

    def state_dict(self):
        state = {
            "version": CHECKPOINT_VERSION,
            "config": dataclasses.asdict(self.cfg),
            "algo_config": self.algo_cfg.to_dict(),
            "iteration": self.iteration,
            "total_steps": self.total_steps,
            "policy": self.policy.state_dict(),
            "baseline": self.baseline.state_dict(),
            "algo": self.algo.state_dict(),
            "sampler": self._sampler_state(),
            "env_states": self._env_states(),
            "env_physics": self._env_physics(),
            "history": self.history,
        }
        return state

    def _sampler_state(self):
        """The sampler's state; ``None`` for a vine sampler whose state cannot be pickled.

        A vine state holds the trunk environment's wrapper attributes, which a wrapper
        built around a lambda cannot pickle; such a run resumes with fresh rollouts
        (reproducibly, from the saved policy and algorithm state) instead of failing to save.
        """
        state = self.sampler.state_dict()
        if isinstance(self.sampler, VineSampler):
            try:
                pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - any pickling failure: resume with fresh rollouts
                return None
        return state

    def _env_states(self):
        """The sub-environments pickled, so a resumed run continues their open episodes.

        Only a synchronous single-path run can be captured this way; otherwise ``None``.
        A vine run needs none: its sampler's state holds the trunk environment's exact state
        (:meth:`rl.sampling.VineSampler.state_dict`). An async single-path run resumes with
        fresh episodes (reproducibly, from the saved seeds).
        """
        if self.cfg.sampling != "single_path" or not hasattr(self.venv, "envs"):
            return None
        try:
            return pickle.dumps(self.venv.envs, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an env that cannot be pickled resumes fresh
            return None

    def _env_physics(self):
        """The MuJoCo sub-environments' physics (:func:`rl.envs.save_state`), or ``None``.

        Unpickling a MuJoCo environment builds fresh physics, so the pickled sub-environments
        of :meth:`_env_states` alone would resume from the model's initial state; this
        snapshot (positions, velocities and the solver's warm start) is restored over them.
        """
        if self.cfg.sampling != "single_path" or not hasattr(self.venv, "envs"):
            return None
        if not all(_state_kind(e) == "mujoco" for e in self.venv.envs):
            return None
        return [save_state(e) for e in self.venv.envs]

    def load_state_dict(self, state):
        self.policy.load_state_dict(state["policy"])
        self.baseline.load_state_dict(state["baseline"])
        self.algo.load_state_dict(state["algo"])
        env_states = state.get("env_states")
        if env_states is not None and hasattr(self.venv, "envs"):
            self.venv.envs = pickle.loads(env_states)
            physics = state.get("env_physics")
            if physics is not None:
                for env, snapshot in zip(self.venv.envs, physics, strict=True):
                    restore_state(env, snapshot)
            self.sampler.load_state_dict(state["sampler"], reset_env=False)
        elif isinstance(self.sampler, SinglePathSampler):
            self.sampler.load_state_dict(state["sampler"], reset_env=True)
        elif state["sampler"] is not None:
            # the vine sampler restores its streams, its trunk environment and open episode,
            # so a resumed vine run draws the rollouts of an uninterrupted one (without a
            # saved state, see _sampler_state, it draws fresh ones)
            self.sampler.load_state_dict(state["sampler"])
        self.iteration = int(state["iteration"])
        self.total_steps = int(state["total_steps"])
        self.history = list(state["history"])

    def close(self):
        if self.venv is not None:
            self.venv.close()
        if isinstance(self.sampler, VineSampler):
            self.sampler.close()


def _read_checkpoint(run_dir):
    path = Path(run_dir) / "checkpoint.pkl"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; pass a run folder written by "
                              "'python -m rl train'")
    try:
        with open(path, "rb") as fh:
            state = pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"checkpoint {path} is corrupt ({type(exc).__name__}); delete the "
                              "run folder or resume from a copy") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a version-{CHECKPOINT_VERSION} trpokit "
                              "checkpoint")
    return state


def load_run(run_dir):
    """Rebuild the objects of a run from its folder (used by resume and evaluate)."""
    state = _read_checkpoint(run_dir)
    for key in ("config", "algo_config", "policy", "baseline", "algo", "sampler", "iteration",
                "total_steps", "history"):
        if key not in state:
            raise CheckpointError(f"checkpoint in {run_dir} has no {key!r} entry; it is damaged: "
                                  "delete the run folder or resume from a copy")
    try:
        if not isinstance(state["config"], dict) or not isinstance(state["algo_config"], dict):
            raise TypeError("its config entries are not dicts")
        cfg = TrainConfig(**state["config"])
        if cfg.algo not in ALGORITHMS:
            raise ValueError(_unknown("algorithm", cfg.algo, ALGORITHMS))
        algo_cfg = ALGORITHMS[cfg.algo].config_class(**state["algo_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot rebuild the run in {run_dir}: its checkpoint's settings "
                              f"are invalid ({exc}); delete the run folder or resume from a "
                              "copy") from None
    try:
        run = _Run(cfg, algo_cfg)
    except ConfigError as exc:
        hint = ("" if _is_registered(cfg.env) else " (a run on an environment object, not a "
                "Gymnasium id, can only be resumed from Python with the same object)")
        raise CheckpointError(f"cannot rebuild the run in {run_dir}: {exc}{hint}") from None
    try:
        run.load_state_dict(state)
        if not isinstance(run.history, list) or not all(isinstance(r, dict) for r in run.history):
            raise TypeError("its history is not a list of rows")
    except Exception as exc:  # noqa: BLE001 - any mismatch in the saved objects
        run.close()
        raise CheckpointError(f"checkpoint in {run_dir} does not match its config "
                              f"({type(exc).__name__}: {exc}); it was written by another "
                              "version or is damaged: start a new run") from None
    return run


def _is_registered(env_id) -> bool:
    try:
        gymnasium.spec(str(env_id))
    except Exception:  # noqa: BLE001 - any lookup failure: not a registered id
        return False
    return True


# -------------------------------------------------------------------------------- train
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
        {"train": dataclasses.asdict(cfg), "algo": algo_cfg.to_dict()}, indent=2) + "\n")


def _snapshot(run) -> bytes:
    """The checkpoint of the run as it stands, as bytes (written by :func:`_save_snapshot`)."""
    return pickle.dumps(run.state_dict(), protocol=pickle.HIGHEST_PROTOCOL)


def _save_snapshot(run, run_dir):
    """Write ``run.snapshot`` (checkpoint bytes, history rows) unless it is on disk already."""
    if run.snapshot is None or run.snapshot_saved:
        return
    data, rows = run.snapshot
    atomic_write_bytes(run_dir / "checkpoint.pkl", data)
    atomic_write_text(run_dir / "metrics.csv", _metrics_csv(run.history[:rows]))
    run.snapshot_saved = True


def train(algo="trpo", env="CartPole-v1", *, steps=None, seed=0, out=None, config=None,
          resume=None, progress=None, eval_episodes=None, plot=True, callback=None):
    """Train a policy; return a :class:`TrainResult`.

    Parameters
    ----------
    algo : str
        ``"trpo"`` (default), ``"npg"``, ``"ppo"`` or ``"vpg"``.
    env : str or gymnasium.Env or callable
        A Gymnasium id (default ``"CartPole-v1"``), an environment, or a factory.
    steps : int, optional
        Total environment steps (default :attr:`TrainConfig.steps`).
    seed : int
        The run's seed; the same seed gives the same numbers.
    out : path, optional
        The run folder (default ``runs/<algo>-<env>-seed<seed>-<time>``).
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
        Unknown algorithm, environment or setting, or a value out of range.
    CheckpointError
        ``resume`` names a folder without a valid checkpoint.
    """
    if resume is not None:
        run_dir = Path(resume)
        run = load_run(run_dir)
        if steps is not None:
            try:
                check_range("steps", steps, 1, None, integer=True)
            except ValueError as exc:
                run.close()
                raise ConfigError(str(exc)) from None
            run.cfg.steps = int(steps)
            _write_config(run_dir, run.cfg, run.algo_cfg)  # the new budget is part of the run
    else:
        overrides = dict(config or {})
        if eval_episodes is not None:
            overrides["eval_episodes"] = eval_episodes
        env_name = env if isinstance(env, str) else getattr(getattr(env, "spec", None), "id",
                                                             type(env).__name__)
        cfg, algo_cfg = resolve_config(algo, env_name, steps=steps, seed=seed, overrides=overrides)
        run = _Run(cfg, algo_cfg, env=None if isinstance(env, str) else env)
        run_dir = Path(out) if out is not None else _default_run_dir(cfg)
        if (run_dir / "checkpoint.pkl").exists():
            run.close()
            raise ConfigError(f"{run_dir} already holds a run; resume it with --resume {run_dir} "
                              "or choose another --out")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_config(run_dir, cfg, algo_cfg)
        except OSError as exc:
            run.close()
            raise ConfigError(f"cannot write the run folder {run_dir}: "
                              f"{exc.strerror or exc}; choose another --out") from None
    cfg = run.cfg
    limits = (threadpool_limits(limits=cfg.blas_threads, user_api="blas")
              if cfg.blas_threads is not None else contextlib.nullcontext())
    with limits:
        return _train_loop(run, run_dir, env, resume, progress, plot, callback)


def _train_loop(run, run_dir, env, resume, progress, plot, callback):
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
    board = None  # the TensorBoard writer of tensorboard=true
    try:
        if cfg.tensorboard:
            board = TensorBoardWriter(run_dir / "tensorboard")
        try:
            stopped = _iterate(run, run_dir, bar, callback, board)
        except NonFiniteEnvironmentError as exc:
            status = f"stopped: {exc}"
        except BaseException as exc:  # an interrupt or an error: keep the last good iteration
            _save_snapshot(run, run_dir)
            exc.run_dir = run_dir  # where it is kept, for the command line's message
            raise
        if stopped is not None:
            status = stopped
        _save_snapshot(run, run_dir)
        bar.close()
        evaluation = {}
        if status == "completed" and cfg.eval_episodes > 0:
            try:
                evaluation = evaluate_policy(run.policy, cfg.env if resume is not None or
                                             isinstance(env, str) else env,
                                             episodes=cfg.eval_episodes, seed=cfg.seed + 10_000,
                                             progress=bar.enabled)
            except NonFiniteEnvironmentError as exc:
                status = f"stopped: {exc} (training completed and is saved)"
            else:
                atomic_write_text(run_dir / "evaluation.json",
                                  json.dumps(evaluation, indent=2) + "\n")
                if board is not None:
                    board.write(evaluation, run.total_steps)
        if plot and run.history:
            from rl.plotting import plot_runs
            plot_runs([run_dir], run_dir / "learning_curve.png", histories=[run.history])
    finally:
        if board is not None:
            board.close()
        run.close()
    return TrainResult(run.policy, run.history, run_dir, evaluation, status, run.baseline,
                       {"train": dataclasses.asdict(cfg), "algo": run.algo_cfg.to_dict()})


def _iterate(run, run_dir, bar, callback, board=None):
    """Sample and update until the step budget is spent; returns a stop status or None.

    After every iteration ``run.snapshot`` holds the run's checkpoint (with the number of
    history rows it covers) and ``run.snapshot_saved`` whether it is on disk.
    """
    cfg = run.cfg
    while run.total_steps < cfg.steps:
        t0 = time.perf_counter()
        batch = run.sampler.sample()
        t1 = time.perf_counter()
        diag = run.algo.update(batch)
        run.iteration += 1
        # environment steps consumed: a vine batch counts its trunk and its rollouts
        run.total_steps += int(getattr(batch, "num_env_steps", batch.num_steps))
        rets = np.asarray(getattr(batch, "episode_returns", getattr(
            getattr(batch, "trunk", None), "episode_returns", [])), dtype=float)
        row = {"iteration": run.iteration, "steps": run.total_steps,
               "episode/count": int(rets.size),
               "episode/return_mean": float(rets.mean()) if rets.size else math.nan,
               "episode/return_std": float(rets.std()) if rets.size else math.nan,
               "time/sample_s": t1 - t0, **getattr(batch, "diagnostics", {}), **diag}
        row["time/iteration_s"] = time.perf_counter() - t0
        run.history.append(row)
        run.snapshot, run.snapshot_saved = (_snapshot(run), len(run.history)), False
        bar.update(run.total_steps, row)
        if board is not None:
            board.write(row, run.total_steps)
        last = run.total_steps >= cfg.steps
        stop = callback is not None and callback(row) is True
        if last or stop or run.iteration % cfg.checkpoint_every == 0:
            _save_snapshot(run, run_dir)
        if stop:
            return "stopped: callback"
    return None


def evaluate_policy(policy, env, *, episodes=10, seed=0, deterministic=True, max_steps=None,
                    progress=False):
    """Mean and spread of the undiscounted return of ``policy`` over ``episodes`` episodes.

    Parameters
    ----------
    policy : Policy
        Anything with ``act(obs, rng, deterministic=...)`` (the policies of
        :mod:`rl.policies`).
    env : str, callable or gymnasium.Env
        As for :func:`rl.envs.make_vector_env`; one environment, seeded ``seed`` once.
    episodes : int >= 1
    seed : int >= 0
        Seeds the environment's first reset and the action sampling.
    deterministic : bool
        Act with the distribution's mode (mean / most likely action) instead of sampling.
    max_steps : int >= 1 or None
        End an episode after this many steps if the environment has not ended it (the
        environment is then reset); ``None`` leaves episode ends to the environment.
    progress : bool
        Show the episodes done, elapsed time and ETA on standard error
        (:class:`rl.progress.EvaluationProgress`).

    Returns
    -------
    dict
        ``eval/return_mean``, ``eval/return_std``, ``eval/return_min``,
        ``eval/return_max``, ``eval/length_mean`` and ``eval/episodes``.
    """
    check_range("episodes", episodes, 1, None, integer=True)
    if max_steps is not None:
        check_range("max_steps", max_steps, 1, None, integer=True)
    venv = make_vector_env(env, 1, seed=seed)
    rng = np.random.default_rng(seed)
    env_action = EnvAction(venv.single_action_space)
    returns, lengths = [], []
    bar = EvaluationProgress(episodes, enabled=progress, description="evaluating")
    try:
        obs, _ = venv.reset(seed=seed)
        total, length = 0.0, 0
        while len(returns) < episodes:
            action = policy.act(obs, rng, deterministic=deterministic)
            obs, reward, term, trunc, _ = venv.step(env_action(action))
            if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))):
                raise NonFiniteEnvironmentError("the environment returned NaN/inf during "
                                                "evaluation")
            total += float(reward[0])
            length += 1
            ended = bool(term[0] or trunc[0])  # then the vector env has reset itself
            if ended or (max_steps is not None and length >= max_steps):
                returns.append(total)
                lengths.append(length)
                bar.update(returns)
                total, length = 0.0, 0
                if not ended and len(returns) < episodes:
                    obs, _ = venv.reset()  # cut short: the next episode starts afresh
    finally:
        bar.close()
        venv.close()
    r = np.asarray(returns)
    return {"eval/return_mean": float(r.mean()), "eval/return_std": float(r.std()),
            "eval/return_min": float(r.min()), "eval/return_max": float(r.max()),
            "eval/length_mean": float(np.mean(lengths)), "eval/episodes": int(r.size)}



def evaluate(run_dir, *, episodes=10, seed=None, progress=False):
    """Evaluate the checkpointed policy of a run folder; returns the evaluation dict.

    ``progress=True`` shows the episodes done, elapsed time and ETA on standard error.
    """
    run = load_run(run_dir)
    try:
        return evaluate_policy(run.policy, run.cfg.env, episodes=episodes,
                               seed=run.cfg.seed + 10_000 if seed is None else seed,
                               progress=progress)
    finally:
        run.close()
