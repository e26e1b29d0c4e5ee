"""A run's settings: :class:`TrainConfig` (the runner's own, validated in ``__post_init__``),
what a run returns (:class:`TrainResult`), and :func:`resolve_config`, which builds the
runner's and the algorithm's configs from names, ``--set`` overrides and the environment's
preset (:mod:`rl.presets`).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rl.algorithms import ALGORITHMS
from rl.algorithms.base import check_range
from rl.presets import PRESETS, preset_settings, resolve_preset
from rl.runner.errors import ConfigError

__all__ = ["TrainConfig", "TrainResult", "plain_value", "coerce_setting", "resolve_config"]


_SEED_MAX = 2**64 - 1  # the largest seed gymnasium's reset accepts


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
            setattr(self, f.name, plain_value(getattr(self, f.name)))
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


def plain_value(value):
    """``value`` with numpy scalars (``np.int64(3)``) replaced by Python ones, in tuples and
    lists too, so a config holds what JSON can store."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(plain_value(v) for v in value)
    return value


def _unknown(kind, value, valid, note=""):
    close = difflib.get_close_matches(str(value), list(valid), n=3)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {value!r}.{hint}{note} Valid: {sorted(valid)}"


def coerce_setting(name, text, annotation):
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
    overrides = {key: plain_value(value) for key, value in dict(overrides or {}).items()}
    steps, seed = plain_value(steps), plain_value(seed)
    for name, given in (("steps", steps), ("seed", seed)):
        for key in (name, f"train.{name}"):
            if key in overrides and given is not None and coerce_setting(
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
    except ValueError:
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
            algo_kw[bare] = coerce_setting(key, value, algo_hints[bare])
        elif scope != "algo" and bare in train_hints and bare not in ("algo", "env"):
            train_kw[bare] = coerce_setting(key, value, train_hints[bare])
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
