r"""The Gymnasium face of a finite MDP: episodes sampled from its model.

:class:`TabularEnv` draws episodes of a finite MDP :math:`(P, R, \mu_0)`: ``reset`` draws
:math:`s_0 \sim \mu_0`, ``step(a)`` draws :math:`s' \sim P(\cdot|s, a)` and pays
:math:`R(s, a)`, an arrival in a terminal state ends the episode and an optional horizon
truncates it. ``get_state``/``set_state`` save and restore the state, the step count and
the random generator, which vine sampling branches from. It knows nothing of values or
gradients: :class:`rl.mdp.TabularMDP`, the exact oracle, checks the model, computes the
exact answers and inherits this class to be an environment as well, so that the sampling
code that runs on MuJoCo runs on it unchanged.
"""

from __future__ import annotations

import copy
import numbers

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from rl.validation import index_in_range

__all__ = ["TabularEnv"]


class TabularEnv(gym.Env):
    r"""A Gymnasium ``Env`` that samples the episodes of a finite MDP.

    Built by :class:`rl.mdp.TabularMDP`, which checks the model first (build a
    ``TabularMDP`` to simulate a model of your own); the arguments are taken as checked.

    Parameters
    ----------
    P : ndarray, shape (S, A, S)
        Transition kernel, each ``P[s, a, :]`` a distribution (float64).
    R : ndarray, shape (S, A)
        Rewards ``R[s, a]`` paid by ``step``.
    mu0 : ndarray, shape (S,)
        Initial state distribution (no mass on terminal states).
    horizon : int or None
        Truncate an episode (``truncated=True``) after ``horizon`` steps.
    terminal_states : tuple of int
        States whose arrival ends the episode (``terminated=True``).

    Attributes
    ----------
    horizon : int or None
    observation_space, action_space : gymnasium.spaces.Discrete

    Notes
    -----
    Both draws invert a cumulative distribution with one uniform number from the env's
    ``np_random``: :math:`s' = \min\{k : F(k) > u\}` with :math:`F` the cumulative sum of
    the row, its last entry set to exactly 1 so that every :math:`u \in [0, 1)` lands.
    Saving the generator's state with the simulator's is what vine sampling ([1]_, §5.2)
    needs to branch several actions from one state with common random numbers.

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel. "Trust Region Policy
       Optimization." ICML 2015, §5.2.
    """

    metadata = {"render_modes": []}

    def __init__(self, P, R, mu0, *, horizon=None, terminal_states=()):
        S, A = P.shape[0], P.shape[1]
        terminal = np.zeros(S, dtype=bool)
        terminal[list(terminal_states)] = True
        cdf = np.cumsum(P, axis=2)
        cdf /= cdf[..., -1:]  # last entry exactly 1: a uniform draw in [0, 1) always lands
        mu0_cdf = np.cumsum(mu0)
        mu0_cdf /= mu0_cdf[-1]
        for arr in (cdf, mu0_cdf):
            arr.setflags(write=False)
        self.horizon = horizon
        self._reward = R
        self._terminal = terminal
        self._cdf, self._mu0_cdf = cdf, mu0_cdf
        self.observation_space = spaces.Discrete(S)
        self.action_space = spaces.Discrete(A)
        self.render_mode = None
        self._s: int | None = None
        self._t = 0
        self._needs_reset = True

    def reset(self, *, seed=None, options=None):
        r"""Start an episode: :math:`s_0 \sim \mu_0`, or ``options["state"]`` if given.

        Parameters
        ----------
        seed : int, optional
            Reseeds the env's ``np_random`` (Gymnasium semantics).
        options : dict, optional
            ``{"state": s}`` starts at the non-terminal state ``s`` instead of drawing it.

        Returns
        -------
        obs : int
        info : dict
        """
        super().reset(seed=seed)
        if options is not None and "state" in options:
            s = index_in_range(options["state"], 'options["state"]', self.observation_space.n,
                               "state")
            if self._terminal[s]:
                raise ValueError(f'options["state"] = {s} is a terminal state; start elsewhere')
        else:
            s = int(np.searchsorted(self._mu0_cdf, self.np_random.random(), side="right"))
        self._s, self._t, self._needs_reset = s, 0, False
        return s, {}

    def step(self, action):
        r"""Take action ``a``: :math:`s' \sim P(\cdot|s, a)`, reward :math:`R(s, a)`.

        Returns
        -------
        obs : int
        reward : float
        terminated : bool
            ``True`` when :math:`s'` is a terminal state.
        truncated : bool
            ``True`` when ``horizon`` steps have elapsed (as ``gymnasium``'s ``TimeLimit``,
            independent of ``terminated``).
        info : dict
        """
        if self._needs_reset:
            raise ResetNeeded(
                "the episode has ended (or never started); call reset() before step()"
            )
        a = index_in_range(action, "action", self.action_space.n, "action")
        s = self._s
        s_next = int(np.searchsorted(self._cdf[s, a], self.np_random.random(), side="right"))
        self._t += 1
        terminated = bool(self._terminal[s_next])
        truncated = self.horizon is not None and self._t >= self.horizon
        self._s = s_next
        self._needs_reset = terminated or truncated
        return s_next, float(self._reward[s, a]), terminated, truncated, {}

    def get_state(self) -> dict:
        """Snapshot of the simulator: current state, elapsed steps, and ``np_random`` state.

        Returns
        -------
        dict
            Keys ``"state"``, ``"elapsed_steps"``, ``"needs_reset"``, ``"rng"``; pass it to
            :meth:`set_state` to continue from exactly here (same future random draws).
        """
        if self._s is None:
            raise ResetNeeded("the env has no state yet; call reset() before get_state()")
        return {
            "state": self._s,
            "elapsed_steps": self._t,
            "needs_reset": self._needs_reset,
            "rng": copy.deepcopy(self.np_random.bit_generator.state),
        }

    def set_state(self, state: dict) -> None:
        """Restore a snapshot taken by :meth:`get_state` (state, step count and RNG).

        Parameters
        ----------
        state : dict
            As returned by :meth:`get_state`.
        """
        keys = {"state", "elapsed_steps", "needs_reset", "rng"}
        if not isinstance(state, dict) or not keys <= state.keys():
            raise ValueError(
                f"state must be the dict returned by get_state() with keys {sorted(keys)}; "
                f"got {state!r}"
            )
        s = index_in_range(state["state"], 'state["state"]', self.observation_space.n, "state")
        t = state["elapsed_steps"]
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
            raise ValueError(f'state["elapsed_steps"] must be an integer >= 0; got {t!r}')
        rng = state["rng"]
        name = rng.get("bit_generator") if isinstance(rng, dict) else None
        if not isinstance(name, str) or not hasattr(np.random, name):
            raise ValueError(
                'state["rng"] must be a numpy bit-generator state (bit_generator.state); '
                f"got {rng!r}"
            )
        if type(self.np_random.bit_generator).__name__ != name:
            self.np_random = np.random.Generator(getattr(np.random, name)())
        self.np_random.bit_generator.state = copy.deepcopy(rng)
        self._s, self._t, self._needs_reset = s, int(t), bool(state["needs_reset"])
