r"""Exact tabular MDPs: the oracle every sampled estimate is tested against.

A :class:`TabularMDP` holds a finite discounted Markov decision process
:math:`(\mathcal S, \mathcal A, P, R, \gamma, \mu_0)` and answers, for any stochastic
policy given as an ``(S, A)`` row-stochastic matrix ``pi[s, a] = pi(a|s)``, the exact
quantities of the TRPO paper [1]_ by linear solves: :math:`V_\pi`, :math:`Q_\pi`,
:math:`A_\pi`, the discounted visitation :math:`\rho_\pi`, the performance
:math:`\eta(\pi)`, the surrogate :math:`L_\pi(\tilde\pi)`, the mean and maximal KL
divergences, the exact policy gradient and the exact Fisher matrix. Every method that
takes a policy matrix is traceable by :mod:`autograd` in that matrix, so gradients and
Hessians of these quantities are exact too.

The same object is a :class:`gymnasium.Env` (``Discrete`` observations and actions), so
the sampling code that runs on MuJoCo runs on it unchanged, and sampled estimates can
be compared with the exact answers. That face is :class:`rl.tabular_env.TabularEnv`, the
base class that samples episodes and knows nothing of the exact answers; this module is
the oracle: the model's checks and the exact quantities.

References
----------
.. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel. "Trust Region Policy
   Optimization." ICML 2015. arXiv:1502.05477.
"""

from __future__ import annotations

import numbers

import autograd.numpy as anp
import numpy as np
from autograd import jacobian

from rl.tabular_env import TabularEnv
from rl.validation import as_generator, finite_real, index_in_range, positive_int, probability
from trustregion._checks import as_vector

__all__ = ["TabularMDP", "random_mdp", "chain_mdp", "gridworld", "two_action_bandit"]

# Rows of P, mu0 and pi given in float64 must sum to one within this absolute tolerance
# (rows given in a lower precision within _prob_atol's wider one). Rows of P and mu0 that
# pass, and of pi given in a lower precision, are renormalised in float64, so the exact
# answers use distributions stochastic to rounding.
_PROB_ATOL = 1e-8


# ----------------------------------------------------------------------------- validation
def _as_real_array(x, name: str) -> np.ndarray:
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be an array of real numbers; got {type(x).__name__}"
        ) from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return arr


def _prob_atol(dtype, n: int) -> float:
    """Tolerance on the sum of ``n`` probabilities given in ``dtype``.

    ``_PROB_ATOL`` for float64 (and integer) input. Probabilities normalised in a lower
    precision, ``p / p.sum()`` in float32, are each rounded to that precision after a sum
    that itself has a relative error up to about ``n eps``; their float64 sum then
    differs from 1 by that much, so the tolerance is ``4 n eps`` of the input dtype,
    capped at ``sqrt(eps)`` (3e-4 for float32).
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or dtype.itemsize >= 8:
        return _PROB_ATOL
    eps = float(np.finfo(dtype).eps)
    return max(_PROB_ATOL, min(4.0 * n * eps, float(np.sqrt(eps))))


def _input_dtype(x) -> np.dtype:
    """The dtype ``x`` was given in (float64 for lists and Python numbers)."""
    dtype = getattr(x, "dtype", None)
    try:
        return np.dtype(dtype) if dtype is not None else np.dtype(np.float64)
    except TypeError:
        return np.dtype(np.float64)


def _check_distributions(
    arr: np.ndarray, name: str, index_names: str, fix: str, dtype=np.float64
) -> None:
    """Check that ``arr`` is non-negative and sums to one along its last axis, within the
    tolerance of ``dtype``, the precision the caller gave it in (:func:`_prob_atol`)."""
    if np.any(arr < 0.0):
        idx = tuple(int(i) for i in np.argwhere(arr < 0.0)[0])
        raise ValueError(
            f"{name} must be non-negative (probabilities); "
            f"{name}{list(idx)} = {float(arr[idx])!r}. "
            f"Fix: clip with np.clip({name}, 0, None) and renormalise."
        )
    sums = arr.sum(axis=-1)
    bad = np.abs(sums - 1.0) > _prob_atol(dtype, arr.shape[-1])
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(np.atleast_1d(bad))[0]) if sums.ndim else ()
        where = f"{name}[{', '.join(str(i) for i in idx) + ', ' if idx else ''}:]"
        total = sums[idx] if sums.ndim else sums
        raise ValueError(
            f"{where} must sum to 1 ({index_names}); it sums to {float(total)!r}. Fix: {fix}"
        )


def _check_gamma(gamma) -> float:
    if not isinstance(gamma, numbers.Real) or isinstance(gamma, bool):
        raise ValueError(f"gamma must be a real number in [0, 1); got {gamma!r}")
    gamma = float(gamma)
    if not (0.0 <= gamma < 1.0):
        raise ValueError(
            f"gamma must satisfy 0 <= gamma < 1 (the discounted objective diverges at gamma = 1); "
            f"got {gamma!r}. Fix: use a discount such as 0.99, and a horizon for episodic tasks."
        )
    return gamma


# ----------------------------------------------------------------------------- the MDP
class TabularMDP(TabularEnv):
    r"""A finite discounted MDP with exact, differentiable answers; also a Gymnasium ``Env``.

    Parameters
    ----------
    P : array_like, shape (S, A, S)
        Transition kernel ``P[s, a, s2] = P(s2 | s, a)``; each ``P[s, a, :]`` is a
        distribution (non-negative, sums to 1 within ``1e-8``, or within ``4 S eps`` of a
        lower-precision input dtype such as float32; it is then renormalised in float64).
    R : array_like, shape (S, A)
        Expected reward ``R[s, a] = E[r_t | s_t = s, a_t = a]``, finite.
    gamma : float
        Discount factor, ``0 <= gamma < 1``.
    mu0 : array_like, shape (S,)
        Initial state distribution :math:`\mu_0` (the paper's :math:`\rho_0`).
    horizon : int, optional
        When given, an episode of the ``Env`` is truncated (``truncated=True``) after
        ``horizon`` steps. The exact quantities are those of the infinite-horizon
        discounted objective, which a sampler reproduces by bootstrapping from
        :math:`V(s_H)` at truncation.
    terminal_states : sequence of int, optional
        States whose arrival ends the episode (``terminated=True``). A terminal state is
        absorbing with zero reward: its rows of ``P`` and ``R`` are replaced by a self
        loop and zeros (so :math:`V_\pi = 0` there). ``mu0`` must put no mass on them.

    Attributes
    ----------
    P, R, mu0 : ndarray
        The (read-only) validated model, after the terminal-state replacement.
    gamma : float
    horizon : int or None
    terminal_states : tuple of int
    observation_space, action_space : gymnasium.spaces.Discrete

    Notes
    -----
    For a policy matrix :math:`\pi` (``pi[s, a]`` :math:`= \pi(a|s)`) write
    :math:`P_\pi(s, s') = \sum_a \pi(a|s) P(s'|s, a)` and
    :math:`r_\pi(s) = \sum_a \pi(a|s) R(s, a)`. The exact answers are linear solves with
    the M-matrix :math:`M_\pi = I - \gamma P_\pi`, whose condition number is at most
    :math:`(1+\gamma)/(1-\gamma)` in the :math:`\infty`-norm:

    .. math::

        V_\pi = M_\pi^{-1} r_\pi, \qquad
        Q_\pi(s, a) = R(s, a) + \gamma \sum_{s'} P(s'|s, a) V_\pi(s'), \qquad
        A_\pi = Q_\pi - V_\pi,

        \rho_\pi^\top = \mu_0^\top M_\pi^{-1}, \qquad
        \eta(\pi) = \mu_0^\top V_\pi = \sum_s \rho_\pi(s) r_\pi(s).

    As an environment (the methods of :class:`rl.tabular_env.TabularEnv`), ``reset``
    draws :math:`s_0 \sim \mu_0` and ``step(a)`` returns :math:`s' \sim P(\cdot|s, a)`
    and the reward :math:`R(s, a)`, all from the env's ``np_random``.
    ``get_state``/``set_state`` save and restore the current state, the elapsed steps and
    that generator's state, which is what vine sampling ([1]_, §5.2) needs to branch
    several actions from one state with common random numbers.

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel. "Trust Region Policy
       Optimization." ICML 2015, §2 and §5.
    .. [2] M. L. Puterman. *Markov Decision Processes*. Wiley, 1994, §6.1.

    Examples
    --------
    >>> import numpy as np
    >>> from rl.mdp import TabularMDP
    >>> P = np.array([[[0.9, 0.1], [0.1, 0.9]], [[1.0, 0.0], [0.0, 1.0]]])
    >>> R = np.array([[0.0, 1.0], [2.0, 0.0]])
    >>> mdp = TabularMDP(P, R, gamma=0.5, mu0=[1.0, 0.0], horizon=3)
    >>> pi = np.full((2, 2), 0.5)
    >>> print(np.round(mdp.value(pi), 4))
    [1.25 1.75]
    >>> obs, info = mdp.reset(seed=0)
    >>> obs
    0
    >>> obs, reward, terminated, truncated, info = mdp.step(1)
    >>> reward, terminated, truncated
    (1.0, False, False)
    """

    def __init__(self, P, R, gamma, mu0, *, horizon=None, terminal_states=None):
        P_dtype, mu0_dtype = _input_dtype(P), _input_dtype(mu0)
        P = _as_real_array(P, "P")
        if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] < 1 or P.shape[1] < 1:
            raise ValueError(
                f"P must have shape (S, A, S) with P[s, a, s2] = P(s2 | s, a); got shape {P.shape}"
            )
        S, A = P.shape[0], P.shape[1]
        _check_distributions(
            P, "P", "a distribution over next states",
            "normalise with P / P.sum(axis=2, keepdims=True)", P_dtype,
        )
        R = _as_real_array(R, "R")
        if R.shape != (S, A):
            raise ValueError(
                f"R must have shape (S, A) = ({S}, {A}) to match P; got shape {R.shape}. "
                f"For state rewards r(s) pass np.repeat(r[:, None], {A}, axis=1)."
            )
        gamma = _check_gamma(gamma)
        mu0 = _as_real_array(mu0, "mu0")
        if mu0.shape != (S,):
            raise ValueError(f"mu0 must have shape (S,) = ({S},) to match P; got shape {mu0.shape}")
        _check_distributions(mu0, "mu0", "an initial state distribution", "use mu0 / mu0.sum()",
                             mu0_dtype)
        if horizon is not None:
            horizon = positive_int(horizon, "horizon")
        terminal = ()
        if terminal_states is not None:
            try:
                items = list(terminal_states)
            except TypeError:
                raise ValueError(
                    f"terminal_states must be a sequence of state indices; got {terminal_states!r}"
                ) from None
            terminal = tuple(
                sorted({index_in_range(s, "terminal_states", S, "state") for s in items})
            )

        P = P / P.sum(axis=2, keepdims=True)
        mu0 = mu0 / mu0.sum()
        mask = np.zeros(S, dtype=bool)
        mask[list(terminal)] = True
        if np.any(mu0[mask] > 0.0):
            s = int(np.flatnonzero(mask & (mu0 > 0.0))[0])
            raise ValueError(
                f"mu0 puts probability {float(mu0[s])!r} on terminal state {s}; an episode "
                f"cannot start terminated. Fix: set mu0[{s}] = 0 and renormalise."
            )
        for s in terminal:  # absorbing with zero reward
            P[s] = 0.0
            P[s, :, s] = 1.0
            R[s] = 0.0
        for arr in (P, R, mu0):
            arr.setflags(write=False)

        self.P, self.R, self.gamma, self.mu0 = P, R, gamma, mu0
        self.terminal_states = terminal
        self._I = np.eye(S)
        super().__init__(P, R, mu0, horizon=horizon, terminal_states=terminal)

    # ------------------------------------------------------------------ sizes
    @property
    def num_states(self) -> int:
        """Number of states ``S``."""
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        """Number of actions ``A``."""
        return self.P.shape[1]

    def __repr__(self) -> str:
        return (
            f"TabularMDP(num_states={self.num_states}, num_actions={self.num_actions}, "
            f"gamma={self.gamma}, horizon={self.horizon}, terminal_states={self.terminal_states})"
        )

    # ------------------------------------------------------------------ exact answers
    def _policy(self, pi, name: str = "pi"):
        """Validate a policy matrix; full checks only for plain arrays (not autograd boxes).

        A plain float64 matrix is returned as it is (its rows sum to 1 within
        ``_PROB_ATOL``); one of another dtype, e.g. float32, is converted to float64 and
        its rows renormalised there (they sum to 1 within that dtype's tolerance,
        :func:`_prob_atol`). Either way a second call returns the matrix unchanged, so
        methods that call each other see the same policy. A traced one is returned as it
        is.
        """
        S, A = self.num_states, self.num_actions
        if isinstance(pi, (list, tuple)):
            try:
                pi = np.asarray(pi, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{name} must be an (S, A) matrix of probabilities; got {type(pi).__name__}"
                ) from exc
        if isinstance(pi, np.ndarray):
            if pi.shape != (S, A):
                raise ValueError(
                    f"{name} must be an (S, A) = ({S}, {A}) matrix with {name}[s, a] = pi(a|s); "
                    f"got shape {pi.shape}"
                )
            if pi.dtype.kind not in "biuf":
                raise ValueError(f"{name} must hold real probabilities; got dtype {pi.dtype}")
            dtype, pi = pi.dtype, pi.astype(np.float64, copy=False)
            if not np.all(np.isfinite(pi)):
                raise ValueError(f"{name} contains NaN or inf; pass finite probabilities")
            _check_distributions(
                pi, name, "a distribution over actions",
                f"normalise rows, e.g. {name} / {name}.sum(axis=1, keepdims=True) or a softmax",
                dtype,
            )
            if dtype != np.float64:
                pi = pi / pi.sum(axis=1, keepdims=True)
            return pi
        shape = getattr(pi, "shape", None)
        if shape != (S, A):
            raise ValueError(f"{name} must have shape (S, A) = ({S}, {A}); got {shape}")
        return pi

    def _q_from_values(self, V):
        """``Q(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V(s')`` (one Bellman backup of V)."""
        return self.R + self.gamma * anp.einsum("sat,t->sa", self.P, V)

    def _solve_value(self, pi):
        """Return ``(M_pi, V_pi)`` with ``M_pi = I - gamma P_pi`` and ``V_pi = M_pi^{-1} r_pi``."""
        P_pi = anp.einsum("sa,sat->st", pi, self.P)
        r_pi = anp.sum(pi * self.R, axis=1)
        M = self._I - self.gamma * P_pi
        return M, anp.linalg.solve(M, r_pi)  # Bellman expectation equation

    def transition_matrix(self, pi):
        r"""State-to-state kernel :math:`P_\pi(s, s') = \sum_a \pi(a|s) P(s'|s, a)`.

        Parameters
        ----------
        pi : array_like, shape (S, A)
            Row-stochastic policy matrix.

        Returns
        -------
        ndarray, shape (S, S)
        """
        pi = self._policy(pi)
        return anp.einsum("sa,sat->st", pi, self.P)

    def value(self, pi):
        r"""State values :math:`V_\pi`.

        Parameters
        ----------
        pi : array_like, shape (S, A)
            Row-stochastic policy matrix ``pi[s, a]`` :math:`= \pi(a|s)`.

        Returns
        -------
        ndarray, shape (S,)

        Notes
        -----
        The Bellman expectation equation :math:`V_\pi = r_\pi + \gamma P_\pi V_\pi`, solved
        as :math:`(I - \gamma P_\pi) V_\pi = r_\pi` ([1]_, §5.1).

        References
        ----------
        .. [1] R. S. Sutton, A. G. Barto. *Reinforcement Learning: An Introduction*, 2nd ed.
           MIT Press, 2018.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> mdp = two_action_bandit()
        >>> print(np.round(mdp.value(np.array([[0.5, 0.5]])), 6))
        [50.5]
        """
        pi = self._policy(pi)
        return self._solve_value(pi)[1]

    def q_values(self, pi):
        r"""Action values :math:`Q_\pi(s, a) = R(s, a) + \gamma \sum_{s'} P(s'|s,a) V_\pi(s')`.

        Parameters
        ----------
        pi : array_like, shape (S, A)

        Returns
        -------
        ndarray, shape (S, A)

        Notes
        -----
        :math:`Q_\pi(s, a) = \mathbb E[\sum_{l \ge 0} \gamma^l r(s_{t+l}, a_{t+l}) \mid
        s_t = s, a_t = a]` ([1]_, §2); then :math:`V_\pi(s) = \sum_a \pi(a|s) Q_\pi(s, a)`.

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> print(np.round(two_action_bandit().q_values(np.array([[0.5, 0.5]])), 6))
        [[100.   1.]]
        """
        pi = self._policy(pi)
        return self._q_from_values(self._solve_value(pi)[1])

    def advantages(self, pi):
        r"""Advantages :math:`A_\pi(s, a) = Q_\pi(s, a) - V_\pi(s)`.

        Parameters
        ----------
        pi : array_like, shape (S, A)

        Returns
        -------
        ndarray, shape (S, A)

        Notes
        -----
        By construction :math:`\sum_a \pi(a|s) A_\pi(s, a) = 0` at every state ([1]_, §2).

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> print(np.round(two_action_bandit().advantages(np.array([[0.5, 0.5]])), 6))
        [[ 49.5 -49.5]]
        """
        pi = self._policy(pi)
        V = self._solve_value(pi)[1]
        return self._q_from_values(V) - V[:, None]

    def visitation(self, pi, normalized: bool = False):
        r"""Discounted state visitation :math:`\rho_\pi` (or :math:`d_\pi = (1-\gamma)\rho_\pi`).

        Parameters
        ----------
        pi : array_like, shape (S, A)
        normalized : bool, default False
            ``False``: the paper's unnormalised frequencies, summing to
            :math:`1/(1-\gamma)`. ``True``: the distribution :math:`d_\pi`, summing to 1.
            Anything but a bool is a ``ValueError``.

        Returns
        -------
        ndarray, shape (S,)

        Notes
        -----
        TRPO paper [1]_, §2:

        .. math::

            \rho_\pi(s) = \sum_{t \ge 0} \gamma^t P(s_t = s), \qquad
            \rho_\pi^\top = \mu_0^\top (I - \gamma P_\pi)^{-1},

        i.e. the flow equation :math:`\rho_\pi = \mu_0 + \gamma P_\pi^\top \rho_\pi`.
        Terminal states, being absorbing, keep their mass, so the sum is always
        :math:`1/(1-\gamma)`.

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import chain_mdp
        >>> mdp = chain_mdp(gamma=0.9)
        >>> pi = np.full((5, 2), 0.5)
        >>> print(round(float(mdp.visitation(pi).sum()), 10))
        10.0
        >>> print(round(float(mdp.visitation(pi, normalized=True).sum()), 10))
        1.0
        """
        if not isinstance(normalized, (bool, np.bool_)):
            raise ValueError(f"normalized must be True or False; got {normalized!r}")
        pi = self._policy(pi)
        P_pi = anp.einsum("sa,sat->st", pi, self.P)
        rho = anp.linalg.solve(anp.transpose(self._I - self.gamma * P_pi), self.mu0)
        return (1.0 - self.gamma) * rho if normalized else rho

    def performance(self, pi):
        r"""Expected discounted return :math:`\eta(\pi)`.

        Parameters
        ----------
        pi : array_like, shape (S, A)

        Returns
        -------
        float (or an autograd box when traced)

        Notes
        -----
        .. math::

            \eta(\pi) = \mathbb E_{s_0 \sim \mu_0,\, a_t \sim \pi,\, s_{t+1} \sim P}
            \Big[\sum_{t \ge 0} \gamma^t R(s_t, a_t)\Big] = \mu_0^\top V_\pi
            = \sum_s \rho_\pi(s) \sum_a \pi(a|s) R(s, a)

        ([1]_, §2).

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        The lecture's one-state, two-action example, :math:`J = 100\,\pi[1] + \pi[2]`:

        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> print(round(float(two_action_bandit().performance(np.array([[0.5, 0.5]]))), 6))
        50.5
        """
        pi = self._policy(pi)
        return anp.dot(self.mu0, self._solve_value(pi)[1])

    def surrogate(self, pi, pi_new):
        r"""The local approximation :math:`L_\pi(\tilde\pi)` of :math:`\eta(\tilde\pi)`.

        Parameters
        ----------
        pi : array_like, shape (S, A)
            The current policy :math:`\pi` (whose visitation and advantages are used).
        pi_new : array_like, shape (S, A)
            The candidate :math:`\tilde\pi`.

        Returns
        -------
        float (or an autograd box when traced)

        Notes
        -----
        TRPO paper [1]_, eq. (3):

        .. math::

            L_\pi(\tilde\pi) = \eta(\pi) + \sum_s \rho_\pi(s) \sum_a \tilde\pi(a|s) A_\pi(s, a).

        It differs from the exact :math:`\eta(\tilde\pi)` of eq. (2) only in using
        :math:`\rho_\pi` for :math:`\rho_{\tilde\pi}`, so :math:`L_\pi(\pi) = \eta(\pi)`
        and, for a differentiable :math:`\pi_\theta`,
        :math:`\nabla_\theta L_{\pi_{\theta_0}}(\pi_\theta)|_{\theta_0} =
        \nabla_\theta \eta(\pi_\theta)|_{\theta_0}` (eq. (4)).

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> mdp = two_action_bandit()
        >>> pi, pi_new = np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])
        >>> print(round(float(mdp.surrogate(pi, pi_new)), 6))
        90.1
        >>> print(round(float(mdp.performance(pi_new)), 6))
        90.1
        """
        pi = self._policy(pi)
        pi_new = self._policy(pi_new, "pi_new")
        M, V = self._solve_value(pi)
        A = self._q_from_values(V) - V[:, None]
        rho = anp.linalg.solve(anp.transpose(M), self.mu0)
        return anp.dot(self.mu0, V) + anp.sum(rho[:, None] * pi_new * A)

    def _log_policy(self, log_pi, name: str = "log_pi"):
        """Validate a matrix of log-probabilities ``log pi(a|s)``; return ``(pi, log_pi)``.

        Entries are real or ``-inf`` (a zero probability); each row's probabilities sum to
        1 within ``_PROB_ATOL``. Traced (autograd) matrices are only shape-checked.
        """
        S, A = self.num_states, self.num_actions
        if isinstance(log_pi, (list, tuple)):
            log_pi = np.asarray(log_pi, dtype=np.float64)
        if isinstance(log_pi, np.ndarray):
            if log_pi.shape != (S, A) or log_pi.dtype.kind not in "biuf":
                raise ValueError(
                    f"{name} must be an (S, A) = ({S}, {A}) real matrix with "
                    f"{name}[s, a] = log pi(a|s); got {log_pi.dtype} of shape {log_pi.shape}"
                )
            log_pi = log_pi.astype(np.float64, copy=False)
            if np.any(np.isnan(log_pi)) or np.any(log_pi == np.inf):
                raise ValueError(
                    f"{name} contains NaN or +inf; pass log-probabilities (-inf for zero)"
                )
            pi = np.exp(log_pi)
            _check_distributions(
                pi, f"exp({name})", "a distribution over actions",
                f"normalise rows, e.g. {name} - logsumexp({name}, axis=1, keepdims=True)",
            )
            return pi, log_pi
        if getattr(log_pi, "shape", None) != (S, A):
            raise ValueError(
                f"{name} must have shape (S, A) = ({S}, {A}); got {getattr(log_pi, 'shape', None)}"
            )
        return anp.exp(log_pi), log_pi

    def _policies(self, pi, pi_new, log: bool):
        """``(pi, pi_new, log_pi, log_pi_new)`` from probabilities or, with ``log``,
        log-probabilities (then nothing below the smallest float is lost to underflow)."""
        if not isinstance(log, (bool, np.bool_)):
            raise ValueError(f"log must be True or False; got {log!r}")
        if log:
            pi, log_pi = self._log_policy(pi, "pi")
            pi_new, log_pi_new = self._log_policy(pi_new, "pi_new")
            return pi, pi_new, log_pi, log_pi_new
        pi = self._policy(pi)
        pi_new = self._policy(pi_new, "pi_new")
        # logs only on the support of pi (1.0 elsewhere, so a traced log has no infinite
        # derivative there); pi_new(a|s) = 0 < pi(a|s) gives log 0 = -inf, by definition
        support = pi > 0
        with np.errstate(divide="ignore"):
            log_pi_new = anp.log(anp.where(support, pi_new, 1.0))
        return pi, pi_new, anp.log(anp.where(support, pi, 1.0)), log_pi_new

    def _kl(self, pi, log_pi, log_pi_new):
        """Per-state KL(pi(.|s) || pi_new(.|s)) = sum_a pi (log pi - log pi_new), from the
        log-probabilities; terms with pi(a|s) = 0 contribute 0, and pi_new(a|s) = 0 < pi(a|s)
        gives +inf, by definition."""
        support = pi > 0  # a plain boolean array even when pi is traced
        diff = anp.where(support, log_pi, 0.0) - anp.where(support, log_pi_new, 0.0)
        return anp.sum(anp.where(support, pi * diff, 0.0), axis=1)

    def mean_kl(self, pi, pi_new, *, log: bool = False):
        r"""Visitation-weighted mean KL divergence :math:`\bar D_{KL}^{d_\pi}(\pi, \tilde\pi)`.

        Parameters
        ----------
        pi : array_like, shape (S, A)
            The old policy; its normalised visitation :math:`d_\pi` weights the states.
        pi_new : array_like, shape (S, A)
        log : bool, default False
            ``True``: ``pi`` and ``pi_new`` are log-probabilities :math:`\log\pi(a|s)`
            (``-inf`` for a zero probability). The divergence is then computed from them,
            so a probability too small for a float (a softmax of logits far apart) still
            gives its finite contribution instead of :math:`\log 0 = -\infty`.

        Returns
        -------
        float (or an autograd box when traced)

        Notes
        -----
        TRPO paper [1]_, eq. (11) with the state distribution normalised:

        .. math::

            \bar D_{KL}(\pi, \tilde\pi) = \sum_s d_\pi(s)\,
            D_{KL}\big(\pi(\cdot|s) \,\|\, \tilde\pi(\cdot|s)\big), \qquad
            D_{KL}(p \| q) = \sum_a p_a \log\frac{p_a}{q_a},

        with :math:`d_\pi = (1-\gamma)\rho_\pi`. Its Hessian in :math:`\tilde\theta` at
        :math:`\tilde\theta = \theta` is the Fisher matrix of :meth:`fisher`.

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> mdp = two_action_bandit()
        >>> pi = np.array([[0.5, 0.5]])
        >>> print(round(float(mdp.mean_kl(pi, pi)), 12))
        0.0
        >>> print(round(float(mdp.mean_kl(pi, np.array([[0.9, 0.1]]))), 6))
        0.510826

        A new probability :math:`e^{-800}` underflows to 0 as a float, but not as a log:

        >>> log_pi = np.log([[0.5, 0.5]])
        >>> log_new = np.array([[0.0, -800.0]])
        >>> print(float(mdp.mean_kl(np.exp(log_pi), np.exp(log_new))))
        inf
        >>> print(round(float(mdp.mean_kl(log_pi, log_new, log=True)), 6))
        399.306853
        """
        pi, _, log_pi, log_pi_new = self._policies(pi, pi_new, log)
        return anp.dot(self.visitation(pi, normalized=True), self._kl(pi, log_pi, log_pi_new))

    def max_kl(self, pi, pi_new, *, log: bool = False):
        r"""Maximal KL divergence :math:`D_{KL}^{\max}(\pi, \tilde\pi)` over states.

        Parameters
        ----------
        pi, pi_new : array_like, shape (S, A)
        log : bool, default False
            ``True``: ``pi`` and ``pi_new`` are log-probabilities, as in :meth:`mean_kl`.

        Returns
        -------
        float (or an autograd box when traced)

        Notes
        -----
        :math:`D_{KL}^{\max}(\pi, \tilde\pi) = \max_s D_{KL}(\pi(\cdot|s) \| \tilde\pi(\cdot|s))`,
        the divergence in TRPO's bound, [1]_ eq. (9).

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import chain_mdp
        >>> mdp = chain_mdp()
        >>> pi = np.full((5, 2), 0.5)
        >>> print(round(float(mdp.max_kl(pi, pi)), 12))
        0.0
        """
        pi, _, log_pi, log_pi_new = self._policies(pi, pi_new, log)
        return anp.max(self._kl(pi, log_pi, log_pi_new))

    def max_tv(self, pi, pi_new):
        r"""Maximal total-variation divergence :math:`D_{TV}^{\max}(\pi, \tilde\pi)`.

        Parameters
        ----------
        pi, pi_new : array_like, shape (S, A)

        Returns
        -------
        float (or an autograd box when traced)

        Notes
        -----
        [1]_, §3: :math:`D_{TV}(p \| q) = \tfrac12 \sum_a |p_a - q_a|` and
        :math:`D_{TV}^{\max}(\pi, \tilde\pi) = \max_s D_{TV}(\pi(\cdot|s) \| \tilde\pi(\cdot|s))`;
        Pinsker's inequality gives :math:`D_{TV}(p\|q)^2 \le D_{KL}(p\|q)` (eq. (8)).

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> mdp = two_action_bandit()
        >>> print(round(float(mdp.max_tv(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]]))), 6))
        0.4
        """
        pi = self._policy(pi)
        pi_new = self._policy(pi_new, "pi_new")
        return anp.max(0.5 * anp.sum(anp.abs(pi - pi_new), axis=1))

    def penalty_coefficient(self, pi):
        r"""TRPO's penalty :math:`C = 4\epsilon\gamma/(1-\gamma)^2`, :math:`\epsilon = \max|A_\pi|`.

        Parameters
        ----------
        pi : array_like, shape (S, A)

        Returns
        -------
        float (or an autograd box when traced)

        Notes
        -----
        [1]_, Theorem 1 and eq. (9), with :math:`\epsilon = \max_{s,a} |A_\pi(s, a)|`.

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> print(float(two_action_bandit().penalty_coefficient(np.array([[0.5, 0.5]]))))
        0.0
        """
        epsilon = anp.max(anp.abs(self.advantages(pi)))
        return 4.0 * epsilon * self.gamma / (1.0 - self.gamma) ** 2

    def lower_bound(self, pi, pi_new, *, divergence: str = "kl", log: bool = False):
        r"""TRPO's lower bound on :math:`\eta(\tilde\pi)` (paper Theorem 1).

        Parameters
        ----------
        pi, pi_new : array_like, shape (S, A)
        divergence : {"kl", "tv"}, default "kl"
            ``"kl"``: :math:`L_\pi(\tilde\pi) - C\, D_{KL}^{\max}(\pi, \tilde\pi)`, eq. (9).
            ``"tv"``: :math:`L_\pi(\tilde\pi) - C\, \alpha^2` with
            :math:`\alpha = D_{TV}^{\max}(\pi, \tilde\pi)`, Theorem 1.
        log : bool, default False
            ``True``: ``pi`` and ``pi_new`` are log-probabilities, as in :meth:`mean_kl`.

        Returns
        -------
        float (or an autograd box when traced)

        Notes
        -----
        Theorem 1 of [1]_: with :math:`\epsilon = \max_{s,a}|A_\pi(s, a)|`,

        .. math::

            \eta(\tilde\pi)
            \ge L_\pi(\tilde\pi) - \frac{4\epsilon\gamma}{(1-\gamma)^2}\,\alpha^2
            \ge L_\pi(\tilde\pi) - \frac{4\epsilon\gamma}{(1-\gamma)^2}\,
            D_{KL}^{\max}(\pi, \tilde\pi),

        the second form by :math:`D_{TV}^2 \le D_{KL}`. Maximising the right-hand side
        gives monotone improvement (Algorithm 1 of [1]_).

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.

        Examples
        --------
        >>> import numpy as np
        >>> from rl.mdp import chain_mdp
        >>> mdp = chain_mdp()
        >>> pi, pi_new = np.full((5, 2), 0.5), np.tile([0.6, 0.4], (5, 1))
        >>> bool(mdp.performance(pi_new) >= mdp.lower_bound(pi, pi_new))
        True
        """
        if divergence not in ("kl", "tv"):
            raise ValueError(f'divergence must be "kl" or "tv"; got {divergence!r}')
        pi, pi_new, log_pi, log_pi_new = self._policies(pi, pi_new, log)
        C = self.penalty_coefficient(pi)
        if divergence == "kl":
            return self.surrogate(pi, pi_new) - C * anp.max(self._kl(pi, log_pi, log_pi_new))
        return self.surrogate(pi, pi_new) - C * self.max_tv(pi, pi_new) ** 2

    def _policy_jacobian(self, policy_fn, theta):
        theta = as_vector(theta, "theta")
        if not callable(policy_fn):
            raise ValueError(
                f"policy_fn must be a callable theta -> (S, A) probabilities; got {policy_fn!r}"
            )
        pi = self._policy(np.asarray(policy_fn(theta)), "policy_fn(theta)")
        J = jacobian(policy_fn)(theta)  # J[s, a, i] = d pi(a|s) / d theta_i
        return theta, pi, np.reshape(J, (self.num_states, self.num_actions, theta.size))

    def policy_gradient(self, policy_fn, theta) -> np.ndarray:
        r"""Exact policy gradient :math:`\nabla_\theta \eta(\pi_\theta)` by the PG theorem.

        Parameters
        ----------
        policy_fn : callable
            ``theta -> (S, A)`` row-stochastic matrix, traceable by autograd (e.g.
            ``TabularSoftmax.probs``).
        theta : array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n,)

        Notes
        -----
        Policy-gradient theorem (Sutton et al. [1]_, Thm. 1), all-actions form:

        .. math::

            \nabla_\theta \eta(\pi_\theta) = \sum_s \rho_\pi(s) \sum_a
            \nabla_\theta \pi_\theta(a|s)\, Q_\pi(s, a),

        with the unnormalised :math:`\rho_\pi` of :meth:`visitation` and the Jacobian of
        ``policy_fn`` by autograd. (:math:`Q_\pi` may be replaced by :math:`A_\pi` since
        :math:`\sum_a \nabla\pi(a|s) = 0`.)

        References
        ----------
        .. [1] R. S. Sutton, D. McAllester, S. Singh, Y. Mansour. "Policy Gradient Methods
           for Reinforcement Learning with Function Approximation." NIPS 2000.

        Examples
        --------
        The lecture's example: :math:`J'(\theta) = 99\, e^\theta / (1 + e^\theta)^2`.

        >>> import autograd.numpy as anp
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> def policy(theta):
        ...     p = 1.0 / (1.0 + anp.exp(-theta[0]))
        ...     return anp.reshape(anp.stack([p, 1.0 - p]), (1, 2))
        >>> print(np.round(two_action_bandit().policy_gradient(policy, np.zeros(1)), 6))
        [24.75]
        """
        theta, pi, J = self._policy_jacobian(policy_fn, theta)
        rho = self.visitation(pi)
        Q = self.q_values(pi)
        return np.einsum("sa,san->n", rho[:, None] * Q, J)

    def fisher(self, policy_fn, theta) -> np.ndarray:
        r"""Exact Fisher matrix of the policy under its normalised visitation.

        Parameters
        ----------
        policy_fn : callable
            ``theta -> (S, A)`` row-stochastic matrix, traceable by autograd.
        theta : array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n, n)
            Symmetric positive semidefinite.

        Notes
        -----
        .. math::

            F(\theta) = \sum_s d_\pi(s) \sum_a \pi(a|s)\, \nabla_\theta \log\pi(a|s)\,
            \nabla_\theta \log\pi(a|s)^\top
            = \sum_s d_\pi(s) \sum_a \frac{\nabla\pi(a|s)\, \nabla\pi(a|s)^\top}{\pi(a|s)},

        with :math:`d_\pi = (1-\gamma)\rho_\pi` (actions with :math:`\pi(a|s) = 0`
        contribute nothing). It equals the Hessian
        :math:`\nabla^2_{\tilde\theta} \bar D_{KL}(\pi_\theta, \pi_{\tilde\theta})` at
        :math:`\tilde\theta = \theta` (TRPO paper [1]_, App. C; Kakade [2]_).

        References
        ----------
        .. [1] J. Schulman et al. "Trust Region Policy Optimization." ICML 2015.
        .. [2] S. Kakade. "A Natural Policy Gradient." NIPS 2001.

        Examples
        --------
        The lecture's Fisher scalar :math:`F = e^\theta/(1+e^\theta)^2`, so the natural
        gradient :math:`J'(\theta)/F(\theta)` is 99 for every :math:`\theta`:

        >>> import autograd.numpy as anp
        >>> import numpy as np
        >>> from rl.mdp import two_action_bandit
        >>> def policy(theta):
        ...     p = 1.0 / (1.0 + anp.exp(-theta[0]))
        ...     return anp.reshape(anp.stack([p, 1.0 - p]), (1, 2))
        >>> mdp, theta = two_action_bandit(), np.array([1.5])
        >>> F = mdp.fisher(policy, theta)
        >>> g = mdp.policy_gradient(policy, theta)
        >>> print(np.round(F, 6), np.round(np.linalg.solve(F, g), 6))
        [[0.149146]] [99.]
        """
        theta, pi, J = self._policy_jacobian(policy_fn, theta)
        d = self.visitation(pi, normalized=True)
        support = pi > 0.0
        # grad pi / sqrt(pi) = sqrt(pi) grad log pi: no 1/pi, which overflows for a
        # subnormal probability (whose gradient is as small, so the term is ~pi)
        G = np.where(support[..., None], J / np.sqrt(np.where(support, pi, 1.0))[..., None], 0.0)
        F = np.einsum("s,san,sam->nm", d, G, G)
        return 0.5 * (F + F.T)

    def optimal_policy(self, *, maxiter: int = 1000) -> np.ndarray:
        r"""A deterministic optimal policy, by policy iteration.

        Parameters
        ----------
        maxiter : int, default 1000
            Maximum number of improvement steps (policy iteration terminates in finitely
            many; the bound guards against a defective model).

        Returns
        -------
        ndarray, shape (S, A)
            One-hot rows: :math:`\pi^*(a|s) = 1` for :math:`a \in \arg\max_a Q_{\pi^*}(s, a)`.

        Notes
        -----
        Howard's policy iteration ([1]_, §6.4): evaluate :math:`V_\pi` by a linear solve,
        improve greedily, keep the current action on ties (so round-off cannot cycle), stop
        when the policy is stable; then :math:`V_{\pi^*}` satisfies the Bellman optimality
        equation :math:`V^* = \max_a [R + \gamma P V^*]`.

        References
        ----------
        .. [1] M. L. Puterman. *Markov Decision Processes*. Wiley, 1994.

        Examples
        --------
        >>> from rl.mdp import two_action_bandit
        >>> print(two_action_bandit().optimal_policy())
        [[1. 0.]]
        """
        maxiter = positive_int(maxiter, "maxiter")
        S, A = self.num_states, self.num_actions
        action = np.zeros(S, dtype=int)
        scale = (np.max(np.abs(self.R)) + 1.0) / (1.0 - self.gamma)
        tol = 64.0 * S * np.finfo(float).eps * scale * (1.0 + self.gamma) / (1.0 - self.gamma)
        for _ in range(maxiter):
            pi = np.eye(A)[action]
            Q = self.q_values(pi)
            best = np.argmax(Q, axis=1)
            current = Q[np.arange(S), action]
            improve = Q[np.arange(S), best] > current + tol
            if not np.any(improve):
                return pi
            action = np.where(improve, best, action)
        raise RuntimeError(f"policy iteration did not stabilise in maxiter={maxiter} steps")


# ----------------------------------------------------------------------------- built-ins
def random_mdp(num_states, num_actions, gamma=0.9, *, seed, horizon=None) -> TabularMDP:
    r"""A seeded random MDP with full support.

    Parameters
    ----------
    num_states, num_actions : int
    gamma : float, default 0.9
    seed : int >= 0 or numpy.random.Generator
        Same seed, same MDP.
    horizon : int, optional
        Episode truncation for the ``Env`` interface.

    Returns
    -------
    TabularMDP

    Notes
    -----
    Each row :math:`P(\cdot|s, a)` and :math:`\mu_0` are drawn from the flat Dirichlet
    distribution on the simplex; rewards :math:`R(s, a) \sim U[-1, 1]`.

    Examples
    --------
    >>> import numpy as np
    >>> from rl.mdp import random_mdp
    >>> mdp = random_mdp(4, 3, seed=0)
    >>> mdp.num_states, mdp.num_actions
    (4, 3)
    >>> bool(np.allclose(mdp.P.sum(axis=2), 1.0))
    True
    """
    S = positive_int(num_states, "num_states")
    A = positive_int(num_actions, "num_actions")
    rng = as_generator(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.uniform(-1.0, 1.0, size=(S, A))
    mu0 = rng.dirichlet(np.ones(S))
    return TabularMDP(P, R, gamma, mu0, horizon=horizon)


def chain_mdp(
    n=5, *, slip=0.2, small_reward=2.0, large_reward=10.0, gamma=0.9, horizon=None
) -> TabularMDP:
    r"""The n-chain: a small reward for going back to the start, a large one at the far end.

    Parameters
    ----------
    n : int, default 5
        Number of states, ``0`` (start) to ``n - 1`` (far end).
    slip : float, default 0.2
        Probability that the other action's effect happens instead.
    small_reward, large_reward : float, default 2.0 and 10.0
    gamma : float, default 0.9
    horizon : int, optional

    Returns
    -------
    TabularMDP

    Notes
    -----
    Strens's chain [1]_ (Gym's ``NChain-v0``): action 0 ("forward") moves
    :math:`s \to \min(s + 1, n - 1)` with reward 0, except at the end, where it stays and
    earns ``large_reward``; action 1 ("back") returns to state 0 and earns
    ``small_reward``. With probability ``slip`` the effect of the other action happens.
    ``R[s, a]`` is the expected reward over the slip. Going back is a local optimum;
    going forward is optimal for the default :math:`\gamma`.

    References
    ----------
    .. [1] M. Strens. "A Bayesian Framework for Reinforcement Learning." ICML 2000.

    Examples
    --------
    >>> import numpy as np
    >>> from rl.mdp import chain_mdp
    >>> mdp = chain_mdp()
    >>> print(mdp.optimal_policy()[:, 0])
    [1. 1. 1. 1. 1.]
    """
    n = positive_int(n, "n")
    slip = probability(slip, "slip")
    small_reward = finite_real(small_reward, "small_reward")
    large_reward = finite_real(large_reward, "large_reward")
    P = np.zeros((n, 2, n))
    R = np.zeros((n, 2))
    for s in range(n):
        forward, back = min(s + 1, n - 1), 0
        r_forward = large_reward if s == n - 1 else 0.0
        for a, (p_forward, p_back) in enumerate([(1.0 - slip, slip), (slip, 1.0 - slip)]):
            P[s, a, forward] += p_forward
            P[s, a, back] += p_back
            R[s, a] = p_forward * r_forward + p_back * small_reward
    mu0 = np.eye(n)[0]
    return TabularMDP(P, R, gamma, mu0, horizon=horizon)


_DEFAULT_LAYOUT = ("S...", ".#.#", "...#", "#..G")


def gridworld(
    layout=_DEFAULT_LAYOUT, *, slip=0.1, goal_reward=1.0, step_reward=0.0, gamma=0.95, horizon=None
) -> TabularMDP:
    r"""A small gridworld with walls, slippery moves and a terminal goal.

    Parameters
    ----------
    layout : sequence of str, default 4x4 ``("S...", ".#.#", "...#", "#..G")``
        Rows of equal length: ``S`` start (several: uniform start), ``G`` goal
        (terminal), ``#`` wall, ``.`` free.
    slip : float, default 0.1
        Probability that a uniformly random action replaces the chosen one.
    goal_reward : float, default 1.0
        Reward on entering a goal.
    step_reward : float, default 0.0
        Reward added on every step (e.g. ``-0.01`` for a cost of time).
    gamma : float, default 0.95
    horizon : int, optional

    Returns
    -------
    TabularMDP
        States are the non-wall cells in row-major order; actions are 0 up, 1 right,
        2 down, 3 left. A move into a wall or off the grid leaves the agent in place.

    Notes
    -----
    :math:`R(s, a) = \text{step\_reward} + \text{goal\_reward}\cdot P(s' \in G \mid s, a)`,
    the expected reward of the move; goals are absorbing with zero reward.

    Examples
    --------
    >>> import numpy as np
    >>> from rl.mdp import gridworld
    >>> mdp = gridworld()
    >>> mdp.num_states, mdp.num_actions, mdp.terminal_states
    (12, 4, (11,))
    >>> pi = mdp.optimal_policy()
    >>> print(round(float(mdp.performance(pi)), 4))
    0.751
    """
    if isinstance(layout, str) or not all(isinstance(row, str) for row in layout):
        raise ValueError(f"layout must be a sequence of strings (rows); got {layout!r}")
    rows = [row for row in layout]
    if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) == 0:
        raise ValueError(f"layout rows must be non-empty and of equal length; got {rows!r}")
    if set("".join(rows)) - set("S.#G"):
        raise ValueError(f"layout may contain only 'S', '.', '#', 'G'; got {rows!r}")
    slip = probability(slip, "slip")
    goal_reward = finite_real(goal_reward, "goal_reward")
    step_reward = finite_real(step_reward, "step_reward")
    cells = [(i, j) for i, row in enumerate(rows) for j, c in enumerate(row) if c != "#"]
    index = {cell: k for k, cell in enumerate(cells)}
    starts = [index[c] for c in cells if rows[c[0]][c[1]] == "S"]
    goals = [index[c] for c in cells if rows[c[0]][c[1]] == "G"]
    if not starts or not goals:
        raise ValueError("layout needs at least one start 'S' and one goal 'G'")
    S, A = len(cells), 4
    moves = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # up, right, down, left
    P = np.zeros((S, A, S))
    for (i, j), s in index.items():
        for a in range(A):
            for b, (di, dj) in enumerate(moves):
                p = (1.0 - slip) * (a == b) + slip / A
                target = index.get((i + di, j + dj), s)  # walls and edges: stay
                P[s, a, target] += p
    is_goal = np.zeros(S)
    is_goal[goals] = 1.0
    R = step_reward + goal_reward * (P @ is_goal)
    mu0 = np.zeros(S)
    mu0[starts] = 1.0 / len(starts)
    return TabularMDP(P, R, gamma, mu0, horizon=horizon, terminal_states=goals)


def two_action_bandit() -> TabularMDP:
    r"""The natural-gradient lecture's one-state, two-action example.

    Returns
    -------
    TabularMDP
        One state, actions with rewards 100 and 1, :math:`\gamma = 0`, ``horizon=1``.

    Notes
    -----
    With :math:`\gamma = 0` the objective is the one-step expected reward, exactly the
    lecture's :math:`J(\theta) = 100\,\pi_\theta[1] + 1\cdot\pi_\theta[2]`; then
    :math:`\rho_\pi = d_\pi = 1` and each ``Env`` episode is one pull (``horizon=1``).
    For :math:`\pi_\theta[1] = \sigma(\theta)` the gradient is
    :math:`J'(\theta) = 99\,\sigma(\theta)(1-\sigma(\theta))` and the Fisher scalar
    :math:`F(\theta) = \sigma(\theta)(1-\sigma(\theta))`, so the natural gradient is the
    constant 99 while the vanilla gradient vanishes as :math:`\theta \to \infty` [1]_.

    References
    ----------
    .. [1] L. Janson, S. Kakade. "Trust Region Policy Optimization & the Natural Policy
       Gradient." CS/Stat 184 lecture notes, Harvard, Fall 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from rl.mdp import two_action_bandit
    >>> mdp = two_action_bandit()
    >>> print(round(float(mdp.performance(np.array([[0.5, 0.5]]))), 6))
    50.5
    """
    P = np.ones((1, 2, 1))
    R = np.array([[100.0, 1.0]])
    return TabularMDP(P, R, 0.0, np.ones(1), horizon=1)
