"""Sampling: single-path rollouts into a :class:`Batch`, and the vine procedure of TRPO.

Two schemes estimate the quantities the policy update needs (TRPO paper, Sec. 5):

- **Single path** (:class:`SinglePathSampler`): run the policy π in N vectorised
  environments for T steps; store observations, actions, rewards, the termination and
  truncation flags, the true final observation of every finished episode and the old
  policy's log-probabilities and distribution parameters. Advantages are estimated later
  from the rewards (:mod:`rl.advantages`).
- **Vine** (:class:`VineSampler`): run trunk trajectories with π, pick a rollout set of
  states along them, and from each state branch K rollouts (one per action a_k), each with
  the same random numbers, to estimate ``Q(s, a_k)`` directly. Needs environments whose
  state can be saved and restored (:func:`rl.envs.save_state`).

The acting loop is plain numpy: one policy forward per vector-env step into preallocated
arrays, no autograd, no per-step Python objects beyond what Gymnasium returns.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass, field

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv

from rl.envs import (
    EnvironmentFailure,
    EnvState,
    NonFiniteEnvironmentError,
    _reset_api_error,
    check_spaces,
    env_factory,
    make_vector_env,
    restore_state,
    save_state,
    supports_state_restore,
    vine_unsupported_error,
)

__all__ = ["Batch", "EnvAction", "SinglePathSampler", "VineBatch", "VineSampler"]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _seed_sequence(seed, name: str = "seed") -> np.random.SeedSequence:
    """The SeedSequence the sampler's streams are spawned from.

    A ``numpy.random.Generator`` is not used directly (the sampler spawns independent
    streams and checkpoints their states); four 32-bit words drawn from it are the
    entropy of the SeedSequence, so the same Generator state gives the same sampler, and
    the Generator advances by those draws.
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence([int(w) for w in seed.integers(0, 2**32, size=4)])
    if seed is None or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_))
        and seed >= 0
    ):
        return np.random.SeedSequence(seed)
    raise ValueError(
        f"{name} must be a non-negative integer, a numpy.random.Generator, a "
        f"numpy.random.SeedSequence or None; got {seed!r}"
    )


def _generator(ss: np.random.SeedSequence) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(ss))


def _int_seed(rng: np.random.Generator) -> int:
    """A seed for ``env.reset(seed=...)`` / a fresh Generator, drawn from ``rng``."""
    return int(rng.integers(0, 2**31 - 1))


def _checked_rng_state(rng: np.random.Generator, state, where: str) -> dict:
    """A copy of ``state`` after checking it is a bit-generator state ``rng`` accepts.

    ``where`` names the entry in error messages, e.g. ``"state['choice_rng']"``.
    """
    expected = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        raise ValueError(
            f"{where} must be a {expected} bit-generator state "
            f"(Generator.bit_generator.state), as saved by state_dict(); got {state!r}"
        )
    probe = type(rng.bit_generator)()
    try:
        probe.state = copy.deepcopy(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(
            f"{where} is not a valid {expected} bit-generator state ({exc}); pass the "
            "dict saved by state_dict() unchanged"
        ) from None
    return copy.deepcopy(state)


def _space_layout(space) -> tuple[tuple[int, ...], type]:
    """Shape of one element and the dtype the sampler stores it as."""
    if isinstance(space, spaces.Discrete):
        return (), np.int64
    return tuple(space.shape), np.float64


def _check_policy(policy) -> None:
    for name in ("step", "act", "distribution"):
        if not callable(getattr(policy, name, None)):
            raise ValueError(
                f"policy must provide {name}() like the policies of rl.policies "
                f"(TabularSoftmax, CategoricalMLP, GaussianMLP); got {type(policy).__name__}"
            )


def _check_policy_fits(policy, observation_space, action_space) -> None:
    """A ValueError naming every way ``policy`` does not fit the spaces (checked on the
    attributes of the policies of :mod:`rl.policies`; others are not checked)."""
    from rl.distributions import Categorical, DiagGaussian

    problems = []
    name = type(policy).__name__
    dist = getattr(policy, "distribution_class", None)
    discrete_actions = isinstance(action_space, spaces.Discrete)
    if dist is DiagGaussian and discrete_actions:
        problems.append(f"{name} samples continuous (Gaussian) actions but the action space "
                        f"is {action_space!r}")
    elif dist is Categorical and not discrete_actions:
        problems.append(f"{name} samples discrete actions but the action space is "
                        f"{action_space!r}")
    elif discrete_actions and getattr(policy, "num_actions", None) not in (None, action_space.n):
        problems.append(f"{name} has num_actions={policy.num_actions} but the action space is "
                        f"{action_space!r}")
    elif not discrete_actions and getattr(policy, "act_dim", None) not in (
        None, action_space.shape[0]
    ):
        problems.append(f"{name} has act_dim={policy.act_dim} but the action space "
                        f"{action_space!r} has dimension {action_space.shape[0]}")
    num_states, obs_dim = getattr(policy, "num_states", None), getattr(policy, "obs_dim", None)
    if isinstance(observation_space, spaces.Discrete):
        if obs_dim is not None:
            problems.append(f"{name} takes observation vectors (obs_dim={obs_dim}) but the "
                            f"observation space is {observation_space!r} (integer states)")
        elif num_states is not None and num_states != observation_space.n:
            problems.append(f"{name} has num_states={num_states} but the observation space is "
                            f"{observation_space!r}")
    else:
        if num_states is not None:
            problems.append(f"{name} takes integer states (num_states={num_states}) but the "
                            f"observation space is {observation_space!r}")
        elif obs_dim is not None and obs_dim != observation_space.shape[0]:
            problems.append(f"{name} has obs_dim={obs_dim} but the observation space "
                            f"{observation_space!r} has dimension {observation_space.shape[0]}")
    if problems:
        raise ValueError(
            f"policy {policy!r} does not fit the environment: " + "; ".join(problems)
            + "; build a matching policy with rl.policies.make_policy(env.observation_space, "
            "env.action_space)"
        )


def _current_params(policy, obs, actions) -> tuple[np.ndarray, np.ndarray]:
    """``(dist_params, log_probs)`` of ``actions`` under the policy as it stands now."""
    dist = policy.distribution(obs)
    return np.asarray(dist.params, dtype=np.float64), np.asarray(
        dist.log_prob(actions), dtype=np.float64
    )


def _env_name(env) -> str:
    """The registered id of ``env`` (a single or vector env), else its class name."""
    spec = getattr(env, "spec", None)
    if spec is None and getattr(env, "envs", None):
        spec = getattr(env.envs[0], "spec", None)
        if spec is None:
            return repr(type(env.envs[0].unwrapped).__name__)
    if spec is not None and getattr(spec, "id", None):
        return repr(spec.id)
    return repr(type(getattr(env, "unwrapped", env)).__name__)


def _failure(where: str, exc: BaseException) -> EnvironmentFailure:
    detail = " ".join(str(exc).split())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return EnvironmentFailure(f"the environment failed {where}: {type(exc).__name__}: {detail}")


def _nonfinite(what: str, where: str) -> NonFiniteEnvironmentError:
    return NonFiniteEnvironmentError(
        f"the environment returned a non-finite (NaN or inf) {what} {where}; check the "
        "environment (e.g. a physics blow-up from extreme actions) before sampling from it"
    )


# --------------------------------------------------------------------------------------
# Batch
# --------------------------------------------------------------------------------------



class EnvAction:
    """What the environment is sent for a sampled action.

    A Gaussian policy samples unbounded actions; a ``Box`` action space gets them clipped
    to its bounds and cast to its dtype, while the batch keeps the raw sample (whose
    log-probability the update needs). ``Discrete`` actions pass through unchanged.

    Examples
    --------
    >>> from gymnasium import spaces
    >>> EnvAction(spaces.Box(-1.0, 1.0, (2,), np.float32))(np.array([[0.5, 3.0]]))
    array([[0.5, 1. ]], dtype=float32)
    """

    def __init__(self, action_space):
        self.box = isinstance(action_space, spaces.Box)
        if self.box:
            self.low = np.asarray(action_space.low, dtype=np.float64)
            self.high = np.asarray(action_space.high, dtype=np.float64)
            self.dtype = action_space.dtype

    def __call__(self, a):
        if not self.box:
            return a
        return np.clip(a, self.low, self.high).astype(self.dtype, copy=False)

@dataclass
class Batch:
    """T steps of N environments, as sampled by :class:`SinglePathSampler`.

    Step arrays are shaped ``(T, N, ...)``: row ``t`` holds step ``t`` of every
    environment.

    Attributes
    ----------
    observations : ndarray (T, N, *obs_shape)
        ``s_t``: float64 vectors, or int64 states for ``Discrete`` observations.
    actions : ndarray (T, N, *act_shape)
        ``a_t`` as sampled (int64, or float64 *before* clipping to the action bounds).
    rewards : float64 ndarray (T, N)
        ``r_t``.
    terminated : bool ndarray (T, N)
        The episode ended in a terminal state at step t: ``V(s_{t+1}) = 0``.
    truncated : bool ndarray (T, N)
        The episode was cut (time limit) at step t: bootstrap from ``V(s_{t+1})``.
    next_observations : ndarray (T, N, *obs_shape)
        ``s_{t+1}``; where ``terminated | truncated`` this is the TRUE final observation of
        the episode (``info["final_obs"]``), not the next episode's first observation, which
        is ``observations[t + 1]``.
    log_probs : float64 ndarray (T, N)
        ``log π_old(a_t | s_t)``.
    dist_params : float64 ndarray (T, N, P)
        Parameters of ``π_old(· | s_t)`` (logits, or ``[mean, log_std]``).
    timesteps : int64 ndarray (T, N)
        Index of step t within its episode (0 at an episode's first step), also counting the
        steps taken in earlier :meth:`SinglePathSampler.sample` calls.
    episode_returns : float64 ndarray (E,)
        Undiscounted returns of the episodes that ended during this batch (including the
        steps they had in earlier batches), in order of ending (ties: by env index).
    episode_lengths : int64 ndarray (E,)
        Their lengths.

    Examples
    --------
    >>> T, N = 3, 2
    >>> b = Batch(np.zeros((T, N, 4)), np.zeros((T, N), np.int64), np.ones((T, N)),
    ...           np.zeros((T, N), bool), np.zeros((T, N), bool), np.zeros((T, N, 4)),
    ...           np.zeros((T, N)), np.zeros((T, N, 2)), np.zeros((T, N), np.int64),
    ...           np.zeros(0), np.zeros(0, np.int64))
    >>> b.num_steps, b.flat("observations").shape
    (6, (6, 4))
    >>> b
    Batch(T=3, N=2, obs_shape=(4,), act_shape=(), P=2, episodes=0)
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_observations: np.ndarray
    log_probs: np.ndarray
    dist_params: np.ndarray
    timesteps: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray

    _STEP_FIELDS = (
        "observations", "actions", "rewards", "terminated", "truncated", "next_observations",
        "log_probs", "dist_params", "timesteps",
    )

    def __repr__(self) -> str:
        returns = np.asarray(self.episode_returns)
        mean = f", mean_return={returns.mean():.4g}" if returns.size else ""
        return (
            f"Batch(T={self.steps_per_env}, N={self.num_envs}, "
            f"obs_shape={self.observations.shape[2:]}, act_shape={self.actions.shape[2:]}, "
            f"P={self.dist_params.shape[-1]}, episodes={returns.size}{mean})"
        )

    @property
    def num_steps(self) -> int:
        """``T * N``, the number of transitions."""
        return int(self.rewards.size)

    @property
    def steps_per_env(self) -> int:
        """T."""
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        """N."""
        return int(self.rewards.shape[1])

    @property
    def dones(self) -> np.ndarray:
        """``terminated | truncated``: an episode ended at this step."""
        return self.terminated | self.truncated

    def flat(self, name: str) -> np.ndarray:
        """A step array reshaped to ``(T * N, ...)`` (a view; step-major order).

        Parameters
        ----------
        name : str
            One of ``observations, actions, rewards, terminated, truncated,
            next_observations, log_probs, dist_params, timesteps``.
        """
        if name not in self._STEP_FIELDS:
            raise ValueError(
                f"name must be one of the (T, N, ...) step arrays {list(self._STEP_FIELDS)}; "
                f"got {name!r}"
            )
        x = getattr(self, name)
        return x.reshape(self.num_steps, *x.shape[2:])


# --------------------------------------------------------------------------------------
# Single path
# --------------------------------------------------------------------------------------


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
        _check_policy(policy)
        _check_policy_fits(policy, venv.single_observation_space, venv.single_action_space)
        self.venv = venv
        self.policy = policy
        self.steps_per_env = _positive_int(steps_per_env, "steps_per_env")
        self.update_normalizer = bool(update_normalizer)
        self.num_envs = int(venv.num_envs)

        policy_ss, env_ss = _seed_sequence(seed).spawn(2)
        self._rng = _generator(policy_ss)  # action noise
        self._env_seed_rng = _generator(env_ss)  # seeds of env resets

        self._obs_shape, self._obs_dtype = _space_layout(venv.single_observation_space)
        self._act_shape, self._act_dtype = _space_layout(venv.single_action_space)
        self._box_obs = isinstance(venv.single_observation_space, spaces.Box)
        self._env_action = EnvAction(venv.single_action_space)

        self._obs = None  # current observations; None: reset before the next step
        self._episode_return = np.zeros(self.num_envs)
        self._episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.total_steps = 0  # vector-env steps times N
        self.num_episodes = 0

    def __repr__(self) -> str:
        return (
            f"SinglePathSampler(venv={_env_name(self.venv)}, num_envs={self.num_envs}, "
            f"policy={self.policy!r}, steps_per_env={self.steps_per_env}, "
            f"total_steps={self.total_steps}, num_episodes={self.num_episodes})"
        )

    # -- environment --------------------------------------------------------------------
    def _reset(self) -> None:
        try:
            obs, _ = self.venv.reset(seed=_int_seed(self._env_seed_rng))
        except TypeError as exc:
            error = _reset_api_error(exc)
            if error is None:
                raise _failure("on reset", exc) from exc
            raise error from exc
        except Exception as exc:  # noqa: BLE001 - whatever the environment raised
            raise _failure("on reset", exc) from exc
        obs = np.asarray(obs, dtype=self._obs_dtype)
        if self._box_obs and not np.isfinite(obs).all():
            raise _nonfinite("observation", "on reset")
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
        obs_dtype, box_obs = self._obs_dtype, self._box_obs

        observations = np.empty((T, N, *self._obs_shape), dtype=obs_dtype)
        next_observations = np.empty_like(observations)
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
        observations[0] = self._obs
        for t in range(T):
            if before_step is not None:
                before_step(t)
            obs = observations[t]  # written by the previous step (the reset observations)
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
                next_observations[t] = next_obs  # converted to obs_dtype on assignment
            except Exception as exc:  # noqa: BLE001 - whatever the environment raised
                raise _failure(self._where(t, None), exc) from exc
            # one finiteness test of the step's sums; the exact search only if it fails
            # (a finite sum of finite numbers can overflow, hence the second test)
            if not isfinite(rewards[t].sum() + (next_observations[t].sum() if box_obs else 0.0)):
                self._check_finite(t, rewards[t], next_observations[t] if box_obs else None)
            terminated[t] = term
            truncated[t] = trunc
            if t + 1 < T:
                observations[t + 1] = next_observations[t]
            episode_return += rewards[t]
            episode_length += 1

            if (term | trunc).any():
                final_obs = info["final_obs"]
                for i in np.flatnonzero(term | trunc):
                    final = np.asarray(final_obs[i], dtype=obs_dtype)
                    if box_obs and not isfinite(final).all():
                        raise _nonfinite("final observation", self._where(t, int(i)))
                    next_observations[t, i] = final
                    ended_returns.append(float(episode_return[i]))
                    ended_lengths.append(int(episode_length[i]))
                    episode_return[i] = 0.0
                    episode_length[i] = 0

        self._obs = np.array(next_obs, dtype=obs_dtype)
        self.total_steps += T * N
        self.num_episodes += len(ended_returns)

        norm = getattr(policy, "obs_normalizer", None)
        if self.update_normalizer and norm is not None:
            flat_obs = observations.reshape(T * N, *self._obs_shape)
            norm.update(flat_obs)
            params, logp = _current_params(
                policy, flat_obs, actions.reshape(T * N, *self._act_shape)
            )
            dist_params = params.reshape(T, N, -1)
            log_probs = logp.reshape(T, N)

        return Batch(
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
        )

    def _check_finite(self, t: int, r: np.ndarray, obs: np.ndarray | None) -> None:
        """Raise for the first non-finite reward or observation of step ``t``, if any."""
        bad = ~np.isfinite(r)
        if bad.any():
            raise _nonfinite("reward", self._where(t, int(np.flatnonzero(bad)[0])))
        if obs is not None:
            bad = ~np.isfinite(obs).all(axis=-1)
            if bad.any():
                raise _nonfinite("observation", self._where(t, int(np.flatnonzero(bad)[0])))

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
            ``num_episodes``. All copies.
        """
        return {
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "env_seed_rng": copy.deepcopy(self._env_seed_rng.bit_generator.state),
            "observations": None if self._obs is None else self._obs.copy(),
            "episode_return": self._episode_return.copy(),
            "episode_length": self._episode_length.copy(),
            "total_steps": int(self.total_steps),
            "num_episodes": int(self.num_episodes),
        }

    def load_state_dict(self, state: dict, *, reset_env: bool = True) -> None:
        """Restore a :meth:`state_dict`.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` of a sampler with the same number of environments.
        reset_env : bool, default True
            The environments' own state is not part of a sampler checkpoint. With
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
        rng_state = _checked_rng_state(self._rng, state["rng"], "state['rng']")
        env_seed_state = _checked_rng_state(self._env_seed_rng, state["env_seed_rng"],
                                            "state['env_seed_rng']")
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

    def _checked_observations(self, obs) -> np.ndarray:
        """``state['observations']`` as the sampler stores them, after checking them."""
        shape = (self.num_envs, *self._obs_shape)
        space = self.venv.single_observation_space
        try:
            out = np.array(obs, dtype=self._obs_dtype)
        except (TypeError, ValueError):
            out = None
        if out is None or out.shape != shape:
            raise ValueError(
                f"state['observations'] must have shape {shape} (one observation of "
                f"{space!r} per environment), or be None; got shape {np.shape(obs)}"
            )
        if self._box_obs:
            bad = not np.all(np.isfinite(out))
        else:
            bad = np.asarray(obs).dtype.kind not in "iu" or np.any(out < 0) or np.any(
                out >= space.n
            )
        if bad:
            raise ValueError(
                f"state['observations'] must hold finite observations of {space!r}; got {obs!r}"
            )
        return out


# --------------------------------------------------------------------------------------
# Vine
# --------------------------------------------------------------------------------------


@dataclass
class VineBatch:
    """State-action pairs with Monte Carlo Q estimates from the vine procedure.

    ``M = num_rollout_states * K`` rows, grouped by rollout state (rows ``n*K .. n*K+K-1``
    branch from rollout state ``n``).

    Attributes
    ----------
    observations : ndarray (M, *obs_shape)
        The rollout state ``s_n``, repeated for each of its K actions.
    actions : ndarray (M, *act_shape)
        ``a_{n,k}`` (unclipped).
    q_values : float64 ndarray (M,)
        ``Q̂(s_n, a_{n,k})``: discounted return of the rollout that starts with ``a_{n,k}``.
    baselines : float64 ndarray (M,)
        ``b_{n,k}`` subtracted from ``Q̂`` (see :class:`VineSampler`).
    weights : float64 ndarray (M,)
        ``w_{n,k}``: 1 for actions sampled from π; ``K π_old(a|s_n)`` when every action
        of a Discrete space is enumerated.
    advantages : float64 ndarray (M,)
        ``w_{n,k} (Q̂ − b)``, so that ``mean(ratio * advantages)`` estimates the
        surrogate's advantage term in both modes (the weights are already applied).
    log_probs : float64 ndarray (M,)
        ``log π_old(a_{n,k} | s_n)``.
    dist_params : float64 ndarray (M, P)
        Parameters of ``π_old(· | s_n)``.
    state_index : int64 ndarray (M,)
        ``n``, the rollout state each row branches from.
    trunk : Batch
        The trunk trajectories (N = 1), for value fitting and diagnostics.
    num_env_steps : int
        Environment steps spent, trunk and rollouts.
    self_normalized : bool
        ``advantages`` are the raw ``Q̂``, for the self-normalised estimator grouped by
        ``state_index`` (``VineSampler(estimator="self_normalized")``).
    diagnostics : dict
        ``"vine/trunk_steps"``, ``"vine/rollout_steps"``, ``"vine/q_mean"``,
        ``"vine/q_std_within_state"`` (mean over states of the spread of Q̂ across branches).
    """

    observations: np.ndarray
    actions: np.ndarray
    q_values: np.ndarray
    baselines: np.ndarray
    weights: np.ndarray
    advantages: np.ndarray
    log_probs: np.ndarray
    dist_params: np.ndarray
    state_index: np.ndarray
    trunk: Batch
    num_env_steps: int = 0
    self_normalized: bool = False
    diagnostics: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"VineBatch(M={self.num_steps}, obs_shape={tuple(np.shape(self.observations)[1:])}, "
            f"num_rollout_states={len(np.unique(self.state_index))}, "
            f"num_env_steps={self.num_env_steps}, trunk={self.trunk!r})"
        )

    @property
    def num_steps(self) -> int:
        """M, the number of state-action pairs."""
        return int(self.q_values.shape[0])

    def flat(self, name: str) -> np.ndarray:
        """The field ``name`` (already flat, shape ``(M, ...)``), for parity with Batch."""
        fields = ("observations", "actions", "q_values", "baselines", "weights", "advantages",
                  "log_probs", "dist_params", "state_index")
        if name not in fields:
            raise ValueError(f"name must be one of {list(fields)}; got {name!r}")
        return getattr(self, name)


def _reseed_env(env, seed: int) -> None:
    """Replace the unwrapped env's RNG by a fresh one (the noise of the next transitions)."""
    env.unwrapped.np_random = np.random.Generator(np.random.PCG64(seed))


class VineSampler:
    """The vine procedure of TRPO (Schulman et al. 2015, Sec. 5.2): Q̂ by branching rollouts.

    Parameters
    ----------
    env_fn_or_env : str, callable or gymnasium.Env
        As for :func:`rl.envs.make_vector_env`; the environment must support state
        save/restore (:class:`rl.mdp.TabularMDP`, MuJoCo), else
        :class:`rl.envs.VineUnsupportedError` is raised here, before any sampling.
    policy : rl.policies.Policy
        π, used for the trunk, to draw the K actions and inside the rollouts; it must fit
        the environment's spaces (checked here, as by :class:`SinglePathSampler`).
    num_trunk_steps : int
        Steps of trunk trajectory per :meth:`sample` (one environment; episodes continue
        across calls).
    num_rollout_states : int
        N, the size of the rollout set, drawn uniformly without replacement from the trunk
        steps (at most ``num_trunk_steps``).
    actions_per_state : int or "all"
        K actions per rollout state sampled from π, or ``"all"`` to branch on every action of
        a Discrete action space (the paper's choice for small finite action spaces).
    rollout_length : int
        H, steps per rollout including the first action ``a_k``; a rollout also stops when
        its episode terminates or is truncated.
    gamma : float
        Discount in ``[0, 1]``.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Seeds the trunk, the choice of rollout states and the rollouts' random numbers (a
        Generator as for :class:`SinglePathSampler`).
    common_random_numbers : bool, default True
        Give the K branches from one state the same random numbers (same environment RNG
        seed and same action-noise stream); otherwise independent ones.
    env_kwargs : dict or None
        Keyword arguments for ``gymnasium.make`` or the factory.
    update_normalizer : bool, default True
        Update ``policy.obs_normalizer`` with the trunk's observations after sampling (as
        :class:`SinglePathSampler`); the returned log-probabilities and distribution
        parameters are those of the policy after the update.
    estimator : {"leave_one_out", "self_normalized"}, default "leave_one_out"
        For K >= 2 sampled actions: advantages ``Q̂ - b`` with the leave-one-out baseline
        (step 4 below), or the paper's self-normalised estimator (TRPO paper eq. (16)):
        the batch carries the raw ``Q̂`` and ``self_normalized=True``, and the update
        builds a :class:`~rl.algorithms.objective.PolicyObjective` grouped by rollout
        state. At θ_old the two gradients are parallel (leave-one-out's is ``K/(K-1)``
        times the other's); away from it the surrogates differ. Enumerated actions
        (``"all"``) use the paper's exact per-state sum either way.

    Notes
    -----
    One :meth:`sample` (TRPO paper, Sec. 5.2):

    1. run the trunk for ``num_trunk_steps`` steps with π, saving the environment state
       (:func:`rl.envs.save_state`) at the N steps chosen for the rollout set;
    2. at each rollout state ``s_n`` choose actions ``a_{n,1..K}`` (sampled from π, or every
       action);
    3. for each ``a_{n,k}``: restore ``s_n`` into a separate rollout environment, take
       ``a_{n,k}``, then follow π for ``H - 1`` more steps, and set
       ``Q̂(s_n, a_{n,k}) = Σ_{t<H} γ^t r_t``. With common random numbers every branch from
       ``s_n`` reseeds the environment RNG and the policy noise with the same two seeds, so
       ``Q̂(s_n, a_k) − Q̂(s_n, a_j)`` has far lower variance (identical actions give
       identical returns);
    4. advantages. For K sampled actions the baseline is the leave-one-out mean
       ``b_{n,k} = (1/(K−1)) Σ_{j≠k} Q̂(s_n, a_{n,j})``: it does not depend on ``a_{n,k}``,
       so ``E[Q̂_k − b_k | s_n, a_{n,k}] = Q_H(s_n, a_{n,k}) − V_H(s_n)`` exactly, an
       unbiased advantage estimate [2]_ (K = 1: ``b = 0``). With every action enumerated,
       ``b_n = Σ_a π_old(a|s_n) Q̂(s_n, a)`` and the rows carry weights
       ``K π_old(a|s_n)``: ``(1/K) Σ_a ratio_a w_a (Q̂_a − b_n) = Σ_a π_θ(a|s_n)(Q̂_a − b_n)``,
       the paper's ``L_n(θ) = Σ_k π_θ(a_k|s_n) Q̂(s_n, a_k)`` up to a θ-independent term.

    ``E[Q̂(s, a)] = Q_H(s, a)``, the H-step discounted action value under π (of the MDP
    with its time limit): the estimator is unbiased for it. The rollout set is drawn from
    the undiscounted trunk state distribution, as in the paper's experiments.

    **Checkpoints.** :meth:`state_dict` captures the random streams, the trunk's open
    episode and the trunk environment's exact state; :meth:`load_state_dict` into a new
    sampler built with the same settings continues with exactly the batches the saving
    sampler would have drawn next.

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel, "Trust Region Policy
       Optimization", ICML 2015, Sec. 5.2 (vine) and App. B.
    .. [2] W. Kool, H. van Hoof, M. Welling, "Buy 4 REINFORCE samples, get a baseline for
       free!", ICLR workshop 2019 (leave-one-out baseline).
    .. [3] P. Glasserman, D. Yao, "Some guidelines and guarantees for common random
       numbers", Management Science 38(6), 1992.

    Examples
    --------
    >>> import gymnasium
    >>> import numpy as np
    >>> from gymnasium import spaces
    >>> class Coin(gymnasium.Env):
    ...     # two states; action 1 moves to state 1, which pays 1 per step
    ...     observation_space, action_space = spaces.Discrete(2), spaces.Discrete(2)
    ...     def reset(self, *, seed=None, options=None):
    ...         super().reset(seed=seed); self.s = 0; return self.s, {}
    ...     def step(self, a):
    ...         r = float(self.s); self.s = int(a); return self.s, r, False, False, {}
    ...     def get_state(self): return self.s
    ...     def set_state(self, s): self.s = s
    >>> from rl.policies import TabularSoftmax
    >>> vine = VineSampler(Coin(), TabularSoftmax(2, 2), num_trunk_steps=10,
    ...                    num_rollout_states=4, actions_per_state="all", rollout_length=2,
    ...                    gamma=0.5, seed=0)
    >>> vb = vine.sample()
    >>> vb.observations.shape, vb.q_values.shape
    ((8,), (8,))
    >>> bool(np.all(vb.q_values[vb.actions == 1] >= vb.q_values[vb.actions == 0]))
    True
    """

    def __init__(
        self,
        env_fn_or_env,
        policy,
        *,
        num_trunk_steps: int,
        num_rollout_states: int,
        actions_per_state: int | str,
        rollout_length: int,
        gamma: float,
        seed,
        common_random_numbers: bool = True,
        env_kwargs: dict | None = None,
        update_normalizer: bool = True,
        estimator: str = "leave_one_out",
    ):
        self.num_trunk_steps = _positive_int(num_trunk_steps, "num_trunk_steps")
        self.num_rollout_states = _positive_int(num_rollout_states, "num_rollout_states")
        if self.num_rollout_states > self.num_trunk_steps:
            raise ValueError(
                f"num_rollout_states ({num_rollout_states}) must be at most num_trunk_steps "
                f"({num_trunk_steps}): the rollout set is drawn from the trunk's steps"
            )
        self.rollout_length = _positive_int(rollout_length, "rollout_length")
        gamma_f = float(gamma) if isinstance(gamma, numbers.Real) else np.nan
        if not 0.0 <= gamma_f <= 1.0:
            raise ValueError(f"gamma must be a number in [0, 1]; got {gamma!r}")
        self.gamma = gamma_f
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise ValueError(f"env_kwargs must be a dict or None; got {type(env_kwargs).__name__}")
        _check_policy(policy)
        self.policy = policy
        self.common_random_numbers = bool(common_random_numbers)
        self.update_normalizer = bool(update_normalizer)
        if estimator not in ("leave_one_out", "self_normalized"):
            raise ValueError(f"estimator must be 'leave_one_out' or 'self_normalized'; got "
                             f"{estimator!r}")
        self.estimator = estimator

        # Fail up front if the env cannot be saved/restored, before building the trunk.
        self._rollout_env = env_factory(env_fn_or_env, env_kwargs)()
        if not supports_state_restore(self._rollout_env):
            self._rollout_env.close()
            raise vine_unsupported_error(self._rollout_env)
        act_space = self._rollout_env.action_space
        try:
            check_spaces(self._rollout_env.observation_space, act_space)
            _check_policy_fits(policy, self._rollout_env.observation_space, act_space)
        except ValueError:
            self._rollout_env.close()
            raise

        if isinstance(actions_per_state, str):
            if actions_per_state != "all":
                raise ValueError(
                    f'actions_per_state must be a positive integer or "all"; got '
                    f"{actions_per_state!r}"
                )
            if not isinstance(act_space, spaces.Discrete):
                raise ValueError(
                    'actions_per_state="all" needs a Discrete action space; got '
                    f"{act_space!r}; pass the number of actions to sample instead"
                )
            self.enumerate_actions = True
            self.actions_per_state = int(act_space.n)
        else:
            self.enumerate_actions = False
            self.actions_per_state = _positive_int(actions_per_state, "actions_per_state")
        if self.estimator == "self_normalized" and (self.enumerate_actions
                                                    or self.actions_per_state < 2):
            self._rollout_env.close()
            raise ValueError(
                "estimator='self_normalized' needs at least 2 sampled actions per state "
                f"(got actions_per_state={actions_per_state!r}): with one action its ratio "
                "cancels, and enumerated actions already use the exact per-state sum")

        self._env_action = EnvAction(act_space)
        self._obs_dtype = _space_layout(self._rollout_env.observation_space)[1]

        trunk_ss, choice_ss, rollout_ss, action_ss = _seed_sequence(seed).spawn(4)
        self._venv = make_vector_env(env_fn_or_env, 1, env_kwargs=env_kwargs)
        self.trunk_sampler = SinglePathSampler(
            self._venv, policy, self.num_trunk_steps, seed=trunk_ss, update_normalizer=False
        )
        self._choice_rng = _generator(choice_ss)  # which trunk steps form the rollout set
        self._rollout_seed_rng = _generator(rollout_ss)  # seeds of the branches' noise
        self._action_rng = _generator(action_ss)  # the K actions a_{n,k} ~ π(·|s_n)

    def __repr__(self) -> str:
        actions = "'all'" if self.enumerate_actions else self.actions_per_state
        return (
            f"VineSampler(env={_env_name(self._rollout_env)}, policy={self.policy!r}, "
            f"num_trunk_steps={self.num_trunk_steps}, "
            f"num_rollout_states={self.num_rollout_states}, actions_per_state={actions}, "
            f"rollout_length={self.rollout_length}, gamma={self.gamma})"
        )

    def close(self) -> None:
        """Close the trunk and rollout environments."""
        self._venv.close()
        self._rollout_env.close()

    def _rollout(self, state, first_action, env_seed: int, policy_seed: int):
        """``(Q̂, steps)``: discounted return of up to H steps from a restored state."""
        env, policy, gamma = self._rollout_env, self.policy, self.gamma
        restore_state(env, state)
        _reseed_env(env, env_seed)
        rng = np.random.Generator(np.random.PCG64(policy_seed))
        q, discount, a, obs = 0.0, 1.0, first_action, None
        for h in range(self.rollout_length):
            if h > 0:
                a = policy.act(obs[None], rng)[0]
            try:
                obs, r, term, trunc, _ = env.step(self._env_action(a))
                obs = np.asarray(obs, dtype=self._obs_dtype)
            except Exception as exc:  # noqa: BLE001 - whatever the environment raised
                raise _failure(f"at step {h} of a vine rollout", exc) from exc
            if not np.isfinite(r) or (self._obs_dtype is np.float64 and not np.isfinite(obs).all()):
                raise _nonfinite("reward or observation", f"at step {h} of a vine rollout")
            q += discount * float(r)
            discount *= gamma
            if term or trunc:
                break
        return q, h + 1

    def sample(self) -> VineBatch:
        """Run the trunk, branch the rollouts, and return the :class:`VineBatch`.

        Raises
        ------
        NonFiniteEnvironmentError
            If the environment returns a NaN or infinite observation or reward.
        """
        T, N, K = self.num_trunk_steps, self.num_rollout_states, self.actions_per_state
        # 1. trunk, saving the env state at the chosen steps (before π acts there)
        chosen = np.sort(self._choice_rng.choice(T, size=N, replace=False))
        wanted = {int(t): n for n, t in enumerate(chosen)}
        states: list = [None] * N
        trunk_env = self._venv.envs[0]

        def before_step(t):
            n = wanted.get(t)
            if n is not None:
                states[n] = save_state(trunk_env)

        trunk = self.trunk_sampler._sample(before_step)
        obs_n = trunk.observations[chosen, 0]  # (N, *obs_shape)

        # 2. K actions per rollout state
        obs_rep = np.repeat(obs_n, K, axis=0)  # (N*K, *obs_shape)
        if self.enumerate_actions:
            actions = np.tile(np.arange(K, dtype=np.int64), N)
        else:
            actions = self.policy.step(obs_rep, self._action_rng)[0]

        # 3. rollouts with common (or independent) random numbers
        q = np.empty(N * K)
        rollout_steps = 0
        for n in range(N):
            seeds = self._rollout_seed_rng.integers(0, 2**63 - 1, size=(K, 2))
            if self.common_random_numbers:
                seeds[:] = seeds[0]
            for k in range(K):
                i = n * K + k
                q[i], steps = self._rollout(
                    states[n], actions[i], int(seeds[k, 0]), int(seeds[k, 1])
                )
                rollout_steps += steps

        # normaliser update (trunk observations), then π_old's parameters of the pairs
        norm = getattr(self.policy, "obs_normalizer", None)
        if self.update_normalizer and norm is not None:
            flat_obs = trunk.flat("observations")
            norm.update(flat_obs)
            params, logp = _current_params(self.policy, flat_obs, trunk.flat("actions"))
            trunk.dist_params = params.reshape(T, 1, -1)
            trunk.log_probs = logp.reshape(T, 1)
        dist_params, log_probs = _current_params(self.policy, obs_rep, actions)

        # 4. baselines and advantages
        Q = q.reshape(N, K)
        if self.enumerate_actions:
            pi_old = np.exp(log_probs.reshape(N, K))
            b = np.repeat((pi_old * Q).sum(axis=1), K)  # V̂(s_n) = Σ_a π_old(a|s_n) Q̂(s_n, a)
            w = K * pi_old.reshape(-1)
        elif self.estimator == "self_normalized":  # eq. (16): Q̂ itself, normalised per state
            b = np.zeros(N * K)
            w = np.ones(N * K)
        elif K >= 2:
            b = ((Q.sum(axis=1, keepdims=True) - Q) / (K - 1)).reshape(-1)  # leave-one-out
            w = np.ones(N * K)
        else:
            b = np.zeros(N * K)
            w = np.ones(N * K)
        advantages = w * (q - b)

        return VineBatch(
            observations=obs_rep,
            actions=np.asarray(actions),
            q_values=q,
            baselines=b,
            weights=w,
            advantages=advantages,
            log_probs=log_probs,
            dist_params=dist_params,
            state_index=np.repeat(np.arange(N, dtype=np.int64), K),
            trunk=trunk,
            num_env_steps=T + rollout_steps,
            self_normalized=self.estimator == "self_normalized",
            diagnostics={
                "vine/trunk_steps": T,
                "vine/rollout_steps": rollout_steps,
                "vine/q_mean": float(q.mean()),
                "vine/q_std_within_state": float(Q.std(axis=1).mean()),
            },
        )

    # -- checkpoints --------------------------------------------------------------------
    _STATE_KEYS = ("settings", "trunk", "trunk_env", "choice_rng", "rollout_seed_rng",
                   "action_rng")

    def _settings(self) -> dict:
        """The arguments and spaces a saved state is only valid for."""
        return {
            "num_trunk_steps": self.num_trunk_steps,
            "num_rollout_states": self.num_rollout_states,
            "actions_per_state": "all" if self.enumerate_actions else self.actions_per_state,
            "rollout_length": self.rollout_length,
            "gamma": self.gamma,
            "common_random_numbers": self.common_random_numbers,
            "update_normalizer": self.update_normalizer,
            "estimator": self.estimator,
            "observation_space": repr(self._rollout_env.observation_space),
            "action_space": repr(self._rollout_env.action_space),
        }

    def _rngs(self) -> dict:
        return {
            "choice_rng": self._choice_rng,
            "rollout_seed_rng": self._rollout_seed_rng,
            "action_rng": self._action_rng,
        }

    def state_dict(self) -> dict:
        """Everything needed to continue sampling exactly: RNG states, trunk, open episode.

        Returns
        -------
        dict
            ``settings``
                The sampler's settings and spaces (checked by :meth:`load_state_dict`).
            ``trunk``
                The trunk sampler's :meth:`SinglePathSampler.state_dict`: its action-noise
                and reset-seed streams, the current trunk observation, the open episode's
                return and length, and the step and episode counters.
            ``trunk_env``
                The trunk environment's state (:func:`rl.envs.save_state`, as
                :meth:`rl.envs.EnvState.to_dict`: simulator state, environment RNG, wrapper
                chain such as ``TimeLimit``), or None before the first :meth:`sample`.
            ``choice_rng``, ``rollout_seed_rng``, ``action_rng``
                Bit-generator states of the rollout-set choice, of the branches' seeds and
                of the K sampled actions.

            All copies, independent of later sampling: arrays and plain values wherever the
            environment's wrappers hold only those (see :func:`rl.envs.snapshot_env`).

        Notes
        -----
        The rollout environment holds no state between rollouts (each one restores a trunk
        state and reseeds the environment RNG), so it is not saved. The policy and its
        observation normaliser are not part of the sampler's state: checkpoint them with
        the policy.

        Examples
        --------
        >>> from rl.mdp import random_mdp
        >>> from rl.policies import TabularSoftmax
        >>> kwargs = dict(num_trunk_steps=10, num_rollout_states=3, actions_per_state=2,
        ...               rollout_length=4, gamma=0.9)
        >>> mdp, pi = random_mdp(3, 2, seed=0, horizon=5), TabularSoftmax(3, 2)
        >>> vine = VineSampler(mdp, pi, seed=0, **kwargs)
        >>> _ = vine.sample()
        >>> state = vine.state_dict()
        >>> expected = vine.sample()
        >>> resumed = VineSampler(mdp, pi, seed=1, **kwargs)
        >>> resumed.load_state_dict(state)
        >>> bool(np.array_equal(resumed.sample().q_values, expected.q_values))
        True
        >>> vine.close(); resumed.close()
        """
        trunk = self.trunk_sampler.state_dict()
        started = trunk["observations"] is not None
        return {
            "settings": self._settings(),
            "trunk": trunk,
            "trunk_env": save_state(self._venv.envs[0]).to_dict() if started else None,
            **{name: copy.deepcopy(rng.bit_generator.state) for name, rng in self._rngs().items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`: the next :meth:`sample` is the saving sampler's next.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` of a VineSampler built with the same settings on the same
            kind of environment (its seed does not matter: the saved streams replace it).
            The trunk environment is put back into its saved state, so an open trunk
            episode continues where it was.

        Raises
        ------
        ValueError
            If ``state`` is not such a dict (missing or unknown keys), was saved by a sampler
            with different settings or spaces, or holds an invalid RNG or environment
            state. The keys, settings and RNG states are checked before anything is changed.
        """
        if not isinstance(state, dict):
            raise ValueError(
                f"state must be the dict returned by VineSampler.state_dict(); got "
                f"{type(state).__name__}"
            )
        missing = sorted(set(self._STATE_KEYS) - set(state))
        unknown = sorted(set(state) - set(self._STATE_KEYS), key=str)
        if missing or unknown:
            hint = (" (this looks like a SinglePathSampler state; load it into a "
                    "SinglePathSampler)" if "env_seed_rng" in state else "")
            raise ValueError(
                f"state must be the dict returned by VineSampler.state_dict() with keys "
                f"{sorted(self._STATE_KEYS)}; missing {missing}, unknown {unknown}{hint}"
            )
        saved, mine = state["settings"], self._settings()
        if not isinstance(saved, dict):
            raise ValueError(f"state['settings'] must be a dict; got {type(saved).__name__}")
        saved = {"estimator": "leave_one_out", **saved}  # states saved before the option
        differences = [
            f"{key}: saved {saved.get(key, '<missing>')!r}, this sampler {value!r}"
            for key, value in mine.items()
            if saved.get(key, "<missing>") != value
        ]
        if differences:
            raise ValueError(
                "state was saved by a VineSampler with different settings ("
                + "; ".join(differences)
                + "); build the sampler with the saved settings (state['settings']) to resume"
            )
        rng_states = {
            name: _checked_rng_state(rng, state[name], f"state[{name!r}]")
            for name, rng in self._rngs().items()
        }
        trunk, trunk_env = state["trunk"], state["trunk_env"]
        trunk_keys = set(self.trunk_sampler.state_dict())
        if not isinstance(trunk, dict) or set(trunk) != trunk_keys:
            raise ValueError(
                f"state['trunk'] must be the trunk sampler's state_dict() with keys "
                f"{sorted(trunk_keys)}; pass the dict saved by VineSampler.state_dict() unchanged"
            )
        for name in ("rng", "env_seed_rng"):
            _checked_rng_state(getattr(self.trunk_sampler, "_" + name), trunk[name],
                               f"state['trunk'][{name!r}]")
        if trunk_env is not None and not isinstance(trunk_env, EnvState):
            try:
                trunk_env = EnvState.from_dict(trunk_env)
            except ValueError as exc:
                raise ValueError(
                    f"state['trunk_env'] must be the trunk environment's state "
                    f"(rl.envs.EnvState.to_dict()) or None: {exc}"
                ) from None
        if (trunk_env is None) != (trunk["observations"] is None):
            raise ValueError(
                "state['trunk_env'] and state['trunk']['observations'] disagree (one is None, "
                "the other is not); pass the dict saved by VineSampler.state_dict() unchanged"
            )
        if trunk_env is not None:
            try:
                restore_state(self._venv.envs[0], trunk_env)
            except ValueError as exc:
                raise ValueError(f"state['trunk_env'] cannot be restored: {exc}") from None
        self.trunk_sampler.load_state_dict(trunk, reset_env=trunk_env is None)
        for name, rng in self._rngs().items():
            rng.bit_generator.state = rng_states[name]
