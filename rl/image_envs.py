"""Ready-made environments for image and grid tasks: Atari, MinAtar and MiniGrid.

Each function builds one ``gymnasium.Env`` whose spaces :func:`rl.make_policy` takes, with
the standard preprocessing of the benchmarks that use it; pass it to :func:`rl.train` as a
factory (``functools.partial(make_atari_env, "ALE/Pong-v5")``), which a resumed run is given
again. The packages are optional extras: ``pip install -e ".[atari]"``, ``".[minatar]"``,
``".[minigrid]"``; a missing one is an ImportError naming the extra.

* :func:`make_atari_env`: ``AtariPreprocessing`` (no-op starts, frame skip 4 with
  max-pooling, 84 x 84 grayscale ``uint8``) and ``FrameStackObservation`` (4 frames,
  channels first), the DQN / PPO Atari setting;
* :func:`make_minatar_env`: a MinAtar game (10 x 10 x n ``bool`` frames, channels last);
* :func:`make_minigrid_env`: a MiniGrid task without its mission text
  (:func:`drop_mission`), ``Dict(direction: Discrete(4), image: 7 x 7 x 3 uint8)``.
"""

from __future__ import annotations

import gymnasium

__all__ = ["drop_mission", "make_atari_env", "make_minatar_env", "make_minigrid_env"]


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed ({exc}); install it with pip install -e "
                          f"'.[{extra}]' (or pip install {_extra_packages(extra)})") from None


def _extra_packages(extra: str) -> str:
    """The PyPI packages of one of the optional extras of this module (for messages)."""
    return {"atari": "ale-py opencv-python-headless", "minatar": "minatar",
            "minigrid": "minigrid"}[extra]


def make_atari_env(env_id: str = "ALE/Breakout-v5", *, frame_stack: int = 4,
                   noop_max: int = 30, frame_skip: int = 4, screen_size: int = 84,
                   terminal_on_life_loss: bool = False, **make_kwargs) -> gymnasium.Env:
    """An Atari game with the standard preprocessing, as the DQN and PPO papers train on.

    Parameters
    ----------
    env_id : str, default "ALE/Breakout-v5"
        An ALE id (registered by ``ale_py``).
    frame_stack : int, default 4
        Frames stacked by ``gymnasium.wrappers.FrameStackObservation``: observations are
        ``(frame_stack, 84, 84)`` ``uint8`` (channels first, which
        :class:`rl.spaces.ObservationLayout` reads as CHW).
    noop_max, frame_skip, screen_size, terminal_on_life_loss
        ``gymnasium.wrappers.AtariPreprocessing``'s settings: up to 30 no-op actions at
        reset, the action repeated 4 times with the last two frames max-pooled, frames
        resized to 84 x 84 grayscale; losing a life does not end the episode (Machado et
        al.'s recommendation).
    **make_kwargs
        Passed to ``gymnasium.make`` (e.g. ``repeat_action_probability``).

    Returns
    -------
    gymnasium.Env

    Notes
    -----
    The emulator's own frame skip is turned off (``frameskip=1``) so that the wrapper skips
    and max-pools, as ``AtariPreprocessing`` requires [1]_. Rewards are not clipped here:
    the runner's ``reward_scaling`` (:mod:`rl.reward_scaling`) plays that part.

    References
    ----------
    .. [1] M. C. Machado et al., "Revisiting the Arcade Learning Environment: evaluation
       protocols and open problems for general agents", JAIR 61, 2018.
    .. [2] V. Mnih et al., "Human-level control through deep reinforcement learning",
       Nature 518, 2015 (Methods: preprocessing).
    """
    ale_py = _require("ale_py", "atari")
    _require("cv2", "atari")  # AtariPreprocessing resizes with OpenCV
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    gymnasium.register_envs(ale_py)
    env = gymnasium.make(env_id, frameskip=1, **make_kwargs)
    env = AtariPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip,
                             screen_size=screen_size, terminal_on_life_loss=terminal_on_life_loss,
                             grayscale_obs=True, scale_obs=False)
    return FrameStackObservation(env, frame_stack)


def make_minatar_env(game: str = "breakout", *, minimal_actions: bool = True,
                     **kwargs) -> gymnasium.Env:
    """A MinAtar game: 10 x 10 frames with one ``bool`` channel per object kind.

    Parameters
    ----------
    game : {"asterix", "breakout", "freeway", "seaquest", "space_invaders"}
    minimal_actions : bool, default True
        Only the game's own actions (MinAtar's ``-v1`` ids) instead of all six.
    **kwargs
        Passed to ``minatar.gym.BaseEnv`` (``sticky_action_prob``, ``difficulty_ramping``).

    References
    ----------
    .. [1] K. Young and T. Tian, "MinAtar: An Atari-inspired testbed for thorough and
       reproducible reinforcement learning experiments", arXiv:1903.03176, 2019.
    """
    minatar_gym = _require("minatar.gym", "minatar")
    return minatar_gym.BaseEnv(game, use_minimal_action_set=minimal_actions, **kwargs)


def drop_mission(env: gymnasium.Env) -> gymnasium.Env:
    """``env`` without the ``mission`` text of its Dict observations.

    A MiniGrid observation is ``Dict(direction, image, mission)``; the mission is a string,
    which has no fixed-size encoding (:class:`rl.spaces.ObservationLayout` refuses it). This
    keeps the other keys with ``gymnasium.wrappers.FilterObservation``.

    Examples
    --------
    >>> import numpy as np
    >>> from gymnasium import spaces
    >>> class Grid(gymnasium.Env):
    ...     observation_space = spaces.Dict({"image": spaces.Box(0, 255, (3, 3, 3), np.uint8),
    ...                                      "mission": spaces.Text(20)})
    ...     action_space = spaces.Discrete(3)
    >>> drop_mission(Grid()).observation_space
    Dict('image': Box(0, 255, (3, 3, 3), uint8))
    """
    from gymnasium import spaces
    from gymnasium.wrappers import FilterObservation

    space = env.observation_space
    if not isinstance(space, spaces.Dict) or "mission" not in space.spaces:
        raise ValueError(f"drop_mission takes an env whose observations are a Dict with a "
                         f"'mission' key; got observation_space {space!r}")
    return FilterObservation(env, [k for k in space.spaces if k != "mission"])


def make_minigrid_env(env_id: str = "MiniGrid-Empty-5x5-v0", **make_kwargs) -> gymnasium.Env:
    """A MiniGrid task without its mission text: ``Dict(direction: Discrete(4), image: 7 x 7
    x 3 uint8)`` observations (the agent's partial view), for a
    :class:`rl.policies.MultiInputPolicy`.

    References
    ----------
    .. [1] M. Chevalier-Boisvert et al., "Minigrid & Miniworld: modular & customizable
       reinforcement learning environments for goal-oriented tasks", NeurIPS 2023 Datasets
       and Benchmarks.
    """
    _require("minigrid", "minigrid")
    return drop_mission(gymnasium.make(env_id, **make_kwargs))
