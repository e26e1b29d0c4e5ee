"""The single-path sampler: T steps of N vectorised environments into a :class:`Batch`.

TRPO paper, Sec. 5.1: run the policy π in N environments for T steps; store observations,
actions, rewards, the termination and truncation flags, the true final observation of every
finished episode and the old policy's log-probabilities and distribution parameters.
Advantages are estimated later from the rewards (:mod:`rl.advantages`).

The acting loop is plain numpy: one policy forward per vector-env step into preallocated
arrays, no autograd, no per-step Python objects beyond what Gymnasium returns.
"""

from __future__ import annotations

import copy
import numbers
import operator

import numpy as np
from gymnasium.vector import VectorEnv

from rl import checkpoint as ckpt
from rl.envs import (
    SameStepNativeVectorEnv,
    check_spaces,
    reset_api_error,
    restore_snapshot,
    snapshot_env,
)
from rl.sampling.batch import Batch, EnvAction
from rl.sampling.checks import (
    check_policy,
    check_policy_fits,
    checked_rng_state,
    env_name,
    generator,
    int_seed,
    positive_int,
    seed_sequence,
    space_layout,
)
from rl.sampling.finishing import failure, finish_batch, nonfinite
from rl.sampling.observations import ObservationStorage
from rl.spaces import map_leaves

__all__ = ["SinglePathSampler"]

ASYNC_PROBLEM = ("its environments run in worker processes (vectorization=async), whose state "
                 "is not saved")
NATIVE_PROBLEM = ("its environments are one native vector env (vectorization=native), whose "
                  "state is not saved")


class SinglePathSampler:
    """Sample T steps from each of N vectorised environments with the policy π.

    Parameters
    ----------
    venv : gymnasium.vector.VectorEnv
        From :func:`rl.envs.make_vector_env` (its autoreset mode must be ``SAME_STEP``).
    policy : rl.policies.Policy
        Acts through ``policy.step(obs, rng)`` (plain numpy). Its observation and action
        dimensions must be the environment's (:func:`rl.policies.make_policy` builds a
        matching one); a mismatch is a ValueError here.
    steps_per_env : int
        T; each :meth:`sample` returns ``T * N`` transitions.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Seeds the action noise and the environment resets (two independent streams spawned
        from it); the same seed gives the same batches. A Generator is drawn from once (four
        32-bit words become the seed's entropy), so Generators in the same state give the
        same sampler.
    update_normalizer : bool, default True
        Update ``policy.obs_normalizer`` (if the policy has one) with every batch's
        observations, after the batch has been sampled.

    Notes
    -----
    Episodes continue across :meth:`sample` calls: the environments are reset (with a seed
    drawn from ``seed``) only before the first call, then autoreset by Gymnasium when an
    episode ends, so batches of T steps concatenate into one long run. Returns and lengths
    of episodes are accumulated across calls.

    Box actions are sampled from the Gaussian and *stored unclipped* (their log-probability
    is the Gaussian's); only the action passed to ``env.step`` is clipped to the bounds.

    **Observation normaliser.** The statistics are updated once per batch, after sampling,
    with the batch's observations, so that every step of a batch is acted on with the same
    normalisation. The batch's ``log_probs`` and ``dist_params`` are then recomputed under
    the updated statistics (one batched forward pass), so that they are those of the policy
    the update starts from: the ratio ``π_θ / π_old`` is exactly 1 and the KL is exactly 0
    at ``θ = θ_old``. Without a normaliser they are the values returned by ``policy.step``.

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel, "Trust Region Policy
       Optimization", ICML 2015, Sec. 5.1 (single path).
    .. [2] Gymnasium vector API, https://gymnasium.farama.org/api/vector/

    Examples
    --------
    >>> from rl.envs import make_vector_env
    >>> from rl.policies import CategoricalMLP
    >>> venv = make_vector_env("CartPole-v1", 2)
    >>> pi = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0)
    >>> batch = SinglePathSampler(venv, pi, 5, seed=0).sample()
    >>> batch.observations.shape, batch.dist_params.shape, batch.num_steps
    ((5, 2, 4), (5, 2, 2), 10)
    >>> venv.close()
    """

    def __init__(
        self,
        venv: VectorEnv,
        policy,
        steps_per_env: int,
        *,
        seed,
        update_normalizer: bool = True,
    ):
        if not isinstance(venv, VectorEnv):
            raise ValueError(
                "venv must be a gymnasium.vector.VectorEnv; build one with "
                f"rl.envs.make_vector_env; got {type(venv).__name__}"
            )
        mode = venv.metadata.get("autoreset_mode", getattr(venv, "autoreset_mode", None))
        if mode is not None and getattr(mode, "name", str(mode)) != "SAME_STEP":
            raise ValueError(
                f"venv must autoreset on the same step (AutoresetMode.SAME_STEP) so that final "
                f"observations are in info['final_obs']; got {mode}; build it with "
                "rl.envs.make_vector_env"
            )
        check_spaces(venv.single_observation_space, venv.single_action_space)
        check_policy(policy)
        check_policy_fits(policy, venv.single_observation_space, venv.single_action_space)
        self.venv = venv
        self.policy = policy
        self.steps_per_env = positive_int(steps_per_env, "steps_per_env")
        self.update_normalizer = bool(update_normalizer)
        self.num_envs = int(venv.num_envs)

        policy_ss, env_ss = seed_sequence(seed).spawn(2)
        self._rng = generator(policy_ss)  # action noise
        self._env_seed_rng = generator(env_ss)  # seeds of env resets

        self._storage = ObservationStorage(venv.single_observation_space)
        self._act_shape, self._act_dtype = space_layout(venv.single_action_space)
        self._env_action = EnvAction(venv.single_action_space)

        self._obs = None  # current observations; None: reset before the next step
        self._episode_return = np.zeros(self.num_envs)
        self._episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.total_steps = 0  # vector-env steps times N
        self.num_episodes = 0
        #: None, or why :meth:`state_dict` cannot hold the environments' exact state (a
        #: sampler restored from it then starts fresh episodes)
        self.resume_problem = self._probe_resume_problem()

    def _probe_resume_problem(self) -> str | None:
        """Whether the environments' state can be saved as arrays and plain values: the
        first sub-environment is snapshotted once (read only) to find out before sampling."""
        envs = getattr(self.venv, "envs", None)
        if isinstance(self.venv, SameStepNativeVectorEnv):
            return NATIVE_PROBLEM
        if envs is None:
            return ASYNC_PROBLEM
        try:
            snapshot_env(envs[0])
        except ckpt.NotExpressibleError as exc:
            return f"the environment's state holds {exc}"
        except Exception:  # noqa: BLE001 - e.g. an env not reset yet: tried again when saving
            return None
        return None

    def close(self) -> None:
        """Close the vector environment."""
        self.venv.close()

    def __repr__(self) -> str:
        return (
            f"SinglePathSampler(venv={env_name(self.venv)}, num_envs={self.num_envs}, "
            f"policy={self.policy!r}, steps_per_env={self.steps_per_env}, "
            f"total_steps={self.total_steps}, num_episodes={self.num_episodes})"
        )

    # -- environment --------------------------------------------------------------------
    def _reset(self) -> None:
        try:
            obs, _ = self.venv.reset(seed=int_seed(self._env_seed_rng))
        except TypeError as exc:
            error = reset_api_error(exc)
            if error is None:
                raise failure("on reset", exc) from exc
            raise error from exc
        except Exception as exc:  # noqa: BLE001 - whatever the environment raised
            raise failure("on reset", exc) from exc
        obs = self._storage.convert(obs)
        if not self._storage.finite(obs):
            raise nonfinite("observation", "on reset")
        self._obs = obs
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0

    # -- sampling -----------------------------------------------------------------------
    def sample(self) -> Batch:
        """Run T steps in every environment and return them as a :class:`Batch`.

        Returns
        -------
        Batch

        Raises
        ------
        NonFiniteEnvironmentError
            If an observation or a reward is NaN or infinite (the message names the step
            and the environment).
        """
        return self._sample()

    def _sample(self, before_step=None) -> Batch:
        """The acting loop; ``before_step(t)`` (if given) runs before the policy acts at t."""
        if self._obs is None:
            self._reset()
        T, N = self.steps_per_env, self.num_envs
        policy, venv, rng = self.policy, self.venv, self._rng
        storage = self._storage  # plain arrays, or one array per leaf of a Dict/Tuple space
        checks_finite = storage.checks_finite
        if storage.structured:
            store, row, finite_sum = storage.set, storage.get, storage.finite_sum
        else:  # the plain array operations, without a call in between
            store, row, finite_sum = operator.setitem, operator.getitem, np.ndarray.sum

        observations = storage.empty(T, N)
        next_observations = storage.empty(T, N)
        actions = np.empty((T, N, *self._act_shape), dtype=self._act_dtype)
        rewards = np.empty((T, N))
        terminated = np.empty((T, N), dtype=bool)
        truncated = np.empty((T, N), dtype=bool)
        log_probs = np.empty((T, N))
        timesteps = np.empty((T, N), dtype=np.int64)
        dist_params = None  # (T, N, P) once P is known
        ended_returns: list[float] = []
        ended_lengths: list[int] = []
        episode_return, episode_length = self._episode_return, self._episode_length

        env_action = self._env_action  # Box actions: clip what the env sees, store the sample
        isfinite = np.isfinite
        store(observations, 0, self._obs)
        for t in range(T):
            if before_step is not None:
                before_step(t)
            obs = row(observations, t)  # written by the previous step (the reset observations)
            a, logp, params = policy.step(obs, rng)
            if dist_params is None:
                dist_params = np.empty((T, N, params.shape[-1]))
            actions[t] = a
            log_probs[t] = logp
            dist_params[t] = params
            timesteps[t] = episode_length

            try:
                next_obs, r, term, trunc, info = venv.step(env_action(a))
                rewards[t] = r
                store(next_observations, t, next_obs)  # converted to the storage dtype
            except Exception as exc:  # noqa: BLE001 - whatever the environment raised
                raise failure(self._where(t, None), exc) from exc
            # one finiteness test of the step's sums; the exact search only if it fails
            # (a finite sum of finite numbers can overflow, hence the second test)
            next_t = row(next_observations, t)
            if not isfinite(rewards[t].sum() + (finite_sum(next_t) if checks_finite else 0.0)):
                self._check_finite(t, rewards[t], next_t if checks_finite else None)
            terminated[t] = term
            truncated[t] = trunc
            if t + 1 < T:
                store(observations, t + 1, next_t)
            episode_return += rewards[t]
            episode_length += 1

            if (term | trunc).any():
                final_obs = info["final_obs"]
                for i in np.flatnonzero(term | trunc):
                    final = self._final_observation(final_obs[i])
                    if checks_finite and not storage.finite(final):
                        raise nonfinite("final observation", self._where(t, int(i)))
                    store(next_observations, (t, i), final)
                    ended_returns.append(float(episode_return[i]))
                    ended_lengths.append(int(episode_length[i]))
                    episode_return[i] = 0.0
                    episode_length[i] = 0

        self._obs = storage.convert(next_obs)
        self.total_steps += T * N
        self.num_episodes += len(ended_returns)

        return finish_batch(policy, Batch(
            observations=observations,
            actions=actions,
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            next_observations=next_observations,
            log_probs=log_probs,
            dist_params=dist_params,
            timesteps=timesteps,
            episode_returns=np.asarray(ended_returns, dtype=np.float64),
            episode_lengths=np.asarray(ended_lengths, dtype=np.int64),
        ), self.update_normalizer)

    def _final_observation(self, final):
        """One sub-environment's ``info["final_obs"]`` entry as stored (for a Dict/Tuple
        space, its leaves as arrays of their storage dtypes)."""
        storage = self._storage
        if storage.structured:
            return map_leaves(np.asarray, final)
        return np.asarray(final, dtype=storage.dtype)

    def _check_finite(self, t: int, r: np.ndarray, obs) -> None:
        """Raise for the first non-finite reward or observation of step ``t``, if any."""
        bad = ~np.isfinite(r)
        if bad.any():
            raise nonfinite("reward", self._where(t, int(np.flatnonzero(bad)[0])))
        if obs is not None:
            bad = self._storage.bad_rows(obs)
            if bad.any():
                raise nonfinite("observation", self._where(t, int(np.flatnonzero(bad)[0])))

    def _where(self, t: int, i: int | None) -> str:
        where = (f"at step t={t} of this batch (sampler step "
                 f"{self.total_steps // self.num_envs + t})")
        return where if i is None else f"{where} in sub-environment {i}"

    # -- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume sampling: RNG states, counters, open episodes.

        Returns
        -------
        dict
            ``rng`` and ``env_seed_rng`` (bit-generator states), ``observations`` (current
            observations, or None before the first reset), ``episode_return`` and
            ``episode_length`` (accumulators of the open episodes), ``total_steps``,
            ``num_episodes``; ``envs``: each sub-environment's
            :func:`rl.envs.snapshot_env` (arrays and plain values), or None when they cannot
            be saved (before the first reset, or see :attr:`resume_problem`). All copies.
        """
        return {
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "env_seed_rng": copy.deepcopy(self._env_seed_rng.bit_generator.state),
            "observations": None if self._obs is None else map_leaves(np.copy, self._obs),
            "episode_return": self._episode_return.copy(),
            "episode_length": self._episode_length.copy(),
            "total_steps": int(self.total_steps),
            "num_episodes": int(self.num_episodes),
            "envs": self._env_snapshots(),
        }

    def _env_snapshots(self) -> list | None:
        if self._obs is None or self.resume_problem is not None:
            return None
        try:
            return [snapshot_env(e) for e in self.venv.envs]
        except ckpt.NotExpressibleError as exc:  # an attribute the first probe did not have
            self.resume_problem = f"the environment's state holds {exc}"
            return None

    def load_state_dict(self, state: dict, *, reset_env: bool | None = None) -> None:
        """Restore a :meth:`state_dict`.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` of a sampler with the same number of environments.
        reset_env : bool or None, default None
            ``None``: restore the environments from ``state['envs']`` when the state holds
            them (the open episodes continue exactly), else as ``True``. With
            ``reset_env=True`` (resuming in a fresh process with a fresh vector env) the
            next :meth:`sample` resets the environments with a seed drawn from the restored
            stream, so a resumed run is reproducible, and the open episodes are dropped.
            With ``reset_env=False`` the environments are assumed to be exactly where they
            were when the state was saved (same object, or restored by other means), and the
            open episodes continue.
        """
        expected = {"rng", "env_seed_rng", "observations", "episode_return", "episode_length",
                    "total_steps", "num_episodes"}
        if not isinstance(state, dict) or not expected <= set(state):
            raise ValueError(
                f"state must be a dict from SinglePathSampler.state_dict() with keys "
                f"{sorted(expected)}; got {type(state).__name__}"
            )
        n = self.num_envs
        if np.ndim(state["episode_return"]) != 1 or np.shape(state["episode_return"]) != (n,):
            raise ValueError(
                f"state['episode_return'] has shape {np.shape(state['episode_return'])}: the "
                f"state was saved by a sampler with another number of environments (this one "
                f"has {n}, so shape ({n},) is expected)"
            )
        episode_return = np.array(state["episode_return"], dtype=np.float64)
        episode_length = np.asarray(state["episode_length"])
        if not np.all(np.isfinite(episode_return)):
            raise ValueError(f"state['episode_return'] must be finite; got {episode_return!r}")
        if episode_length.shape != (n,) or episode_length.dtype.kind not in "iu" or np.any(
            episode_length < 0
        ):
            raise ValueError(
                f"state['episode_length'] must be {n} non-negative integers (one per "
                f"environment); got {state['episode_length']!r}"
            )
        counters = {}
        for key in ("total_steps", "num_episodes"):
            value = state[key]
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, numbers.Integral
            ) or value < 0:
                raise ValueError(f"state[{key!r}] must be a non-negative integer; got {value!r}")
            counters[key] = int(value)
        obs = state["observations"]
        if obs is not None:
            obs = self._checked_observations(obs)
        rng_state = checked_rng_state(self._rng, state["rng"], "state['rng']")
        env_seed_state = checked_rng_state(self._env_seed_rng, state["env_seed_rng"],
                                            "state['env_seed_rng']")
        snapshots = state.get("envs")
        if reset_env is None:
            reset_env = snapshots is None
        if snapshots is not None and not reset_env:
            envs = getattr(self.venv, "envs", None)
            if not isinstance(snapshots, list) or envs is None or len(snapshots) != len(envs):
                count = len(snapshots) if isinstance(snapshots, list) else 0
                raise ValueError(f"it holds {count} environment states for num_envs="
                                 f"{self.num_envs}")
            for env, snapshot in zip(envs, snapshots, strict=True):
                restore_snapshot(env, snapshot)
        # everything is checked: change the sampler
        self._rng.bit_generator.state = rng_state
        self._env_seed_rng.bit_generator.state = env_seed_state
        self.total_steps = counters["total_steps"]
        self.num_episodes = counters["num_episodes"]
        if reset_env or obs is None:
            self._obs = None
            self._episode_return[:] = 0.0
            self._episode_length[:] = 0
        else:
            self._obs = obs
            self._episode_return[:] = episode_return
            self._episode_length[:] = episode_length

    def _checked_observations(self, obs):
        """``state['observations']`` as the sampler stores them, after checking them."""
        return self._storage.checked(obs, self.num_envs, "state['observations']")
