"""Gymnasium adapters: vector environments, supported spaces, state save/restore for vine sampling.

Everything the samplers need from Gymnasium goes through this module:

- :func:`make_vector_env` builds a ``gymnasium.vector.VectorEnv`` (sync or async) from an id,
  a factory or an instance, always with ``AutoresetMode.SAME_STEP``: when a sub-environment's
  episode ends, the step returns the next episode's first observation at once and puts the
  true last observation in ``info["final_obs"]`` (mask ``info["_final_obs"]``). A truncated
  episode bootstraps from ``V(final observation)``; the default ``NEXT_STEP`` mode would
  instead return a fake transition with reward 0 on the following step.
- :func:`check_spaces` says which spaces the policies support (``Discrete`` and 1-D
  ``Box``: float actions, float, integer or bool observations; ``MultiDiscrete`` and
  ``MultiBinary`` actions; images and ``Dict`` / ``Tuple`` observations) and fails early
  with a clear message for the rest.
- :func:`save_state` / :func:`restore_state` snapshot an environment so that the vine
  procedure (TRPO paper, Sec. 5.2) can branch several rollouts from one state: supported for
  :class:`rl.mdp.TabularMDP` (and any env with the same ``get_state``/``set_state``
  protocol) and for MuJoCo environments. Other environments raise
  :class:`VineUnsupportedError`.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import inspect
import numbers
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import concatenate, iterate

__all__ = [
    "EnvState",
    "EnvironmentFailure",
    "NonFiniteEnvironmentError",
    "SameStepNativeVectorEnv",
    "SameStepSyncVectorEnv",
    "VineUnsupportedError",
    "check_spaces",
    "env_factory",
    "make_vector_env",
    "native_vectorization_problem",
    "restore_state",
    "restore_snapshot",
    "save_state",
    "snapshot_env",
    "supports_state_restore",
    "vine_unsupported_error",
]

_SUPPORTED_SPACES = (
    "Discrete(n) (starting at 0) and 1-D Box(low, high, shape=(d,)) (finite or infinite "
    "bounds; a float dtype for actions, a float, integer or bool dtype for observations); "
    "besides, with Box, Dict or Tuple observations, MultiDiscrete and MultiBinary actions, "
    "and rank-3 Box (image) and Dict/Tuple observations (rl.spaces.ObservationLayout)"
)

# Wrapper attributes that are configuration or links, not state: never snapshotted.
_WRAPPER_STATIC_ATTRIBUTES = frozenset(
    {
        "env",
        "_saved_kwargs",
        "_action_space",
        "_observation_space",
        "_metadata",
        "_cached_spec",
        "_reward_range",
    }
)


class VineUnsupportedError(ValueError):
    """The environment's state cannot be saved and restored, so vine sampling cannot branch.

    Vine sampling (TRPO paper, Sec. 5.2) restarts several rollouts from one state; that needs
    an environment whose full state can be saved and restored: :class:`rl.mdp.TabularMDP`
    (or any env exposing ``get_state()`` / ``set_state(state)``) and MuJoCo environments.
    Use single-path sampling for other environments.
    """


class NonFiniteEnvironmentError(RuntimeError):
    """An environment returned a NaN or infinite observation or reward.

    Raised by the samplers at the step where it happens (the message names the step and the
    sub-environment), instead of letting non-finite numbers reach the update.
    """


class EnvironmentFailure(RuntimeError):
    """An environment raised an exception, or returned an observation that does not fit its
    declared space, while a sampler stepped or reset it.

    The message names where it happened and the original error (kept as ``__cause__``); the
    runner ends the run with a ``stopped: ...`` status and keeps what is saved, as for
    :class:`NonFiniteEnvironmentError`.
    """


# --------------------------------------------------------------------------------------
# Spaces
# --------------------------------------------------------------------------------------


def _space_problem(space, role: str) -> str | None:
    """Why ``space`` is unsupported as the ``role`` ("observation" or "action") space, or
    ``None`` when it is supported."""
    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            return f"Discrete spaces must start at 0 (got start={int(space.start)})"
        return None
    if isinstance(space, spaces.Box):
        if role == "action" and not np.issubdtype(space.dtype, np.floating):
            return (f"Box action spaces must have a float dtype (got {space.dtype}); the "
                    "Gaussian policy samples real-valued actions")
        if not (np.issubdtype(space.dtype, np.number) or space.dtype == np.bool_) or \
                np.issubdtype(space.dtype, np.complexfloating):
            return f"Box spaces must have a real or integer dtype (got {space.dtype})"
        if len(space.shape) != 1 and role == "observation":
            return (
                f"Box observations must be 1-D (a vector) or rank 3 (an image; got shape "
                f"{space.shape}; wrap the env with gymnasium.wrappers.FlattenObservation, or "
                "give an image a channel axis)"
            )
        if len(space.shape) != 1:
            return (
                f"Box spaces must be 1-D (got shape {space.shape}; wrap the env with "
                "gymnasium.wrappers.FlattenObservation / a flattening action wrapper)"
            )
        return None
    if role == "action" and isinstance(space, (spaces.MultiDiscrete, spaces.MultiBinary)):
        return (f"{type(space).__name__} actions need Box, Dict or Tuple observations (the "
                "tabular policy of Discrete observations samples Discrete actions only)")
    return f"{type(space).__name__} spaces are not supported"


def _beyond_vectors(observation_space, action_space) -> bool:
    """Whether the pair needs :mod:`rl.spaces` (MultiDiscrete / MultiBinary actions, image
    or Dict / Tuple observations), rather than the 1-D Box / Discrete policies."""
    if isinstance(observation_space, spaces.Discrete) or not isinstance(
            observation_space, (spaces.Box, spaces.Dict, spaces.Tuple)):
        return False
    return isinstance(action_space, (spaces.MultiDiscrete, spaces.MultiBinary)) or isinstance(
        observation_space, (spaces.Dict, spaces.Tuple)) or len(observation_space.shape) == 3


def check_spaces(observation_space, action_space) -> None:
    """Check that the policies of :mod:`rl.policies` support an environment's spaces.

    Parameters
    ----------
    observation_space : gymnasium.spaces.Space
        A single environment's observation space.
    action_space : gymnasium.spaces.Space
        A single environment's action space.

    Raises
    ------
    ValueError
        Naming the unsupported space and the supported ones: ``Discrete(n)`` starting at 0
        (tabular states / categorical actions) and 1-D ``Box`` (finite or infinite
        bounds; observation vectors of a float, integer or bool dtype / float Gaussian
        actions), subclasses included; or naming the pair for ``Discrete`` observations
        with ``Box`` actions, which no policy takes. With ``Box``, ``Dict`` or ``Tuple``
        observations, ``MultiDiscrete`` / ``MultiBinary`` actions, rank-3 ``Box``
        observations (images) and ``Dict`` / ``Tuple`` observations are read by
        :func:`rl.spaces.action_spec` and :meth:`rl.spaces.ObservationLayout.from_space`,
        whose one-line messages name the space or the leaf (``observation['mission']:
        Text spaces have no fixed-size encoding; drop it with ...``).

    Notes
    -----
    Discrete observations are integer states (a tabular policy, which needs Discrete
    actions); Box observations are vectors (an MLP policy), stored by the samplers as
    float64 whatever the space's dtype (e.g. ``uint8`` RAM or grid observations become
    the same numbers in float64; normalise them with ``obs_normalization``). Discrete actions are
    sampled from a categorical distribution, Box actions from a diagonal Gaussian and
    clipped to the bounds only when passed to the environment
    (:class:`rl.sampling.SinglePathSampler`). ``MultiDiscrete`` actions are sampled from
    independent categoricals, ``MultiBinary`` ones from independent Bernoullis, both stored
    as int64 arrays of shape (K,); images (``uint8`` frames stay ``uint8``) and the leaves
    of ``Dict`` / ``Tuple`` observations are stored in their own dtypes
    (:class:`rl.sampling.observations.ObservationStorage`). :func:`rl.policies.make_policy`
    builds the policy for every pair accepted here and rejects every other pair with this
    check.

    References
    ----------
    .. [1] Gymnasium spaces, https://gymnasium.farama.org/api/spaces/

    Examples
    --------
    >>> from gymnasium import spaces
    >>> check_spaces(spaces.Box(-1.0, 1.0, (3,)), spaces.Discrete(2))
    >>> check_spaces(spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "key": spaces.Discrete(3)}),
    ...              spaces.MultiDiscrete([3, 2]))
    >>> try:
    ...     check_spaces(spaces.MultiBinary(4), spaces.Discrete(2))
    ... except ValueError as e:
    ...     print(str(e)[:60])
    unsupported observation_space MultiBinary(4): MultiBinary sp
    """
    if _beyond_vectors(observation_space, action_space):
        from rl.spaces import ObservationLayout, action_spec

        action_spec(action_space)
        ObservationLayout.from_space(observation_space)
        return
    for name, space in (("observation_space", observation_space), ("action_space", action_space)):
        problem = _space_problem(space, name.split("_")[0])
        if problem is not None:
            raise ValueError(
                f"unsupported {name} {space!r}: {problem}; supported spaces are "
                f"{_SUPPORTED_SPACES}"
            )
    if isinstance(observation_space, spaces.Discrete) and isinstance(action_space, spaces.Box):
        raise ValueError(
            f"unsupported pair of spaces: observation_space={observation_space!r} with "
            f"action_space={action_space!r}; Discrete observations (the tabular policy) need "
            "Discrete actions, and Box actions (the Gaussian policy) need 1-D Box observations "
            "(e.g. one-hot encode the states with gymnasium.wrappers.TransformObservation)"
        )


# --------------------------------------------------------------------------------------
# Vector environments
# --------------------------------------------------------------------------------------


def _resolve_id(env_id: str) -> None:
    """Raise a ValueError with close matches when ``env_id`` is not a registered id."""
    name = env_id
    if ":" in env_id:  # "module:Env-v0", as gymnasium.make accepts
        module, name = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(
                f"env {env_id!r}: cannot import module {module!r} ({exc}); install the package "
                "that registers this environment"
            ) from exc
    if name in gymnasium.registry:
        return
    matches = difflib.get_close_matches(name, list(gymnasium.registry), n=5, cutoff=0.5)
    hint = f"close matches: {matches}; " if matches else ""
    raise ValueError(
        f"env {env_id!r} is not a registered Gymnasium id; {hint}list the registered ids with "
        "`gymnasium.pprint_registry()` or `sorted(gymnasium.registry)` (ids of third-party "
        "environments need their package imported, e.g. 'ale_py:ALE/Pong-v5')"
    )


def env_factory(env, env_kwargs=None) -> Callable[[], gymnasium.Env]:
    """A zero-argument callable that builds one fresh environment from ``env``.

    ``env`` is a Gymnasium id (checked against the registry, with close matches suggested),
    a callable returning a :class:`gymnasium.Env` (called with ``env_kwargs``), or an
    instance (deep-copied on every call; ``env_kwargs`` must then be empty). This is how
    :func:`make_vector_env` builds its sub-environments and how the vine sampler builds
    its rollout environment.

    A copy of an instance does not inherit the instance's random number generator: its
    unwrapped env starts unseeded, like a freshly made env, so copies reset without a seed
    draw independent streams (and ``reset(seed=s)`` makes them reproducible).

    Examples
    --------
    >>> from rl.mdp import random_mdp
    >>> mdp = random_mdp(6, 2, seed=0)
    >>> _ = mdp.reset(seed=0)
    >>> make = env_factory(mdp)
    >>> a, b = make(), make()
    >>> a.unwrapped.np_random.bit_generator.state == b.unwrapped.np_random.bit_generator.state
    False
    """
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise ValueError(f"env_kwargs must be a dict or None; got {type(env_kwargs).__name__}")
    kwargs = dict(env_kwargs or {})
    if isinstance(env, str):
        _resolve_id(env)
        return functools.partial(gymnasium.make, env, **kwargs)
    if isinstance(env, gymnasium.Env):
        if kwargs:
            raise ValueError(
                "env_kwargs cannot be used with an Env instance; pass a factory or an id instead"
            )
        return functools.partial(_copy_env, env)
    if callable(env):
        return functools.partial(_call_factory, env, kwargs)
    raise ValueError(
        "env must be a Gymnasium id string, a callable returning a gymnasium.Env, or an "
        f"Env instance; got {type(env).__name__}"
    )


def _copy_env(env: gymnasium.Env) -> gymnasium.Env:
    """A deep copy of ``env`` whose unwrapped env has no RNG yet (it is created, unseeded,
    on first use, as in a freshly made env), so copies do not share one random stream."""
    env = copy.deepcopy(env)
    base = env.unwrapped
    if hasattr(base, "_np_random"):
        base._np_random = None
        base._np_random_seed = None
    return env


def _call_factory(factory: Callable[..., Any], kwargs: dict) -> gymnasium.Env:
    env = factory(**kwargs)
    if not isinstance(env, gymnasium.Env):
        raise ValueError(
            f"env factory {factory!r} must return a gymnasium.Env; got {type(env).__name__}"
        )
    return env


class SameStepSyncVectorEnv(SyncVectorEnv):
    """Gymnasium's ``SyncVectorEnv`` with a leaner step for ``AutoresetMode.SAME_STEP``.

    Same constructor, reset, seeding, info layout (``final_obs`` / ``final_info`` with
    their masks) and results as ``SyncVectorEnv(..., autoreset_mode=SAME_STEP)``, step
    for step (``tests/rl/test_envs.py`` runs both side by side). The step loop skips the
    generic parts that cost as much as a CartPole step itself: actions of a
    ``Discrete`` space reach the sub-environments as Python ints (``int(a)``, the type
    ``Discrete.contains`` checks fastest) instead of through ``gymnasium.vector.utils.iterate``,
    observations of a ``Box`` space are written into the batch row by row (after a shape
    check: a wrong shape that numpy would broadcast is an error), and empty info
    dicts are not merged. Other autoreset modes and spaces use ``SyncVectorEnv.step``.
    ``benchmarks/bench_sampling.py`` times it against ``SyncVectorEnv.step`` side by side
    (``benchmarks/results/sampling.md``).
    """

    def __init__(self, env_fns, **kwargs):
        kwargs.setdefault("autoreset_mode", AutoresetMode.SAME_STEP)
        super().__init__(env_fns, **kwargs)
        self._int_actions = isinstance(self.single_action_space, spaces.Discrete)
        self._box_obs = isinstance(self.single_observation_space, spaces.Box)

    def reset(self, *, seed=None, options=None):
        """``SyncVectorEnv.reset``, with errors that name the Gymnasium API requirement
        when a sub-environment's ``reset`` takes no ``seed`` / ``options`` keyword or
        returns an observation of the wrong shape."""
        try:
            return super().reset(seed=seed, options=options)
        except TypeError as exc:
            error = reset_api_error(exc)
            if error is None:
                raise
            raise error from exc
        except ValueError as exc:
            problem = _observation_problems(self.single_observation_space, self._env_obs)
            if problem is None:
                raise
            raise ValueError(f"reset: {problem}") from exc

    def step(self, actions):
        if self.autoreset_mode != AutoresetMode.SAME_STEP:
            return super().step(actions)
        if self._int_actions:
            acts = np.asarray(actions).reshape(self.num_envs).tolist()
        else:
            acts = list(iterate(self.action_space, actions))
        env_obs, rewards = self._env_obs, self._rewards
        terms, truncs = self._terminations, self._truncations
        box = self._observations if self._box_obs else None  # rows written in place
        obs_shape = self.single_observation_space.shape
        infos: dict = {}
        for i, env in enumerate(self.envs):
            result = env.step(acts[i])
            try:
                obs, rewards[i], terms[i], truncs[i], info = result
            except (ValueError, TypeError) as exc:
                error = _step_api_error(result, i)
                if error is None:
                    raise
                raise error from exc
            if terms[i] or truncs[i]:
                infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                obs, info = env.reset()
            env_obs[i] = obs
            if box is not None:
                if getattr(obs, "shape", None) != obs_shape:  # e.g. (1,) would broadcast
                    problem = _observation_problems(self.single_observation_space, {i: obs})
                    if problem is not None:
                        raise ValueError(f"step: {problem}")
                box[i] = obs
            if info:
                infos = self._add_info(infos, info, i)
        if box is None:
            self._observations = concatenate(self.single_observation_space, env_obs,
                                             self._observations)
        self._autoreset_envs = np.logical_or(terms, truncs)
        observations = self._observations
        if self.copy:  # a Dict / Tuple batch is copied leaf by leaf, as SyncVectorEnv does
            observations = observations.copy() if isinstance(observations, np.ndarray) else \
                copy.deepcopy(observations)
        return observations, rewards.copy(), terms.copy(), truncs.copy(), infos


def _reset_cartpole_envs(venv, mask: np.ndarray) -> np.ndarray:
    """Reset the sub-environments ``mask`` of a ``CartPoleVectorEnv`` now, exactly as its
    own next step would (same draws from its RNG, in the same order: the physics of a step
    uses no random numbers, so drawing before or after it gives the same states)."""
    venv.state[:, mask] = venv.np_random.uniform(low=venv.low, high=venv.high,
                                                 size=(4, int(mask.sum())))
    venv.steps[mask] = 0
    venv.prev_done[mask] = False
    return venv.state.T[mask].astype(np.float32)  # their first observations


def _native_partial_resets() -> dict:
    """``{vector env class: reset(venv, mask)}`` for the native vector envs supported."""
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    return {CartPoleVectorEnv: _reset_cartpole_envs}


def native_vectorization_problem(env) -> str | None:
    """None if ``env`` (an id) has a native vector env that :class:`SameStepNativeVectorEnv`
    supports; otherwise why not."""
    if not isinstance(env, str):
        return "only a registered Gymnasium id has a native vector env"
    try:
        spec = gymnasium.spec(env)
    except Exception:  # noqa: BLE001 - an unknown id is reported by make_vector_env
        return f"{env!r} is not a registered Gymnasium id"
    entry = spec.vector_entry_point
    if entry is None:
        return f"{env!r} has no vector entry point"
    cls = gymnasium.envs.registration.load_env_creator(entry) if isinstance(entry, str) \
        else entry
    if cls not in _native_partial_resets():
        return f"{env!r}'s vector env {getattr(cls, '__name__', cls)} cannot reset one " \
               "sub-environment at a time"
    return None


class SameStepNativeVectorEnv(VectorEnv):
    """A native Gymnasium vector env (one array program for all N environments, such as
    ``CartPoleVectorEnv``) presented with ``AutoresetMode.SAME_STEP``.

    A native vector env autoresets on the NEXT step: the step that ends an episode returns
    its true final observation, and the following step ignores the action, resets that
    sub-environment and returns its first observation with reward 0. That step is no
    transition of the MDP and must not be learned from. Here the sub-environments that
    ended are reset at once, in the step that ended them, with the native env's own
    reset draws (:func:`_native_partial_resets`): the step returns the next episode's first
    observation and the true final observation in ``info["final_obs"]`` (mask
    ``info["_final_obs"]``), as :class:`SameStepSyncVectorEnv` does, so no reset step ever
    reaches a sampler. Only the native env's random numbers differ from the per-env path:
    from the same states and actions the transitions and episode ends are the same
    (``tests/rl/test_envs.py``).

    Parameters
    ----------
    env_id : str
        A registered id with a supported vector entry point (CartPole-v1).
    num_envs : int
    """

    def __init__(self, env_id: str, num_envs: int):
        problem = native_vectorization_problem(env_id)
        if problem is not None:
            raise ValueError(f"vectorization='native' is not available: {problem}; use "
                             "vectorization='sync' (or 'auto', which falls back to it)")
        self.env = gymnasium.make_vec(env_id, num_envs=num_envs,
                                      vectorization_mode="vector_entry_point")
        self._partial_reset = _native_partial_resets()[type(self.env.unwrapped)]
        self.num_envs = self.env.num_envs
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self.observation_space = self.env.observation_space
        self.action_space = self.env.action_space
        self.spec = self.env.spec
        self.metadata = {**self.env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.autoreset_mode = AutoresetMode.SAME_STEP

    def reset(self, *, seed=None, options=None):
        """The native env's reset (one seed seeds its one generator)."""
        return self.env.reset(seed=seed, options=options)

    def step(self, actions):
        """One step of all N; the ended ones are reset at once (see the class notes)."""
        obs, rewards, terms, truncs, info = self.env.step(actions)
        done = terms | truncs
        if done.any():
            info = dict(info)
            final = np.zeros_like(obs)
            final[done] = obs[done]
            info["final_obs"], info["_final_obs"] = final, done.copy()
            obs = obs.copy()
            obs[done] = self._partial_reset(self.env.unwrapped, done)
        return obs, rewards, terms, truncs, info

    def close(self, **kwargs):
        """Close the native env."""
        self.env.close(**kwargs)


_GYMNASIUM_API = (
    "the Gymnasium API (gymnasium>=1.0): reset(*, seed=None, options=None) -> (obs, info) "
    "and step(action) -> (obs, reward, terminated, truncated, info); an old Gym env "
    "(reset() without seed, 4-tuple step) needs porting or a compatibility wrapper such as "
    "shimmy's GymV21CompatibilityV0"
)


def reset_api_error(exc: TypeError) -> ValueError | None:
    """The error for a ``reset`` that rejects the ``seed``/``options`` keywords, or None
    when the TypeError has another cause."""
    message = str(exc)
    if "unexpected keyword argument" not in message or not (
        "seed" in message or "options" in message
    ):
        return None
    return ValueError(
        f"the environment's reset() does not accept the keyword arguments seed and options "
        f"({message}); environments must follow {_GYMNASIUM_API}"
    )


def _step_api_error(result, i: int) -> ValueError | None:
    """The error for a sub-environment step that does not return a 5-tuple, or None when
    the failure has another cause (e.g. a reward of the wrong shape)."""
    try:
        n = len(result)
    except TypeError:
        n = None
    if n == 5:
        return None
    got = f"a {n}-tuple" if n is not None else f"a {type(result).__name__}"
    return ValueError(
        f"sub-environment {i}'s step() returned {got}, not (obs, reward, terminated, "
        f"truncated, info); environments must follow {_GYMNASIUM_API}"
    )


def _observation_problems(space, observations) -> str | None:
    """A message naming the first observation whose shape does not match ``space``, or
    None when every shape matches. ``observations`` maps (or lists) sub-env index -> obs."""
    items = observations.items() if isinstance(observations, dict) else enumerate(observations)
    expected = tuple(space.shape) if space.shape is not None else None
    for i, obs in items:
        shape = np.shape(obs)
        if expected is not None and shape != expected:
            return (
                f"sub-environment {i} returned an observation of shape {shape}, but its "
                f"observation_space {space!r} has shape {expected}; the observations must be "
                "elements of the observation space (Gymnasium API), so fix the environment "
                "or its observation_space"
            )
    return None


def make_vector_env(
    env,
    num_envs: int = 1,
    *,
    seed: int | None = None,
    vectorization: str = "sync",
    env_kwargs: dict | None = None,
) -> VectorEnv:
    """Build a Gymnasium vector environment that autoresets on the same step.

    Parameters
    ----------
    env : str, callable or gymnasium.Env
        A registered Gymnasium id (``"CartPole-v1"``, ``"module:Id-v0"``), a callable
        returning a fresh ``gymnasium.Env``, or an ``Env`` instance (e.g. a
        :class:`rl.mdp.TabularMDP`), which is deep-copied once per sub-environment (each
        copy with its own, unseeded RNG; see :func:`env_factory`).
    num_envs : int, default 1
        Number of sub-environments N.
    seed : int or None, default None
        If given, the vector env is reset with ``reset(seed=seed)`` (sub-environment ``i``
        gets ``seed + i``) and its action spaces are seeded, so the streams are reproducible.
    vectorization : {"sync", "async", "native", "auto"}, default "sync"
        ``"sync"`` steps the sub-environments in turn in this process
        (:class:`SameStepSyncVectorEnv`, a ``SyncVectorEnv`` with a leaner step);
        ``"async"`` steps each in its own worker process (``AsyncVectorEnv``), worth it
        when one env step is expensive; ``"native"`` uses the environment's own vector
        env, one array program for all N (:class:`SameStepNativeVectorEnv`; CartPole);
        ``"auto"`` is ``"native"`` where the environment has a supported one, else
        ``"sync"``.
    env_kwargs : dict or None
        Keyword arguments for ``gymnasium.make`` or the factory (not allowed with an
        instance).

    Returns
    -------
    gymnasium.vector.VectorEnv
        With ``autoreset_mode=AutoresetMode.SAME_STEP``.

    Raises
    ------
    ValueError
        Unknown id (with close matches and how to list ids), bad ``num_envs``,
        ``vectorization`` or ``env_kwargs``, or spaces that :func:`check_spaces` rejects.

    Notes
    -----
    With ``SAME_STEP`` autoreset, a step that ends an episode (``terminated`` or
    ``truncated``) returns the next episode's first observation and stores the true final
    observation ``s_T`` in ``info["final_obs"][i]`` (mask ``info["_final_obs"]``). The
    advantage estimator needs ``s_T`` for truncated episodes, whose return is bootstrapped
    as ``r_t + gamma V(s_T)``, while terminated episodes use ``V(s_T) = 0``. A sampler
    reseeds the environments from its own seed on its first reset.

    References
    ----------
    .. [1] Gymnasium vector API and autoreset modes,
       https://gymnasium.farama.org/api/vector/

    Examples
    --------
    >>> venv = make_vector_env("CartPole-v1", 2, seed=0)
    >>> venv.num_envs, venv.single_action_space
    (2, Discrete(2))
    >>> obs, info = venv.reset(seed=0)
    >>> obs.shape
    (2, 4)
    >>> venv.close()
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer; got {num_envs!r}")
    if vectorization not in ("sync", "async", "native", "auto"):
        raise ValueError(f'vectorization must be "sync", "async", "native" or "auto"; got '
                         f'{vectorization!r}')
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}")
    env_fn = env_factory(env, env_kwargs)

    env_fns = [env_fn] * int(num_envs)
    if vectorization == "auto":
        vectorization = "sync" if env_kwargs or native_vectorization_problem(env) else "native"
    if vectorization == "native":
        if env_kwargs:
            raise ValueError("vectorization='native' takes no env_kwargs; use 'sync'")
        venv = SameStepNativeVectorEnv(env, int(num_envs))
    elif vectorization == "sync":
        venv = SameStepSyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        venv = AsyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    try:
        check_spaces(venv.single_observation_space, venv.single_action_space)
    except ValueError:
        venv.close()
        raise
    if seed is not None:
        try:
            venv.reset(seed=int(seed))
        except TypeError as exc:  # AsyncVectorEnv re-raises a worker's TypeError as is
            venv.close()
            error = reset_api_error(exc)
            if error is None:
                raise
            raise error from exc
        except ValueError:
            venv.close()
            raise
        venv.action_space.seed(int(seed))
        venv.single_action_space.seed(int(seed))
    return venv


# --------------------------------------------------------------------------------------
# State save / restore (vine sampling)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvState:
    """A snapshot of an environment taken by :func:`save_state`.

    Attributes
    ----------
    kind : str
        ``"protocol"`` (the env's own ``get_state()``, e.g. :class:`rl.mdp.TabularMDP`) or
        ``"mujoco"``.
    core : object
        The unwrapped environment's state: the ``get_state()`` value, or for MuJoCo a dict
        with ``qpos``, ``qvel`` and the full integration state (time, activations, controls,
        warm start), which makes the next steps bitwise identical.
    np_random : dict or None
        ``bit_generator.state`` of the unwrapped env's ``np_random`` (None if never seeded).
    wrappers : tuple of (str, dict)
        For each wrapper, outermost first, its class's qualified name
        (``module.QualName``) and a deep copy of its state attributes (e.g.
        ``TimeLimit._elapsed_steps``).

    :meth:`to_dict` and :meth:`from_dict` convert it to and from a tree of arrays and JSON
    values (the checkpoint format of :mod:`rl.checkpoint`); a state is stored only when
    every value in it can be (see :func:`snapshot_env`).
    """

    kind: str
    core: Any
    np_random: dict | None
    wrappers: tuple

    def to_dict(self) -> dict:
        """The state as a dict of plain values and arrays (copies)."""
        return {"kind": self.kind, "core": copy.deepcopy(self.core),
                "np_random": copy.deepcopy(self.np_random),
                "wrappers": [[name, copy.deepcopy(attrs)] for name, attrs in self.wrappers]}

    @classmethod
    def from_dict(cls, state) -> EnvState:
        """Rebuild an :class:`EnvState` from :meth:`to_dict`, checking its structure.

        Raises
        ------
        ValueError
            If ``state`` is not such a dict (the message names the bad entry).
        """
        if not isinstance(state, dict) or set(state) != {"kind", "core", "np_random",
                                                         "wrappers"}:
            raise ValueError("an environment state must be a dict with keys 'core', 'kind', "
                             "'np_random' and 'wrappers'")
        if state["kind"] not in _STATE_KINDS:
            raise ValueError(f"an environment state's kind must be one of {_STATE_KINDS}; "
                             f"got {state['kind']!r}")
        if state["np_random"] is not None:
            _checked_bit_generator(state["np_random"])
        wrappers = state["wrappers"]
        if not isinstance(wrappers, (list, tuple)) or not all(
                isinstance(w, (list, tuple)) and len(w) == 2 and isinstance(w[0], str)
                and isinstance(w[1], dict) and all(isinstance(k, str) for k in w[1])
                for w in wrappers):
            raise ValueError("an environment state's 'wrappers' must be a list of "
                             "[class name, attributes] pairs")
        if state["kind"] in ("mujoco", "attributes") and not isinstance(state["core"], dict):
            raise ValueError(f"a {state['kind']!r} environment state's core must be a dict")
        return cls(kind=state["kind"], core=copy.deepcopy(state["core"]),
                   np_random=copy.deepcopy(state["np_random"]),
                   wrappers=tuple((name, copy.deepcopy(attrs)) for name, attrs in wrappers))


_STATE_KINDS = ("protocol", "mujoco", "attributes")


def _class_name(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _checked_bit_generator(state) -> np.random.Generator:
    """A Generator on the saved ``bit_generator.state`` (refusing a malformed one)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        raise ValueError(f"an environment state's np_random names an unknown bit generator "
                         f"{name!r}")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = copy.deepcopy(state)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"an environment state's np_random is malformed ({exc})") from None
    return np.random.Generator(bit_generator)


def _wrapper_chain(env) -> list:
    chain = []
    while isinstance(env, gymnasium.Wrapper):
        chain.append(env)
        env = env.env
    return chain


def _mujoco_env_class():
    """Gymnasium's ``MujocoEnv`` class, or None when its module has not been imported.

    Making any MuJoCo environment imports ``gymnasium.envs.mujoco.mujoco_env``, so an
    environment can only be a ``MujocoEnv`` once that module is in ``sys.modules``;
    looking it up there spares every other environment the import of ``mujoco`` (about
    0.3 s, paid inside the first checkpoint of a CartPole run)."""
    module = sys.modules.get("gymnasium.envs.mujoco.mujoco_env")
    return getattr(module, "MujocoEnv", None)


def _state_kind(env) -> str | None:
    """``"mujoco"``, ``"protocol"`` or None (no state restore) for ``env``."""
    if not isinstance(env, gymnasium.Env):
        return None
    base = env.unwrapped
    mujoco_env = _mujoco_env_class()
    if mujoco_env is not None and isinstance(base, mujoco_env):
        return "mujoco"
    if callable(getattr(base, "get_state", None)) and callable(getattr(base, "set_state", None)):
        return "protocol"
    return None


def supports_state_restore(env) -> bool:
    """Whether :func:`save_state` / :func:`restore_state` work for ``env``.

    Parameters
    ----------
    env : gymnasium.Env
        A single environment, wrappers included.

    Returns
    -------
    bool
        True for a :class:`rl.mdp.TabularMDP` (or any env whose unwrapped env has
        ``get_state()`` and ``set_state(state)``) and for MuJoCo environments.

    Examples
    --------
    >>> import gymnasium
    >>> supports_state_restore(gymnasium.make("CartPole-v1"))
    False
    """
    return _state_kind(env) is not None


def vine_unsupported_error(env) -> VineUnsupportedError:
    """The :class:`VineUnsupportedError` for ``env``, naming it and the supported envs.

    Parameters
    ----------
    env : gymnasium.Env

    Returns
    -------
    VineUnsupportedError
        Not raised: the caller raises it (so the traceback points at the caller).
    """
    name = getattr(getattr(env, "spec", None), "id", None) or type(env).__name__
    return VineUnsupportedError(
        f"vine sampling needs an environment whose state can be saved and restored "
        f"(rl.mdp.TabularMDP or any env with get_state()/set_state(state), or a MuJoCo "
        f"environment); {name!r} has no state restore. Use single-path sampling "
        f"(rl.sampling.SinglePathSampler) for this environment."
    )


def _check_single_env(env, function: str) -> None:
    if isinstance(env, VectorEnv):
        hint = "venv.envs[i]" if hasattr(env, "envs") else "one environment built like them"
        raise ValueError(
            f"{function} takes a single environment, but a vector environment was passed "
            f"({type(env).__name__} with {env.num_envs} sub-environments); pass one of its "
            f"sub-environments instead, e.g. {hint}"
        )


def save_state(env) -> EnvState:
    """Snapshot an environment so that :func:`restore_state` can branch from it.

    Parameters
    ----------
    env : gymnasium.Env
        A single (not vector) environment, wrappers included: a
        :class:`rl.mdp.TabularMDP` (or any env whose unwrapped env has ``get_state()`` and
        ``set_state(state)``) or a MuJoCo environment.

    Returns
    -------
    EnvState
        Independent of later steps of ``env`` (everything is copied).

    Raises
    ------
    VineUnsupportedError
        If the environment's state cannot be saved.
    ValueError
        If ``env`` is a vector environment (pass one of its sub-environments).

    Notes
    -----
    The state of a wrapped environment is the unwrapped env's state, its RNG (the noise of
    future transitions and resets) and every wrapper's own attributes (the wrapper chain is
    walked: ``TimeLimit``'s elapsed step count, episode statistics, running normalisers...).
    For MuJoCo the physics state is read with ``mujoco.mj_getState(...,
    mjSTATE_INTEGRATION)``: ``qpos`` and ``qvel`` alone miss the constraint solver's warm
    start, and the restored trajectory would differ in the last bits.

    References
    ----------
    .. [1] J. Schulman et al., "Trust Region Policy Optimization", ICML 2015, Sec. 5.2
       (vine sampling needs restarts from stored states).
    .. [2] MuJoCo documentation, "State" (mj_getState / mj_setState),
       https://mujoco.readthedocs.io/en/stable/programming/simulation.html#state

    Examples
    --------
    >>> import gymnasium
    >>> try:
    ...     save_state(gymnasium.make("CartPole-v1"))
    ... except VineUnsupportedError as e:
    ...     print(str(e)[:40])
    vine sampling needs an environment whose
    """
    _check_single_env(env, "save_state")
    kind = _state_kind(env)
    if kind is None:
        raise vine_unsupported_error(env)
    base = env.unwrapped
    if kind == "mujoco":
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        full = np.empty(mujoco.mj_stateSize(base.model, spec), dtype=np.float64)
        mujoco.mj_getState(base.model, base.data, full, spec)
        core = {"qpos": base.data.qpos.copy(), "qvel": base.data.qvel.copy(), "full": full}
    else:
        core = copy.deepcopy(base.get_state())
    return EnvState(kind=kind, core=core, np_random=_rng_state(base), wrappers=_wrappers(env))


def _rng_state(base) -> dict | None:
    rng = getattr(base, "_np_random", None)
    return None if rng is None else copy.deepcopy(rng.bit_generator.state)


def _state_attributes(obj, static: frozenset) -> dict:
    """Deep copies of ``obj``'s instance attributes, less ``static`` names and spaces."""
    return {k: copy.deepcopy(v) for k, v in vars(obj).items()
            if k not in static and not isinstance(v, spaces.Space)}


def _wrappers(env) -> tuple:
    """Each wrapper's class name and a deep copy of its state attributes, outermost first."""
    return tuple((_class_name(w), _state_attributes(w, _WRAPPER_STATIC_ATTRIBUTES))
                 for w in _wrapper_chain(env))


def restore_state(env, state: EnvState) -> None:
    """Put ``env`` back into a state taken by :func:`save_state`.

    Parameters
    ----------
    env : gymnasium.Env
        The environment the state was taken from, or another instance built the same way
        (same wrapper chain, same model).
    state : EnvState
        From :func:`save_state`; it is not consumed and can be restored many times.

    Raises
    ------
    VineUnsupportedError
        If the environment's state cannot be restored.
    ValueError
        If ``state`` is not an :class:`EnvState` or was taken from a differently built env,
        or ``env`` is a vector environment (pass one of its sub-environments).

    Notes
    -----
    After ``restore_state(env, save_state(env))`` the same actions give the same
    observations, rewards and flags, bit for bit (tested for ``TabularMDP`` and MuJoCo).

    Examples
    --------
    >>> from rl.mdp import random_mdp
    >>> env = random_mdp(4, 2, seed=0)
    >>> _ = env.reset(seed=0)
    >>> s = save_state(env)
    >>> first = [env.step(1)[0] for _ in range(5)]
    >>> restore_state(env, s)
    >>> [env.step(1)[0] for _ in range(5)] == first
    True
    """
    if not isinstance(state, EnvState):
        raise ValueError(
            f"state must be an EnvState from rl.envs.save_state; got {type(state).__name__}"
        )
    _check_single_env(env, "restore_state")
    kind = _state_kind(env)
    if kind is None:
        raise vine_unsupported_error(env)
    chain = _checked_chain(env, kind, state)
    base = env.unwrapped
    if kind == "mujoco":
        import mujoco

        _check_mujoco_core(base, state.core, mujoco)
        mujoco.mj_setState(base.model, base.data, state.core["full"],
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        # set_state writes qpos/qvel and runs mj_forward, so derived quantities are current
        base.set_state(state.core["qpos"], state.core["qvel"])
    else:
        base.set_state(copy.deepcopy(state.core))
    _restore_rng_and_wrappers(base, chain, state)


def _checked_chain(env, kind, state: EnvState) -> list:
    """The wrapper chain of ``env``, after checking it is built like the saved one and has
    every attribute the saved wrappers hold."""
    chain = _wrapper_chain(env)
    names = [_class_name(w) for w in chain]
    if kind != state.kind or names != [name for name, _ in state.wrappers]:
        short = [name.rpartition(".")[2] for name, _ in state.wrappers]
        raise ValueError(
            "state was saved from a differently built environment: expected a "
            f"{state.kind!r} env wrapped in {short}, got a {kind!r} env wrapped in "
            f"{[type(w).__name__ for w in chain]}; restore into an env made the same way"
        )
    for w, (_, attributes) in zip(chain, state.wrappers, strict=True):
        _check_known_attributes(w, attributes)
    return chain


def _check_known_attributes(obj, attributes: dict) -> None:
    """A saved state may set data attributes only: none that would shadow a method or a
    property of the object's class (an attribute a reset creates may be missing on a
    freshly built object, so absence alone is no reason to refuse)."""
    own = vars(obj)

    def shadows(k):
        if k in own:
            return False
        try:
            found = inspect.getattr_static(type(obj), k)
        except AttributeError:
            return False
        return callable(found) or hasattr(found, "__get__")

    refused = sorted(k for k in attributes if k in _ENV_STATIC_ATTRIBUTES or shadows(k))
    if refused:
        raise ValueError(f"state sets attributes {refused} that are not data attributes of "
                         f"{type(obj).__name__}; restore into an env made the same way")


def _check_mujoco_core(base, core, mujoco) -> None:
    sizes = {"qpos": base.model.nq, "qvel": base.model.nv,
             "full": mujoco.mj_stateSize(base.model, mujoco.mjtState.mjSTATE_INTEGRATION)}
    if not isinstance(core, dict) or set(core) != set(sizes):
        raise ValueError(f"a MuJoCo state must hold {sorted(sizes)}")
    for key, size in sizes.items():
        value = core[key]
        if not (isinstance(value, np.ndarray) and value.dtype == np.float64
                and value.shape == (size,) and np.all(np.isfinite(value))):
            raise ValueError(f"a MuJoCo state's {key!r} must be {size} finite float64 values "
                             f"for this model; got {getattr(value, 'shape', type(value))}")


def _restore_rng_and_wrappers(base, chain, state: EnvState) -> None:
    rng = getattr(base, "_np_random", None)
    if state.np_random is None:
        base._np_random = None
    elif rng is not None and type(rng.bit_generator).__name__ == state.np_random["bit_generator"]:
        rng.bit_generator.state = copy.deepcopy(state.np_random)  # in place: keeps references
    else:
        base._np_random = _checked_bit_generator(state.np_random)
    for w, (_, attributes) in zip(chain, state.wrappers, strict=True):
        for k, v in attributes.items():
            setattr(w, k, copy.deepcopy(v))


# --------------------------------------------------------------------------------------
# Snapshots of any environment for checkpoints
# --------------------------------------------------------------------------------------

# Attributes of an unwrapped environment that are configuration or links, not state.
_ENV_STATIC_ATTRIBUTES = frozenset({"spec", "metadata", "render_mode", "_np_random"})


def snapshot_env(env) -> dict:
    """The state of one environment as arrays and JSON values, for a checkpoint.

    MuJoCo environments and those with ``get_state``/``set_state`` are saved as by
    :func:`save_state`. Any other environment is saved as its unwrapped env's instance
    attributes (spaces and the static ``spec``, ``metadata`` and ``render_mode`` aside),
    its RNG and its wrappers' attributes: for the classic-control environments (``state``,
    ``steps_beyond_terminated`` ...) that is all there is to their state.

    Parameters
    ----------
    env : gymnasium.Env
        A single environment, wrappers included.

    Returns
    -------
    dict
        :meth:`EnvState.to_dict` of the state: restore it with :func:`restore_snapshot`.

    Raises
    ------
    rl.checkpoint.NotExpressibleError
        If some part of the state is not arrays and plain values (a physics engine's world
        object, a deque ...): the message names the attribute. Such an environment cannot
        be checkpointed exactly.

    Examples
    --------
    >>> import gymnasium
    >>> env = gymnasium.make("CartPole-v1")
    >>> _ = env.reset(seed=0)
    >>> snap = snapshot_env(env)
    >>> first = env.step(1)[0]
    >>> restore_snapshot(env, snap)
    >>> bool((env.step(1)[0] == first).all())
    True
    """
    from rl.checkpoint import NotExpressibleError, encode

    _check_single_env(env, "snapshot_env")
    base = env.unwrapped
    if _state_kind(env) is None:
        core = _state_attributes(base, _ENV_STATIC_ATTRIBUTES)
        state = EnvState(kind="attributes", core=core, np_random=_rng_state(base),
                         wrappers=_wrappers(env))
    else:
        state = save_state(env)
    parts = [(type(base).__name__, state.core)] + [
        (name.rpartition(".")[2], attrs) for name, attrs in state.wrappers]
    for owner, part in parts:
        try:
            encode(part)
        except NotExpressibleError as exc:
            raise NotExpressibleError(f"{owner}.{exc}") from None
    return state.to_dict()


def restore_snapshot(env, snapshot) -> None:
    """Put ``env`` back into the state :func:`snapshot_env` took (of an env built the same way).

    Raises
    ------
    ValueError
        If ``snapshot`` is malformed, was taken from a differently built environment, or
        sets attributes the environment does not have; ``env`` is left unchanged then.
    """
    state = EnvState.from_dict(snapshot)
    _check_single_env(env, "restore_snapshot")
    kind = _state_kind(env) or "attributes"
    chain = _checked_chain(env, kind, state)
    if kind != "attributes":
        restore_state(env, state)
        return
    base = env.unwrapped
    _check_known_attributes(base, state.core)
    for k, v in state.core.items():
        setattr(base, k, copy.deepcopy(v))
    _restore_rng_and_wrappers(base, chain, state)
