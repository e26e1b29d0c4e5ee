"""Checks and small conversions shared by the samplers: seeds, RNG states, spaces, policies.

Each sampler's public entry calls these once; the names are public within
:mod:`rl.sampling` (not exported from it).
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from gymnasium import spaces

from rl.validation import positive_int

__all__ = ["positive_int", "seed_sequence", "generator", "int_seed", "checked_rng_state",
           "space_layout", "check_policy", "check_policy_fits", "env_name"]


def seed_sequence(seed, name: str = "seed") -> np.random.SeedSequence:
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


def generator(ss: np.random.SeedSequence) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(ss))


def int_seed(rng: np.random.Generator) -> int:
    """A seed for ``env.reset(seed=...)`` / a fresh Generator, drawn from ``rng``."""
    return int(rng.integers(0, 2**31 - 1))


def checked_rng_state(rng: np.random.Generator, state, where: str) -> dict:
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


def space_layout(space) -> tuple[tuple[int, ...], type]:
    """Shape of one element and the dtype the sampler stores it as."""
    if isinstance(space, spaces.Discrete):
        return (), np.int64
    return tuple(space.shape), np.float64


def check_policy(policy) -> None:
    for name in ("step", "act", "distribution"):
        if not callable(getattr(policy, name, None)):
            raise ValueError(
                f"policy must provide {name}() like the policies of rl.policies "
                f"(TabularSoftmax, CategoricalMLP, GaussianMLP); got {type(policy).__name__}"
            )


def check_policy_fits(policy, observation_space, action_space) -> None:
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


def env_name(env) -> str:
    """The registered id of ``env`` (a single or vector env), else its class name."""
    spec = getattr(env, "spec", None)
    if spec is None and getattr(env, "envs", None):
        spec = getattr(env.envs[0], "spec", None)
        if spec is None:
            return repr(type(env.envs[0].unwrapped).__name__)
    if spec is not None and getattr(spec, "id", None):
        return repr(spec.id)
    return repr(type(getattr(env, "unwrapped", env)).__name__)
