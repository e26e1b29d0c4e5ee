"""The objects of one run, built from its configs: environments, policy, value function,
algorithm, sampler and reward scaler (:class:`Run`), and the run's state as arrays and JSON
for its checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings

import gymnasium
import numpy as np

from rl.advantages import make_baseline
from rl.algorithms import ALGORITHMS, RENAMED_METRICS
from rl.envs import (
    check_spaces,
    env_factory,
    make_vector_env,
)
from rl.policies import make_policy
from rl.reward_scaling import RewardScaler
from rl.runner.config import TrainConfig
from rl.runner.errors import ConfigError, ResumeWarning
from rl.sampling import BlockSampler, SinglePathSampler, VineSampler

__all__ = ["Run"]


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


class Run:
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


def _space_bytes(space) -> int:
    """Bytes one value of ``space`` takes in a batch: a Box in its own dtype (images stay
    uint8), integers as int64, a Dict or Tuple the sum of its leaves."""
    subspaces = getattr(space, "spaces", None)
    if isinstance(subspaces, dict):
        return sum(_space_bytes(s) for s in subspaces.values())
    if isinstance(subspaces, tuple):
        return sum(_space_bytes(s) for s in subspaces)
    shape = getattr(space, "shape", None) or ()
    itemsize = np.dtype(space.dtype).itemsize if isinstance(space, gymnasium.spaces.Box) else 8
    return int(np.prod(shape, dtype=np.int64)) * itemsize if shape else itemsize


def _check_memory(cfg, obs_space, act_space):
    """Refuse a batch that cannot fit in memory before building anything for it: the
    observations and next observations, actions and the distribution parameters, and
    twelve float64 numbers per step (rewards, flags, log-probabilities, advantages ...)."""
    per_step = 2 * _space_bytes(obs_space) + 2 * 8 * _obs_dim(act_space) + 12 * 8
    need = cfg.batch_size * per_step
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return
    if need > total // 2:
        raise ConfigError(
            f"a batch of num_envs x steps_per_env = {cfg.num_envs:,} x {cfg.steps_per_env:,} "
            f"steps needs about {need / 2**30:.1f} GiB, more than half of this machine's "
            f"{total / 2**30:.1f} GiB: lower num_envs or steps_per_env with --set")
