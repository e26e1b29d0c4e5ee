"""The training runner: config, the sample → update loop, run folders, checkpoints, resume.

>>> result = rl.train("trpo", "CartPole-v1", steps=100_000, seed=0)   # doctest: +SKIP
>>> result.evaluation["eval/return_mean"]                               # doctest: +SKIP

A run folder holds ``config.json``, ``metrics.csv`` (one row per iteration), the
checkpoint (``checkpoint.json``, a manifest, and ``checkpoint-<iteration>.npz``: policy,
value function, normaliser, optimizer, sampler, environment and RNG state as arrays and
JSON, see :mod:`rl.checkpoint`), ``evaluation.json`` and ``learning_curve.png``. Every file
is written atomically and a checkpoint is committed by its manifest, written last, so an
interrupted or failed run keeps everything already saved. Loading a run folder never
executes code from it.
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
import signal
import sys
import threading
import time
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium
import numpy as np
from threadpoolctl import threadpool_limits

from rl import checkpoint as ckpt
from rl.advantages import make_baseline
from rl.algorithms import ALGORITHMS, RENAMED_METRICS
from rl.algorithms.base import check_range
from rl.checkpoint import atomic_write_text
from rl.envs import (
    EnvironmentFailure,
    NonFiniteEnvironmentError,
    check_spaces,
    env_factory,
    make_vector_env,
    snapshot_env,
)
from rl.policies import make_policy
from rl.presets import PRESETS, preset_settings, resolve_preset
from rl.reward_scaling import RewardScaler
from rl.progress import EvaluationProgress, TrainingProgress
from rl.sampling import BlockSampler, EnvAction, SinglePathSampler, VineSampler
from rl.spaces import all_finite
from rl.tensorboard import TensorBoardWriter

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "load_run", "resolve_config",
           "convert_pickle_checkpoint", "ConfigError", "CheckpointError", "ResumeWarning",
           "RunTerminated"]

CHECKPOINT_VERSION = ckpt.FORMAT_VERSION
_SEED_MAX = 2**64 - 1  # the largest seed gymnasium's reset accepts


class ConfigError(ValueError):
    """A bad algorithm, environment or setting; the message says how to fix it."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or does not match the requested run."""


class ResumeWarning(UserWarning):
    """A run whose environments cannot be saved exactly: a resumed run starts fresh
    episodes, so its numbers differ from an uninterrupted run's (the message says why)."""


class RunTerminated(BaseException):
    """SIGTERM or SIGHUP arrived during :func:`train`; the run saved its last completed
    iteration. ``signum`` is the signal; the command line exits with ``128 + signum``."""

    def __init__(self, signum):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


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
        Normalise observations by running mean and std (off: Spinning Up and the TRPO
        paper feed raw observations; the MuJoCo presets turn it on, as rl-baselines3-zoo
        and OpenAI baselines do).
    obs_clip : float
        With ``obs_normalization``: normalised observations are clipped to ``[-obs_clip,
        obs_clip]`` (10: VecNormalize's ``clip_obs`` and OpenAI baselines' ``RunningMeanStd``
        clip).
    reward_scaling : bool
        Divide rewards by a running estimate of the discounted return's standard deviation,
        then clip them (VecNormalize's ``norm_reward`` rule, :class:`rl.reward_scaling.
        RewardScaler`); the reported episode returns stay unscaled. Off by default (the
        TRPO paper and Spinning Up learn from raw rewards); on in the MuJoCo presets, as in
        rl-baselines3-zoo.
    reward_clip : float
        With ``reward_scaling``: scaled rewards are clipped to ``[-reward_clip,
        reward_clip]`` (10: VecNormalize's ``clip_reward``).
    value_target_normalization : bool
        Fit the value network to standardised targets and keep its output layer rescaled
        to their running mean and std (:class:`rl.advantages.MLPValueFunction`'s
        ``normalize_targets``; on: the PopArt-style rescaling OpenAI baselines' PPO2 and
        the "What matters" study recommend).
    init_log_std : float
        Initial log standard deviation of Gaussian policies (0, σ = 1: the TRPO/PPO
        reference code and sb3's ``log_std_init``).
    policy_output_gain : float
        Gain of the orthogonal initialisation of the policy's output layer (0.01: the PPO
        reference code and sb3's ``ortho_init``, so the initial policy is near uniform or
        zero-mean; hidden layers always get √2).
    preset : str
        Per-environment settings applied beneath ``--set`` (:mod:`rl.presets`): ``"auto"``
        uses the environment's preset if it has one, ``"none"`` uses none, a preset's name
        applies that preset. ``config.json`` records the preset applied.
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
        ``"sync"`` (in turn, in this process), ``"async"`` (subprocesses), ``"native"``
        (the environment's own vector env, one array program: CartPole) or ``"auto"``
        (native where there is one, else sync); see :func:`rl.envs.make_vector_env`.
        ``"sync"`` is the default: native environments draw their random numbers from one
        generator, so a run's numbers differ from the per-environment path's.
    sampler : str
        Where the single-path environments run: ``"local"`` (this process) or ``"ray"``
        (Ray actors on this machine or a cluster; ``pip install -e ".[ray]"``).
    num_workers : int or None
        Blocks of environments, each with its own random streams
        (:class:`rl.sampling.BlockSampler`): ``num_envs / num_workers`` environments per
        block. ``None`` (default) with ``sampler="local"`` is one
        :class:`rl.sampling.SinglePathSampler` holding all the environments; with
        ``sampler="ray"`` it is one worker per CPU of the cluster. The same number of
        blocks gives the same numbers locally and on Ray. With ``sampling="vine"`` and
        ``sampler="ray"``: the Ray workers running the vine's rollouts (same numbers as
        the rollouts in this process).
    ray_address : str or None
        With ``sampler="ray"``: the address of a running cluster (``ray start --head``
        prints it); ``None`` starts a local cluster with this machine's cores.
    blas_threads : int or None
        Threads the BLAS library may use during the run (``None``: leave it alone). The
        updates are many small matrix products, for which threads mostly add
        synchronisation (``benchmarks/bench_update.py`` times an update with either).
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
    obs_clip: float = 10.0
    reward_scaling: bool = False
    reward_clip: float = 10.0
    value_target_normalization: bool = True
    init_log_std: float = 0.0
    policy_output_gain: float = 0.01
    preset: str = "auto"
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
    sampler: str = "local"
    num_workers: int | None = None
    ray_address: str | None = None

    def __post_init__(self):
        for f in dataclasses.fields(self):  # numpy scalars become the Python values they hold
            setattr(self, f.name, _plain(getattr(self, f.name)))
        try:
            self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        except (TypeError, ValueError):
            raise ConfigError(f"hidden_sizes must be a sequence of positive integers, e.g. "
                              f"(64, 64); got {self.hidden_sizes!r}") from None
        if self.algo not in ALGORITHMS:
            raise ConfigError(_unknown("algorithm", self.algo, ALGORITHMS))
        if ALGORITHMS[self.algo].exact_only:
            samplers = sorted(n for n, a in ALGORITHMS.items() if not a.exact_only)
            raise ConfigError(
                f"{self.algo} runs in exact mode only, on a TabularMDP through "
                "PolicyObjective.exact (see the tutorial 'Exact algorithms'); train on an "
                f"environment with one of {samplers}")
        check_range("steps", self.steps, 1, None, integer=True)
        check_range("seed", self.seed, 0, _SEED_MAX, integer=True)
        self.steps, self.seed = int(self.steps), int(self.seed)
        check_range("num_envs", self.num_envs, 1, None, integer=True)
        check_range("steps_per_env", self.steps_per_env, 1, None, integer=True)
        if self.value_iterations is not None:
            check_range("value_iterations", self.value_iterations, 1, None, integer=True)
        check_range("value_minibatch_size", self.value_minibatch_size, 1, None, integer=True)
        check_range("value_learning_rate", self.value_learning_rate, 0.0, None, low_open=True)
        check_range("obs_clip", self.obs_clip, 0.0, None, low_open=True)
        check_range("reward_clip", self.reward_clip, 0.0, None, low_open=True)
        check_range("init_log_std", self.init_log_std, None, None)
        check_range("policy_output_gain", self.policy_output_gain, 0.0, None)
        if self.preset not in ("auto", "none", *PRESETS):
            raise ConfigError(_unknown("preset", self.preset, ("auto", "none", *PRESETS)))
        if self.reward_scaling and self.sampling == "vine":
            raise ConfigError("reward_scaling is for single-path sampling (the vine estimates "
                              "its advantages from rollouts of raw rewards); drop "
                              "reward_scaling or use sampling=single_path")
        check_range("eval_episodes", self.eval_episodes, 0, None, integer=True)
        check_range("checkpoint_every", self.checkpoint_every, 1, None, integer=True)
        if self.blas_threads is not None:
            check_range("blas_threads", self.blas_threads, 1, None, integer=True)
        if self.num_workers is not None:
            check_range("num_workers", self.num_workers, 1, None, integer=True)
            if self.num_envs % self.num_workers and self.sampling != "vine":
                raise ConfigError(f"num_envs={self.num_envs} must be a multiple of "
                                  f"num_workers={self.num_workers} (each worker holds "
                                  "num_envs / num_workers environments); change either")
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
                              ("vectorization", ("sync", "async", "native", "auto")),
                              ("sampler", ("local", "ray"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {list(allowed)}; got "
                                  f"{getattr(self, name)!r}")

        if self.sampling == "vine" and self.sampler == "local" and self.num_workers is not None:
            raise ConfigError("num_workers with sampling=vine runs the vine's rollouts on Ray "
                              "workers: add --set sampler=ray (its trunk stays in this process)")
        if self.ray_address is not None and self.sampler != "ray":
            raise ConfigError("ray_address is for sampler=ray; add --set sampler=ray")

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
def _plain(value):
    """``value`` with numpy scalars (``np.int64(3)``) replaced by Python ones, in tuples and
    lists too, so a config holds what JSON can store."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value


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
    overrides = {key: _plain(value) for key, value in dict(overrides or {}).items()}
    steps, seed = _plain(steps), _plain(seed)
    for name, given in (("steps", steps), ("seed", seed)):
        for key in (name, f"train.{name}"):
            if key in overrides and given is not None and _coerce(
                    key, overrides[key], int) != given and not (name == "seed" and given == 0):
                raise ConfigError(f"{name} is given twice ({name}={given} and the setting "
                                  f"{key}={overrides[key]}); give it once")
    algo_cls = ALGORITHMS[algo].config_class
    algo_hints = typing.get_type_hints(algo_cls)
    train_hints = typing.get_type_hints(TrainConfig)
    algo_kw, train_kw = {}, {"algo": algo, "env": env, "seed": seed}
    if steps is not None:
        train_kw["steps"] = steps
    preset_key = next((k for k in ("train.preset", "preset") if k in overrides), None)
    try:
        preset = resolve_preset(str(overrides[preset_key]).strip() if preset_key else "auto",
                                str(env))
    except ValueError as exc:
        raise ConfigError(_unknown("preset", overrides[preset_key], ("auto", "none", *PRESETS))
                          ) from None
    if preset_key:
        overrides[preset_key] = preset
    else:
        train_kw["preset"] = preset
    given = {key.rpartition(".")[2] for key in overrides}
    for key, value in preset_settings(preset, algo).items():  # beneath the user's --set
        if key in given:
            continue
        if key in algo_hints:
            algo_kw[key] = value
        elif key in train_hints:
            train_kw[key] = value
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
def _make_baseline(cfg: TrainConfig, obs_space, normalizer, seed):
    try:  # the value network fits the spaces (rl.advantages.make_baseline)
        return make_baseline(cfg.baseline, obs_space, cfg.hidden_sizes, seed=seed,
                             optimizer=cfg.value_optimizer, iterations=cfg.value_iterations,
                             minibatch_size=cfg.value_minibatch_size,
                             learning_rate=cfg.value_learning_rate, obs_normalizer=normalizer,
                             normalize_targets=cfg.value_target_normalization, dtype=cfg.dtype)
    except ValueError as exc:  # e.g. a linear baseline on images
        raise ConfigError(f"baseline={cfg.baseline!r}: {exc}") from None


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
        self.env_is_id = env is None or isinstance(env, str)
        self.venv = None
        try:
            probe = env_factory(env_spec)()
            try:
                obs_space, act_space = probe.observation_space, probe.action_space
                check_spaces(obs_space, act_space)
                _check_memory(cfg, obs_space, act_space)
            finally:
                probe.close()
            if cfg.sampling != "vine" and cfg.sampler == "local" and cfg.num_workers is None:
                if cfg.num_envs > _MANY_ENVS:
                    print(f"building {cfg.num_envs:,} environments ...", file=sys.stderr,
                          flush=True)
                self.venv = make_vector_env(env_spec, cfg.num_envs, seed=s_env,
                                            vectorization=cfg.vectorization)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        except (gymnasium.error.Error, ImportError) as exc:  # e.g. a missing extra (Box2D)
            raise ConfigError(f"environment {cfg.env!r} could not be made: {exc}") from None
        self.policy = make_policy(obs_space, act_space, hidden_sizes=cfg.hidden_sizes,
                                  seed=s_policy, obs_normalization=cfg.obs_normalization,
                                  dtype=cfg.dtype, obs_clip=cfg.obs_clip,
                                  init_log_std=cfg.init_log_std,
                                  output_gain=cfg.policy_output_gain)
        # VecNormalize's reward scaling, applied to each finished batch (rl.reward_scaling)
        self.reward_scaler = (RewardScaler(cfg.num_envs, algo_cfg.gamma, clip=cfg.reward_clip)
                              if cfg.reward_scaling else None)
        self.baseline = _make_baseline(cfg, obs_space,
                                       getattr(self.policy, "obs_normalizer", None), s_value)
        self.algo = ALGORITHMS[cfg.algo](self.policy, self.baseline, algo_cfg, seed=s_algo)
        try:
            self.sampler = _make_sampler(cfg, algo_cfg, env_spec, self.venv, self.policy,
                                         s_sample, s_env)
        except BaseException:
            if self.venv is not None:
                self.venv.close()
            raise
        self._saved_problem = None  # the resume problem a loaded checkpoint recorded
        self.iteration = 0
        self.total_steps = 0
        self.history = []
        self.snapshot, self.snapshot_saved = None, True  # see _iterate
        self.saved_iteration = None  # the iteration of the last committed checkpoint

    @property
    def resume_problem(self):
        """None, or why a checkpoint of this run cannot hold its environments' state."""
        return self._saved_problem or self.sampler.resume_problem

    def warn_if_not_resumable(self):
        """Say at the start of a run that it cannot be resumed bit for bit, and why."""
        if self.resume_problem is not None:
            warnings.warn(ResumeWarning(
                f"this run cannot be resumed bit for bit: {self.resume_problem}; a resumed "
                "run continues from its checkpoint with fresh episodes"), stacklevel=3)

    def state_dict(self):
        """The run's state as arrays and JSON values (the checkpoint, :mod:`rl.checkpoint`)."""
        known = self.resume_problem
        sampler = self.sampler.state_dict()
        if known is None and self.resume_problem is not None:  # found while saving
            self.warn_if_not_resumable()
        return {
            "config": dataclasses.asdict(self.cfg),
            "algo_config": self.algo_cfg.to_dict(),
            "iteration": self.iteration,
            "total_steps": self.total_steps,
            "policy": self.policy.state_dict(),
            "baseline": self.baseline.state_dict(),
            "algo": self.algo.state_dict(),
            "sampler": sampler,
            # sub_envs: where checkpoints held the environments before the samplers saved
            # their own (kept None, so the layout of format 2 is unchanged)
            "env": {"is_id": self.env_is_id, "name": self.cfg.env,
                    "problem": self.resume_problem, "sub_envs": None},
            "history": self.history,
            **({"reward_scaler": self.reward_scaler.state_dict()}
               if self.reward_scaler is not None else {}),
        }

    def load_state_dict(self, state):
        self.policy.load_state_dict(state["policy"])
        self.baseline.load_state_dict(state["baseline"])
        self.algo.load_state_dict(state["algo"])
        sampler, sub_envs = state["sampler"], state["env"]["sub_envs"]
        if sub_envs is not None and isinstance(sampler, dict):
            # a checkpoint written before the samplers saved their own environments
            sampler = {**sampler, "envs": sub_envs}
        if sampler is not None:  # None: a vine run whose trunk could not be saved then
            self.sampler.load_state_dict(sampler)
        if (self.reward_scaler is None) != ("reward_scaler" not in state):
            raise ValueError("the checkpoint's reward scaler does not match its "
                             "reward_scaling setting")
        if self.reward_scaler is not None:
            self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.iteration = int(state["iteration"])
        self.total_steps = int(state["total_steps"])
        # rows written before a diagnostic was renamed carry its current name
        self.history = [{RENAMED_METRICS.get(k, k): v for k, v in row.items()}
                        for row in state["history"]]
        self.saved_iteration = self.iteration

    def close(self):
        self.sampler.close()


def _make_sampler(cfg, algo_cfg, env_spec, venv, policy, seed, env_seed):
    """The sampler the configuration names (a single path's vector env ``venv`` built by
    the caller)."""
    if cfg.sampling == "vine":
        try:
            return VineSampler(
                env_spec, policy, num_trunk_steps=cfg.batch_size,
                num_rollout_states=cfg.vine_rollout_states,
                actions_per_state=cfg.vine_actions_per_state,
                rollout_length=cfg.vine_rollout_length, gamma=algo_cfg.gamma, seed=seed,
                estimator=cfg.vine_estimator,
                rollout_workers=(cfg.num_workers or os.cpu_count() or 1)
                if cfg.sampler == "ray" else None, ray_address=cfg.ray_address)
        except ValueError as exc:  # e.g. VineUnsupportedError: no state save/restore
            raise ConfigError(str(exc)) from None
    if venv is None:  # blocks, in this process or on Ray workers
        if isinstance(env_spec, gymnasium.Env):
            raise ConfigError("num_workers and sampler=ray build their environments from an id "
                              "or a factory: pass env as a function returning a fresh env")
        try:
            return BlockSampler(env_spec, policy, num_envs=cfg.num_envs,
                                steps_per_env=cfg.steps_per_env, num_blocks=cfg.num_workers,
                                seed=seed, env_seed=env_seed, backend=cfg.sampler,
                                ray_address=cfg.ray_address, vectorization=cfg.vectorization)
        except ValueError as exc:  # RayUnavailableError, bad sizes
            raise ConfigError(str(exc)) from None
    return SinglePathSampler(venv, policy, cfg.steps_per_env, seed=seed)



_MANY_ENVS = 1024  # building more environments than this takes long enough to say so


def _check_memory(cfg, obs_space, act_space):
    """Refuse a batch that cannot fit in memory before building anything for it."""
    per_step = 2 * _obs_dim(obs_space) + 2 * _obs_dim(act_space) + 12  # float64 arrays
    need = cfg.batch_size * per_step * 8
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return
    if need > total // 2:
        raise ConfigError(
            f"a batch of num_envs x steps_per_env = {cfg.num_envs:,} x {cfg.steps_per_env:,} "
            f"steps needs about {need / 2**30:.1f} GiB, more than half of this machine's "
            f"{total / 2**30:.1f} GiB: lower num_envs or steps_per_env with --set")


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
        run = _Run(cfg, algo_cfg, env=env)
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


def _snapshot(run):
    """The run's checkpoint as it stands: ``(npz bytes, rows, iteration, total_steps)``."""
    return ckpt.pack(run.state_dict()), len(run.history), run.iteration, run.total_steps


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (a full disk, a read-only folder ...)."""


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


def _save_snapshot(run, run_dir, signals=None):
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
                check_range("steps", _plain(steps), 1, None, integer=True)
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
        run = _Run(cfg, algo_cfg, env=None if isinstance(env, str) else env)
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
                _save_snapshot(run, run_dir)
            except CheckpointWriteError as write_error:
                exc.add_note(str(write_error))
            exc.run_dir = run_dir  # where it is kept, for the command line's message
            exc.saved_iteration = run.saved_iteration
            raise
        if stopped is not None:
            status = stopped
        if not status.startswith("stopped: cannot write"):
            try:
                _save_snapshot(run, run_dir, signals)
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
        run.snapshot, run.snapshot_saved = _snapshot(run), False
        bar.update(run.total_steps, row)
        if board is not None:
            board.write(row, run.total_steps)
        last = run.total_steps >= cfg.steps
        stop = callback is not None and callback(row) is True
        if last or stop or run.iteration % cfg.checkpoint_every == 0:
            _save_snapshot(run, run_dir, signals)
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
            if not (all_finite(obs) and np.all(np.isfinite(reward))):
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



def evaluate(run_dir, *, episodes=10, seed=None, env=None, progress=False):
    """Evaluate the checkpointed policy of a run folder; returns the evaluation dict.

    ``env``: for a run trained on an environment object or factory, the same one again.
    ``progress=True`` shows the episodes done, elapsed time and ETA on standard error.
    """
    run = load_run(run_dir, env=env)
    try:
        return evaluate_policy(run.policy, run.cfg.env if env is None else env,
                               episodes=episodes,
                               seed=run.cfg.seed + 10_000 if seed is None else seed,
                               progress=progress)
    finally:
        run.close()
