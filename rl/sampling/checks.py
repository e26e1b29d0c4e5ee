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
    """Shape of one action (or state) and the dtype the sampler stores it as: int64 for
    ``Discrete``, ``MultiDiscrete`` and ``MultiBinary``, float64 for ``Box``."""
    if isinstance(space, spaces.Discrete):
        return (), np.int64
    if isinstance(space, (spaces.MultiDiscrete, spaces.MultiBinary)):
        return tuple(space.shape), np.int64
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
    problems = _action_problems(policy, action_space) + _observation_problems(
        policy, observation_space)
    if problems:
        raise ValueError(
            f"policy {policy!r} does not fit the environment: " + "; ".join(problems)
            + "; build a matching policy with rl.policies.make_policy(env.observation_space, "
            "env.action_space)"
        )


def _action_problems(policy, action_space) -> list:
    from rl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical

    name = type(policy).__name__
    dist = getattr(policy, "distribution_class", None)
    discrete_actions = isinstance(action_space, spaces.Discrete)
    multi = isinstance(dist, type) and issubclass(dist, MultiCategorical)
    if isinstance(action_space, (spaces.MultiDiscrete, spaces.MultiBinary)):
        from rl.spaces import action_spec

        spec = action_spec(action_space)
        if dist is None:
            return []
        if spec.kind == "multidiscrete":
            if not multi:
                return [f"{name} samples {_kind(dist)} actions but the action space is "
                        f"{action_space!r} (sub-actions: a MultiCategorical head)"]
            if tuple(dist.nvec) != tuple(spec.nvec):
                return [f"{name} has nvec={tuple(dist.nvec)} but the action space is "
                        f"{action_space!r}"]
            return []
        if dist is not Bernoulli:
            return [f"{name} samples {_kind(dist)} actions but the action space is "
                    f"{action_space!r} (bits: a Bernoulli head)"]
        if getattr(policy, "num_bits", spec.size) != spec.size or getattr(
                getattr(policy, "action", None), "size", spec.size) != spec.size:
            return [f"{name} samples a different number of bits than the action space "
                    f"{action_space!r} has"]
        return []
    if multi or dist is Bernoulli:
        return [f"{name} samples {_kind(dist)} actions but the action space is "
                f"{action_space!r}"]
    if dist is DiagGaussian and discrete_actions:
        return [f"{name} samples continuous (Gaussian) actions but the action space "
                f"is {action_space!r}"]
    if dist is Categorical and not discrete_actions:
        return [f"{name} samples discrete actions but the action space is "
                f"{action_space!r}"]
    size = getattr(getattr(policy, "action", None), "size", None)  # MultiInputPolicy
    if discrete_actions and getattr(policy, "num_actions", size) not in (None, action_space.n):
        actual = getattr(policy, "num_actions", size)
        return [f"{name} has num_actions={actual} but the action space is {action_space!r}"]
    if not discrete_actions and getattr(policy, "act_dim", size) not in (
        None, action_space.shape[0]
    ):
        actual = getattr(policy, "act_dim", size)
        return [f"{name} has act_dim={actual} but the action space "
                f"{action_space!r} has dimension {action_space.shape[0]}"]
    return []


def _kind(dist) -> str:
    """How a distribution class samples, for messages."""
    from rl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical

    if isinstance(dist, type) and issubclass(dist, MultiCategorical):
        return f"MultiDiscrete (nvec={tuple(dist.nvec)})"
    return {Bernoulli: "MultiBinary (Bernoulli)", Categorical: "discrete",
            DiagGaussian: "continuous (Gaussian)"}.get(dist, getattr(dist, "__name__", "other"))


def _observation_problems(policy, observation_space) -> list:
    name = type(policy).__name__
    layout = getattr(policy, "layout", None)
    if layout is not None:  # a MultiInputPolicy: its leaves against the space's
        from rl.spaces import ObservationLayout

        try:
            theirs = ObservationLayout.from_space(observation_space,
                                                  image_layout=layout.image_layout or "auto")
        except ValueError as exc:
            return [str(exc)]
        mine = [(leaf.path, leaf.kind, leaf.shape) for leaf in layout.leaves]
        other = [(leaf.path, leaf.kind, leaf.shape) for leaf in theirs.leaves]
        if mine != other:
            return [f"{name} takes the observation leaves {_leaves(mine)} but the observation "
                    f"space {observation_space!r} has {_leaves(other)}"]
        return []
    image_shape = getattr(policy, "image_shape", None)
    if image_shape is not None:  # a CategoricalCNN
        shape = getattr(observation_space, "shape", None)
        if not isinstance(observation_space, spaces.Box) or tuple(shape) != tuple(image_shape):
            return [f"{name} takes images of shape {tuple(image_shape)} but the observation "
                    f"space is {observation_space!r}"]
        return []
    problems = []
    num_states, obs_dim = getattr(policy, "num_states", None), getattr(policy, "obs_dim", None)
    if isinstance(observation_space, spaces.Discrete):
        if obs_dim is not None:
            problems.append(f"{name} takes observation vectors (obs_dim={obs_dim}) but the "
                            f"observation space is {observation_space!r} (integer states)")
        elif num_states is not None and num_states != observation_space.n:
            problems.append(f"{name} has num_states={num_states} but the observation space is "
                            f"{observation_space!r}")
    elif not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        if num_states is not None or obs_dim is not None:
            problems.append(f"{name} takes {'integer states' if num_states else 'vectors'} "
                            f"but the observation space is {observation_space!r}")
    else:
        if num_states is not None:
            problems.append(f"{name} takes integer states (num_states={num_states}) but the "
                            f"observation space is {observation_space!r}")
        elif obs_dim is not None and obs_dim != observation_space.shape[0]:
            problems.append(f"{name} has obs_dim={obs_dim} but the observation space "
                            f"{observation_space!r} has dimension {observation_space.shape[0]}")
    return problems


def _leaves(leaves) -> str:
    return "[" + ", ".join(f"{path}: {kind}{shape}" for path, kind, shape in leaves) + "]"


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
