"""The batch types the samplers return and the algorithms consume, and the action mapping.

Every batch exposes the same summary for the runner: ``num_env_steps`` (environment steps
spent), ``episode_returns`` and ``episode_lengths`` (episodes that ended in it),
``diagnostics`` (namespaced sampler diagnostics), ``has_advantages`` (whether the rows carry
their own advantage estimates, as a vine batch does) and ``value_batch`` (the trajectories
a value function is fitted on).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from gymnasium import spaces

from rl.spaces import leaf_arrays, map_leaves

__all__ = ["Batch", "EnvAction", "VineBatch"]


class EnvAction:
    """What the environment is sent for a sampled action.

    A Gaussian policy samples unbounded actions; a ``Box`` action space gets them clipped
    to its bounds and cast to its dtype, while the batch keeps the raw sample (whose
    log-probability the update needs). ``MultiDiscrete`` and ``MultiBinary`` actions are
    cast to the space's dtype; ``Discrete`` actions pass through unchanged.

    Examples
    --------
    >>> from gymnasium import spaces
    >>> EnvAction(spaces.Box(-1.0, 1.0, (2,), np.float32))(np.array([[0.5, 3.0]]))
    array([[0.5, 1. ]], dtype=float32)
    """

    def __init__(self, action_space):
        self.box = isinstance(action_space, spaces.Box)
        self.cast = (np.dtype(action_space.dtype) if isinstance(
            action_space, (spaces.MultiDiscrete, spaces.MultiBinary)) else None)
        if self.box:
            self.low = np.asarray(action_space.low, dtype=np.float64)
            self.high = np.asarray(action_space.high, dtype=np.float64)
            self.dtype = action_space.dtype

    def __call__(self, a):
        if not self.box:
            return a if self.cast is None else np.asarray(a).astype(self.cast, copy=False)
        return np.clip(a, self.low, self.high).astype(self.dtype, copy=False)

@dataclass
class Batch:
    """T steps of N environments, as sampled by :class:`SinglePathSampler`.

    Step arrays are shaped ``(T, N, ...)``: row ``t`` holds step ``t`` of every
    environment.

    Attributes
    ----------
    observations : ndarray (T, N, *obs_shape), or a dict / tuple of them
        ``s_t``: float64 vectors, int64 states for ``Discrete`` observations, images in
        the space's dtype (``uint8`` frames stay ``uint8``), or for a ``Dict`` / ``Tuple``
        space the space's structure with one ``(T, N, *leaf_shape)`` array per leaf in the
        leaf's dtype (:class:`rl.sampling.observations.ObservationStorage`).
    actions : ndarray (T, N, *act_shape)
        ``a_t`` as sampled (int64, of shape (T, N, K) for ``MultiDiscrete`` and
        ``MultiBinary``, or float64 *before* clipping to the action bounds).
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
    diagnostics : dict
        What the sampler reports about the batch (namespaced keys; empty by default).

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
    diagnostics: dict = field(default_factory=dict)

    #: a single-path batch leaves the advantages to the update (:mod:`rl.advantages`)
    has_advantages = False

    STEP_FIELDS = (
        "observations", "actions", "rewards", "terminated", "truncated", "next_observations",
        "log_probs", "dist_params", "timesteps",
    )
    _STEP_FIELDS = STEP_FIELDS  # the name it had first

    def __repr__(self) -> str:
        returns = np.asarray(self.episode_returns)
        mean = f", mean_return={returns.mean():.4g}" if returns.size else ""
        return (
            f"Batch(T={self.steps_per_env}, N={self.num_envs}, "
            f"obs_shape={_obs_shape(self.observations, 2)}, "
            f"act_shape={self.actions.shape[2:]}, "
            f"P={self.dist_params.shape[-1]}, episodes={returns.size}{mean})"
        )

    @property
    def num_steps(self) -> int:
        """``T * N``, the number of transitions."""
        return int(self.rewards.size)

    @property
    def num_env_steps(self) -> int:
        """Environment steps spent on the batch: ``T * N``."""
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
    def value_batch(self) -> Batch:
        """The trajectories the value function is fitted on: the batch itself."""
        return self

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
        if name not in self.STEP_FIELDS:
            raise ValueError(
                f"name must be one of the (T, N, ...) step arrays {list(self.STEP_FIELDS)}; "
                f"got {name!r}"
            )
        n = self.num_steps
        return map_leaves(lambda x: x.reshape(n, *x.shape[2:]), getattr(self, name))


@dataclass
class VineBatch:
    """State-action pairs with Monte Carlo Q estimates from the vine procedure.

    ``M = num_rollout_states * K`` rows, grouped by rollout state (rows ``n*K .. n*K+K-1``
    branch from rollout state ``n``).

    Attributes
    ----------
    observations : ndarray (M, *obs_shape), or a dict / tuple of them
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

    #: the rows carry their advantage estimates (the update fits the value function on
    #: :attr:`value_batch`, the trunk)
    has_advantages = True

    @property
    def episode_returns(self) -> np.ndarray:
        """Returns of the trunk episodes that ended during this batch."""
        return self.trunk.episode_returns

    @property
    def episode_lengths(self) -> np.ndarray:
        """Their lengths."""
        return self.trunk.episode_lengths

    @property
    def value_batch(self) -> Batch:
        """The trajectories the value function is fitted on: the trunk."""
        return self.trunk

    def __repr__(self) -> str:
        return (
            f"VineBatch(M={self.num_steps}, obs_shape={_obs_shape(self.observations, 1)}, "
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


def _obs_shape(observations, lead: int):
    """The shape of one observation (a tuple of the leaves' for a structured batch)."""
    shapes = [tuple(np.shape(x)[lead:]) for x in leaf_arrays(observations)]
    return shapes[0] if not isinstance(observations, (dict, tuple)) else tuple(shapes)
