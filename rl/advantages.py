"""Advantage estimation: discounted sums, reward-to-go, GAE(γ, λ), baselines and value functions.

Arrays are time-major, ``(T, N)`` for ``T`` steps of ``N`` parallel environments, as in
:class:`rl.sampling.Batch`. An episode ends at step ``t`` when ``terminated[t]`` (a true
terminal state: nothing follows, the value of the next state is 0) or ``truncated[t]``
(a time limit: the episode was cut, so the return is completed with the value estimate
of the true final observation). The rollout's last step is cut the same way.

The baselines share one interface -- ``predict(obs, timesteps=None)``,
``fit(obs, targets, timesteps=None) -> dict`` of namespaced diagnostics,
``state_dict()`` / ``load_state_dict()``:

- :class:`ZeroBaseline` (no baseline), :class:`ConstantBaseline` (the mean return),
- :class:`LinearFeatureBaseline` (ridge regression on polynomial features of the
  observation and time, as in rllab),
- :class:`MLPValueFunction`, a neural network fitted by the GAE paper's trust-region
  Gauss-Newton step (the natural step of :mod:`trustregion` with a Gaussian output
  Fisher), by L-BFGS, or by Adam; :class:`ConvValueFunction`, the same on images with
  the convolutional torso of :mod:`rl.conv`.
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import scipy.linalg
import scipy.signal

from rl.conv import NATURE_CONV, ConvNet
from rl.networks import MLP, SquaredErrorKernel
from rl.optimizers import Adam
from rl.spaces import ObservationLayout, count_rows, leaf_arrays, map_leaves
from rl.validation import as_generator, checked_hidden_sizes, finite_real, positive_int
from rl.value_fitting import (
    fit_adam,
    fit_lbfgs,
    fit_trust_region,
    half_mse_and_gradient,
    network_args,
)

__all__ = [
    "discounted_cumsum",
    "reward_to_go",
    "gae",
    "normalize_advantages",
    "explained_variance",
    "Baseline",
    "ZeroBaseline",
    "ConstantBaseline",
    "LinearFeatureBaseline",
    "MLPValueFunction",
    "ConvValueFunction",
    "make_baseline",
    "compute_advantages",
]


# ----------------------------------------------------------------------------- validation


def _discount(value, name: str) -> float:
    """``value`` as a float in ``[0, 1]``, or ``ValueError`` naming ``name``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a real number in [0, 1]; got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}")
    return value


def _real_array(x, name: str, *, shape=None, min_ndim: int = 1) -> np.ndarray:
    """``x`` as a finite float64 array (optionally of a given shape), or ``ValueError``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be an array of real numbers; got {type(x).__name__}"
        ) from exc
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s) (time first); got shape {arr.shape}"
        )
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(
            f"{name} must have the same shape as rewards, {tuple(shape)}; got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return arr


def _mask(x, name: str, shape) -> np.ndarray:
    """``x`` as a boolean array of ``shape``, accepting bools or exact 0/1 values."""
    arr = np.asarray(x)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} must have the same shape as rewards, {tuple(shape)}; got shape {arr.shape}"
        )
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "biuf" or not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must be a boolean array (or 0/1 values); got dtype {arr.dtype}")
    return arr.astype(bool)


def _all_equal(x: np.ndarray) -> bool:
    """True when every entry equals the first: the spread is exactly zero."""
    return bool(np.all(x == x.flat[0]))


def _scaled_deviations(x: np.ndarray) -> tuple[np.ndarray, float]:
    """``(x - mean) / m`` and ``m = max |x - mean|`` (``m > 0`` unless all entries are equal).

    Squaring the scaled deviations cannot underflow or overflow, so the population standard
    deviation is ``m * sqrt(mean(z**2))`` even for entries like 1e-200 (the scaling of
    LAPACK's ``dnrm2``).
    """
    centred = x - np.mean(x)
    m = float(np.max(np.abs(centred)))
    return (centred / m if m > 0.0 else centred), m


def _observations(obs, name: str = "obs") -> np.ndarray:
    """Observations as a finite 2-D float64 array ``(N, d)``; 1-D input is ``(N, 1)``."""
    arr = _real_array(obs, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (N, obs_dim) or a 1-D array of N scalars; got shape "
            f"{arr.shape} (flatten leading axes with .reshape(-1, obs_dim))"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must contain at least one observation; got shape {arr.shape}")
    return arr


def _num_observations(obs) -> int:
    """The number of observations in a batch: rows of an array (checked as by
    :func:`_observations`), or of the leaves of a dict / tuple of arrays."""
    if isinstance(obs, (dict, tuple)):
        return count_rows(obs)
    return _observations(obs).shape[0]


def _checked_layout(layout):
    if layout is not None and not isinstance(layout, ObservationLayout):
        raise ValueError(f"observation_layout must be an rl.spaces.ObservationLayout or None; "
                         f"got {type(layout).__name__}")
    return layout


def _encoded(layout, obs, normalizer) -> np.ndarray:
    """The layout's flat encoding of a batch, its Box columns normalised by ``normalizer``
    (the policy's, kept over those columns:
    :meth:`rl.policies.MultiInputPolicy.normalizer_input`)."""
    x = layout.encode(obs)
    if x.shape[0] == 0:
        raise ValueError("obs must contain at least one observation")
    if not np.all(np.isfinite(x)):
        raise ValueError("obs contains NaN or inf; pass finite values")
    if normalizer is not None:
        cols = layout.box_columns
        x[:, cols] = normalizer.normalize(x[:, cols])
    return x


def _targets(targets, n: int) -> np.ndarray:
    y = _real_array(targets, "targets")
    if y.shape != (n,):
        raise ValueError(
            f"targets must be a 1-D array with one value per observation, shape ({n},); got "
            f"shape {y.shape}"
        )
    return y


def _timesteps(timesteps, n: int) -> np.ndarray | None:
    if timesteps is None:
        return None
    t = _real_array(timesteps, "timesteps")
    if t.shape != (n,):
        raise ValueError(
            f"timesteps must be a 1-D array with one step index per observation, shape ({n},); "
            f"got shape {t.shape}"
        )
    if np.any(t < 0):
        raise ValueError("timesteps must be non-negative step indices within each episode")
    return t


# ------------------------------------------------------------------------ discounted sums


def discounted_cumsum(x, gamma, axis=0):
    """Discounted cumulative sum from each index to the end: ``y_t = sum_k gamma^k x_{t+k}``.

    Parameters
    ----------
    x : array_like
        Finite real values; summed along ``axis``.
    gamma : float
        Discount factor in ``[0, 1]``.
    axis : int, default 0
        The time axis.

    Returns
    -------
    y : ndarray, float64, same shape as ``x``
        ``y_t = x_t + gamma y_{t+1}`` with ``y_{T-1} = x_{T-1}``.

    Raises
    ------
    ValueError
        If ``gamma`` is outside ``[0, 1]`` or ``x`` is not finite.

    Notes
    -----
    The recursion :math:`y_t = x_t + \\gamma y_{t+1}` is a first-order IIR filter run
    backwards in time: reversing the axis, :math:`y = \\text{lfilter}([1], [1, -\\gamma], x)`
    computes :math:`y_t = x_t + \\gamma y_{t-1}` in compiled code along every other axis
    at once. It has no episode boundaries; :func:`reward_to_go` and :func:`gae` handle
    those.

    References
    ----------
    .. [1] R. S. Sutton and A. G. Barto, *Reinforcement Learning: An Introduction*,
       2nd ed., MIT Press, 2018, eq. (3.8).

    Examples
    --------
    >>> discounted_cumsum([1.0, 1.0, 1.0], 0.5).tolist()
    [1.75, 1.5, 1.0]
    """
    gamma = _discount(gamma, "gamma")
    x = _real_array(x, "x")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must index a dimension of x (ndim {x.ndim}); got {axis}")
    if x.shape[axis] == 0:
        return x.copy()
    reversed_x = np.flip(x, axis=axis)
    y = scipy.signal.lfilter([1.0], [1.0, -gamma], reversed_x, axis=axis)
    return np.ascontiguousarray(np.flip(y, axis=axis))


def reward_to_go(rewards, dones, gamma, last_values=None):
    """Discounted reward-to-go of every step, restarted at every episode end.

    Parameters
    ----------
    rewards : array_like, shape (T, N) or (T,)
        ``r_t``, time first.
    dones : array_like of bool, same shape
        True where an episode ends at step ``t`` (terminated or truncated).
    gamma : float
        Discount factor in ``[0, 1]``.
    last_values : array_like, shape (N,) or scalar, optional
        Value of the state after the rollout's last step, added (discounted) to the steps
        of the episode still running at ``T - 1``. Default 0.

    Returns
    -------
    G : ndarray, float64, same shape as ``rewards``
        ``G_t = r_t + gamma (1 - done_t) G_{t+1}``, ``G_T = last_values``.

    Raises
    ------
    ValueError
        On a shape mismatch, non-finite values, or ``gamma`` outside ``[0, 1]``.

    Notes
    -----
    Causality: the action at ``t`` cannot influence earlier rewards, so the policy
    gradient may weight :math:`\\nabla \\log \\pi(a_t|s_t)` by the rewards from ``t`` on
    only [1]_,

    .. math:: G_t = \\sum_{k=t}^{e(t)} \\gamma^{k-t} r_k \\;(+\\, \\gamma^{T-t} V_T
              \\text{ if the episode is still running at } T - 1),

    where :math:`e(t)` is the last step of the episode containing ``t``. The backward
    recursion above runs once over ``T`` with each step vectorised over the ``N``
    columns; ``done_t`` cuts the sum, so a reward never leaks into another episode.
    Every episode end is treated as a zero-value end: to bootstrap truncated episodes
    from ``V(final obs)``, use :func:`gae` with ``lam=1`` (whose advantages plus the
    values are exactly that bootstrapped return).

    References
    ----------
    .. [1] R. J. Williams, "Simple statistical gradient-following algorithms for
       connectionist reinforcement learning", Machine Learning 8, 229-256, 1992.

    Examples
    --------
    Two episodes in one column, the first ending at ``t = 1``:

    >>> reward_to_go([1.0, 1.0, 1.0, 1.0], [False, True, False, False], 0.5).tolist()
    [1.5, 1.0, 1.5, 1.0]
    """
    gamma = _discount(gamma, "gamma")
    r = _real_array(rewards, "rewards")
    done = _mask(dones, "dones", r.shape)
    G_next = np.zeros(r.shape[1:])
    if last_values is not None:
        last = _real_array(last_values, "last_values", min_ndim=0)
        if last.shape not in ((), r.shape[1:]):
            raise ValueError(
                f"last_values must be a scalar or have shape {r.shape[1:]} (one value per "
                f"environment); got shape {last.shape}"
            )
        G_next = G_next + last
    G = np.empty_like(r)
    for t in range(r.shape[0] - 1, -1, -1):
        G_next = r[t] + gamma * np.where(done[t], 0.0, G_next)
        G[t] = G_next
    return G


def gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Generalized advantage estimates GAE(γ, λ) over ``(T, N)`` rollouts.

    Parameters
    ----------
    rewards : array_like, shape (T, N) or (T,)
        ``r_t``.
    values : array_like, same shape
        ``V(s_t)``.
    next_values : array_like, same shape
        ``V(s'_t)`` for the observation after step ``t``: the true final observation at a
        truncated step (the bootstrap), the next observation at the rollout's last step.
        Must be finite everywhere; where ``terminated`` the value is not used (pass any
        finite number, e.g. 0, not inf or NaN).
    terminated, truncated : array_like of bool, same shape
        Episode ends: a terminal state (no bootstrap) or a cut (bootstrap from
        ``next_values``). Where both are set, ``terminated`` wins.
    gamma : float
        Discount factor in ``[0, 1]``.
    lam : float
        GAE parameter λ in ``[0, 1]``: 0 gives the TD residual, 1 the Monte Carlo
        return minus ``V``.

    Returns
    -------
    advantages : ndarray, float64, same shape as ``rewards``

    Raises
    ------
    ValueError
        If an array's shape differs from ``rewards``, a value is not finite, or
        ``gamma`` or ``lam`` lies outside ``[0, 1]`` (the message names the argument).

    Notes
    -----
    GAE paper eqs. (10) and (16) [1]_, with episode ends:

    .. math::

        \\delta_t &= r_t + \\gamma\\,(1 - \\mathrm{term}_t)\\, V(s'_t) - V(s_t), \\\\
        \\hat A_t &= \\delta_t + \\gamma\\lambda\\,(1 - \\mathrm{done}_t)\\, \\hat A_{t+1},
        \\qquad \\hat A_T = 0,

    with :math:`\\mathrm{done}_t = \\mathrm{term}_t \\lor \\mathrm{trunc}_t`, so
    :math:`\\hat A_t = \\sum_{l} (\\gamma\\lambda)^l \\delta_{t+l}` summed to the end of
    the episode or rollout. λ = 0 gives :math:`\\hat A_t = \\delta_t` (eq. 17); λ = 1
    gives :math:`\\sum_l \\gamma^l r_{t+l} + \\gamma^{L} V(s_{\\mathrm{end}}) - V(s_t)`,
    the bootstrapped return minus the baseline (eq. 18).

    The backward recursion is one pass over ``T`` with every step vectorised over the
    ``N`` environments (O(T N) work, the rounding of a length-T recursion). ``lfilter``
    cannot be used across episode ends because the coefficient ``gamma lam (1 - done_t)``
    varies with ``t``; per-segment filtering would cost one call per episode.

    References
    ----------
    .. [1] J. Schulman, P. Moritz, S. Levine, M. Jordan and P. Abbeel,
       "High-dimensional continuous control using generalized advantage estimation",
       ICLR 2016.

    Examples
    --------
    With ``lam = 0`` the estimate is the TD residual:

    >>> r, V, V_next = [1.0, 1.0], [0.5, 0.5], [0.5, 2.0]
    >>> no = [False, False]
    >>> gae(r, V, V_next, no, no, gamma=0.9, lam=0.0).round(6).tolist()
    [0.95, 2.3]
    """
    gamma = _discount(gamma, "gamma")
    lam = _discount(lam, "lam")
    r = _real_array(rewards, "rewards")
    V = _real_array(values, "values", shape=r.shape)
    V_next = _real_array(next_values, "next_values", shape=r.shape)
    term = _mask(terminated, "terminated", r.shape)
    trunc = _mask(truncated, "truncated", r.shape)

    delta = r + gamma * np.where(term, 0.0, V_next) - V  # eq. (10), no bootstrap at a terminal
    carry = np.where(term | trunc, 0.0, gamma * lam)  # the sum stops at every episode end
    A = np.empty_like(delta)
    A_next = np.zeros(r.shape[1:])
    for t in range(r.shape[0] - 1, -1, -1):  # eq. (16) as a backward recursion
        A_next = delta[t] + carry[t] * A_next
        A[t] = A_next
    return A


def normalize_advantages(a):
    """Shift and scale advantages to zero mean and unit standard deviation.

    Parameters
    ----------
    a : array_like
        Finite advantages of any shape, at least one entry.

    Returns
    -------
    ndarray, float64, same shape
        ``(a - mean(a)) / std(a)`` over all entries. When every entry is equal the
        standard deviation is zero and the centred values -- all zeros -- are returned
        unscaled (no ``+ eps`` in the denominator, which would only hide this case).

    Raises
    ------
    ValueError
        If ``a`` is empty or not finite.

    Notes
    -----
    Subtracting a constant from every advantage changes the expected policy gradient
    only by :math:`c\\,\\mathbb{E}[\\nabla\\log\\pi] = 0`, and dividing by a positive
    constant only rescales it; the normalised estimate has the same direction in
    expectation and a scale independent of the reward units, which is what fixed step
    sizes (VPG, PPO) need. The standard deviation is the population one (``ddof=0``).

    References
    ----------
    .. [1] S. Huang et al., "The 37 implementation details of proximal policy
       optimization", ICLR Blog Track, 2022 (advantage normalisation).

    Examples
    --------
    >>> normalize_advantages([1.0, 2.0, 3.0]).round(6).tolist()
    [-1.224745, 0.0, 1.224745]
    >>> normalize_advantages([5.0, 5.0]).tolist()
    [0.0, 0.0]
    """
    a = _real_array(a, "a", min_ndim=0)
    if a.size == 0:
        raise ValueError("a must contain at least one advantage; got an empty array")
    if _all_equal(a):
        return np.zeros_like(a)
    z, _ = _scaled_deviations(a)  # (a - mean) / max|a - mean|: its square cannot underflow
    return z / np.sqrt(np.mean(z**2))


def explained_variance(pred, target):
    """Fraction of the variance of ``target`` that ``pred`` explains: ``1 - Var[y - ŷ] / Var[y]``.

    Parameters
    ----------
    pred : array_like
        Predictions ``ŷ``.
    target : array_like, same shape
        Targets ``y``.

    Returns
    -------
    float
        1 for a perfect prediction (up to a constant offset), 0 for a prediction no
        better than a constant, negative when worse. If ``Var[y] = 0`` (every target
        equal) there is no variance to explain and 0.0 is returned, the value of the
        best constant predictor -- never NaN, never a misleading 1.

    Raises
    ------
    ValueError
        If the shapes differ, an array is empty or a value is not finite.

    Notes
    -----
    .. math:: \\mathrm{EV} = 1 - \\frac{\\mathrm{Var}[y - \\hat y]}{\\mathrm{Var}[y]}

    The usual diagnostic of a value function in policy optimisation [1]_; because it
    uses the variance of the residual it ignores a constant bias in ``ŷ``.

    References
    ----------
    .. [1] J. Schulman, P. Moritz, S. Levine, M. Jordan and P. Abbeel,
       "High-dimensional continuous control using generalized advantage estimation",
       ICLR 2016, §6.

    Examples
    --------
    >>> y = [1.0, 2.0, 3.0, 4.0]
    >>> explained_variance(y, y)
    1.0
    >>> explained_variance([2.5, 2.5, 2.5, 2.5], y)
    0.0
    """
    y = _real_array(target, "target", min_ndim=0).reshape(-1)
    p = _real_array(pred, "pred", min_ndim=0)
    if p.shape != np.shape(target):
        raise ValueError(
            f"pred must have the same shape as target, {np.shape(target)}; got shape {p.shape}"
        )
    p = p.reshape(-1)
    if y.size == 0:
        raise ValueError("target must contain at least one value; got an empty array")
    if _all_equal(y):
        return 0.0
    z_y, m_y = _scaled_deviations(y)
    z_r, m_r = _scaled_deviations(y - p)
    # Var[y - p] / Var[y] from scaled deviations, so tiny or huge values cannot underflow
    ratio = (m_r / m_y) ** 2 * (np.mean(z_r**2) / np.mean(z_y**2)) if m_r > 0.0 else 0.0
    return float(1.0 - ratio)


# ------------------------------------------------------------------------------ baselines


def _fit_diagnostics(before, after, y, start, **extra) -> dict:
    """The diagnostics every ``fit`` returns, in namespaced keys."""
    info = {
        "value/loss_before": float(np.mean((before - y) ** 2)),
        "value/loss": float(np.mean((after - y) ** 2)),
        "value/explained_variance_before": explained_variance(before, y),
        "value/explained_variance": explained_variance(after, y),
    }
    info.update({f"value/{k}": v for k, v in extra.items()})
    info["value/fit_time_s"] = time.perf_counter() - start
    return info


def _check_state(state, cls_name: str, keys) -> None:
    if not isinstance(state, dict):
        raise ValueError(
            f"state must be a dict from {cls_name}.state_dict(); got {type(state).__name__}"
        )
    if state.get("type") != cls_name:
        raise ValueError(
            f"state was saved by {state.get('type')!r}, not {cls_name!r}; load it into a "
            f"{state.get('type')} instead"
        )
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(
            f"state is missing the entries {missing}; pass {cls_name}.state_dict() output"
        )


def _state_real(state, key: str) -> float:
    """``state[key]`` as a finite float, or ``ValueError`` naming the entry."""
    return finite_real(state[key], f"state[{key!r}]")


class Baseline:
    """Interface shared by the baselines: a state-value estimate ``b(s) ≈ V^π(s)``.

    Any function of the state alone leaves the policy gradient unbiased,
    :math:`\\mathbb{E}[\\nabla\\log\\pi(a|s)\\, b(s)] = 0`, and a good estimate of
    :math:`V^\\pi` reduces its variance [1]_.

    Methods
    -------
    predict(obs, timesteps=None) -> ndarray of shape (N,)
    fit(obs, targets, timesteps=None) -> dict
        Regress on ``targets``; the dict holds ``"value/loss_before"``, ``"value/loss"``
        (mean squared error before and after), ``"value/explained_variance_before"``,
        ``"value/explained_variance"`` (:func:`explained_variance`),
        ``"value/fit_time_s"`` and method-specific entries.
    state_dict() -> dict, load_state_dict(state)

    References
    ----------
    .. [1] E. Greensmith, P. L. Bartlett and J. Baxter, "Variance reduction techniques
       for gradient estimates in reinforcement learning", JMLR 5, 1471-1530, 2004.
    """

    def predict(self, obs, timesteps=None) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def fit(self, obs, targets, timesteps=None) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def state_dict(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def load_state_dict(self, state) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ZeroBaseline(Baseline):
    """No baseline: ``b(s) = 0``, so GAE(λ = 1) is the plain discounted reward-to-go.

    Examples
    --------
    >>> b = ZeroBaseline()
    >>> b.predict(np.ones((3, 2))).tolist()
    [0.0, 0.0, 0.0]
    >>> b.fit(np.ones((3, 2)), [1.0, 2.0, 3.0])["value/explained_variance"]
    0.0
    """

    def __repr__(self) -> str:
        return "ZeroBaseline()"

    def predict(self, obs, timesteps=None) -> np.ndarray:
        return np.zeros(_num_observations(obs))

    def fit(self, obs, targets, timesteps=None) -> dict:
        start = time.perf_counter()
        n = _num_observations(obs)
        y = _targets(targets, n)
        zeros = np.zeros(n)
        return _fit_diagnostics(zeros, zeros, y, start)

    def state_dict(self) -> dict:
        return {"type": "ZeroBaseline"}

    def load_state_dict(self, state) -> None:
        _check_state(state, "ZeroBaseline", ())


class ConstantBaseline(Baseline):
    """``b(s) = c``, the mean of the last fitted targets (0 before the first fit).

    Notes
    -----
    The mean minimises the squared error over constants; a constant baseline removes
    the part of the gradient variance due to the overall return level [1]_.

    References
    ----------
    .. [1] R. J. Williams, "Simple statistical gradient-following algorithms for
       connectionist reinforcement learning", Machine Learning 8, 229-256, 1992.

    Examples
    --------
    >>> b = ConstantBaseline()
    >>> _ = b.fit(np.zeros((4, 1)), [1.0, 2.0, 3.0, 6.0])
    >>> b.predict(np.zeros((2, 1))).tolist()
    [3.0, 3.0]
    """

    def __init__(self):
        self.constant = 0.0

    def __repr__(self) -> str:
        return f"ConstantBaseline(constant={self.constant!r})"

    def predict(self, obs, timesteps=None) -> np.ndarray:
        return np.full(_num_observations(obs), self.constant)

    def fit(self, obs, targets, timesteps=None) -> dict:
        start = time.perf_counter()
        n = _num_observations(obs)
        y = _targets(targets, n)
        before = np.full(n, self.constant)
        self.constant = float(np.mean(y))
        return _fit_diagnostics(before, np.full(n, self.constant), y, start)

    def state_dict(self) -> dict:
        return {"type": "ConstantBaseline", "constant": self.constant}

    def load_state_dict(self, state) -> None:
        _check_state(state, "ConstantBaseline", ("constant",))
        self.constant = _state_real(state, "constant")


class LinearFeatureBaseline(Baseline):
    """Ridge regression on polynomial features of the observation and the time step.

    Parameters
    ----------
    reg : float, default 1e-5
        Ridge coefficient λ (rllab's ``reg_coeff``). While the normal equations are
        numerically singular it is multiplied by 10, at most four times (a zero λ first
        becomes 1e-8 times the mean diagonal of ``ΦᵀΦ``).
    time_scale : float, default 100.0
        Time is fed as ``t / time_scale`` (rllab divides by 100).
    obs_clip : float, default 10.0
        Observations are clipped to ``[-obs_clip, obs_clip]`` before the features
        (rllab's value).
    observation_layout : rl.spaces.ObservationLayout, optional
        For structured observations (a ``Dict`` / ``Tuple`` space without an image): the
        observation is the layout's flat encoding (:meth:`~rl.spaces.ObservationLayout.encode`:
        Box values, one-hot vectors, bits).

    Attributes
    ----------
    coeffs : ndarray or None
        The fitted weights ``w`` (None before the first fit, when predictions are 0).
    reg_used : float
        The ridge coefficient of the last successful solve.

    Notes
    -----
    Features of the benchmark of Duan et al. [1]_ (rllab's ``LinearFeatureBaseline``),
    with :math:`\\tau = t / \\text{time\\_scale}` and :math:`o` the clipped observation:

    .. math::

        \\phi(s, t) = [o,\\; o^2,\\; \\tau,\\; \\tau^2,\\; \\tau^3,\\; 1], \\qquad
        w = (\\Phi^T \\Phi + \\lambda I)^{-1} \\Phi^T y .

    The time features let a linear function of the state represent the decay of the
    return towards the end of a time-limited episode. The normal equations are solved
    by Cholesky (``scipy.linalg.solve(assume_a="pos")``); when it reports a singular
    or ill-conditioned matrix (``LinAlgError`` or ``LinAlgWarning``) λ grows tenfold
    and the solve is repeated, and as a last resort the minimum-norm least-squares
    solution (``scipy.linalg.lstsq``) is used. Without ``timesteps`` the time features
    are zero and get zero weight.

    References
    ----------
    .. [1] Y. Duan, X. Chen, R. Houthooft, J. Schulman and P. Abbeel, "Benchmarking
       deep reinforcement learning for continuous control", ICML 2016.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> obs, t = rng.normal(size=(50, 2)), np.arange(50)
    >>> y = 1.0 + obs[:, 0] - 2.0 * obs[:, 1] ** 2 + 0.5 * (t / 100.0)
    >>> b = LinearFeatureBaseline(reg=0.0)
    >>> info = b.fit(obs, y, timesteps=t)
    >>> round(info["value/explained_variance"], 9)
    1.0
    """

    def __init__(self, reg=1e-5, *, time_scale=100.0, obs_clip=10.0, observation_layout=None):
        self.reg, self.time_scale, self.obs_clip = self._settings(
            reg, time_scale, obs_clip, "{}")
        self.observation_layout = layout = _checked_layout(observation_layout)
        if layout is not None and layout.image is not None:
            raise ValueError(f"{layout.image.path} is an image: the linear baseline has no "
                             "features for images; use an MLP or convolutional value function "
                             "(baseline='mlp')")
        self.coeffs: np.ndarray | None = None
        self.reg_used = self.reg

    @staticmethod
    def _settings(reg, time_scale, obs_clip, label: str) -> tuple[float, float, float]:
        """``(reg, time_scale, obs_clip)`` checked as floats; errors name ``label.format(name)``."""
        if not isinstance(reg, numbers.Real) or isinstance(reg, bool) or not reg >= 0.0:
            raise ValueError(f"{label.format('reg')} must be a real number >= 0; got {reg!r}")
        if not np.isfinite(reg):
            raise ValueError(f"{label.format('reg')} must be finite; got {reg!r}")
        for name, value in (("time_scale", time_scale), ("obs_clip", obs_clip)):
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
                    not (np.isfinite(value) and value > 0):
                raise ValueError(
                    f"{label.format(name)} must be a finite number > 0; got {value!r}")
        return float(reg), float(time_scale), float(obs_clip)

    def __repr__(self) -> str:
        return (f"LinearFeatureBaseline(reg={self.reg!r}, time_scale={self.time_scale!r}, "
                f"obs_clip={self.obs_clip!r})")

    def features(self, obs, timesteps=None) -> np.ndarray:
        """The feature matrix ``Φ`` of shape ``(N, 2 obs_dim + 4)``."""
        layout = self.observation_layout
        x = _observations(obs) if layout is None else _encoded(layout, obs, None)
        o = np.clip(x, -self.obs_clip, self.obs_clip)
        n = o.shape[0]
        t = _timesteps(timesteps, n)
        tau = np.zeros((n, 1)) if t is None else (t / self.time_scale)[:, None]
        return np.concatenate([o, o**2, tau, tau**2, tau**3, np.ones((n, 1))], axis=1)

    def predict(self, obs, timesteps=None) -> np.ndarray:
        Phi = self.features(obs, timesteps)
        if self.coeffs is None:
            return np.zeros(Phi.shape[0])
        if self.coeffs.shape[0] != Phi.shape[1]:
            raise ValueError(
                f"obs has {(Phi.shape[1] - 4) // 2} features per observation but the baseline "
                f"was fitted on {(self.coeffs.shape[0] - 4) // 2}"
            )
        return Phi @ self.coeffs

    def fit(self, obs, targets, timesteps=None) -> dict:
        start = time.perf_counter()
        Phi = self.features(obs, timesteps)
        y = _targets(targets, Phi.shape[0])
        before = self.predict(obs, timesteps)
        G = Phi.T @ Phi
        b = Phi.T @ y
        reg = self.reg
        w = None
        for _ in range(5):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
                    w = scipy.linalg.solve(G + reg * np.eye(G.shape[0]), b, assume_a="pos")
                if np.all(np.isfinite(w)):
                    break
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
                pass
            w = None
            reg = 10.0 * reg if reg > 0.0 else 1e-8 * max(np.trace(G) / G.shape[0], 1.0)
        lstsq = w is None
        if lstsq:  # minimum-norm least squares: always defined
            w = scipy.linalg.lstsq(Phi, y)[0]
            reg = 0.0
        self.coeffs, self.reg_used = w, float(reg)
        return _fit_diagnostics(before, Phi @ w, y, start, reg=self.reg_used, lstsq=float(lstsq))

    def state_dict(self) -> dict:
        return {
            "type": "LinearFeatureBaseline",
            "coeffs": None if self.coeffs is None else self.coeffs.copy(),
            "reg": self.reg,
            "time_scale": self.time_scale,
            "obs_clip": self.obs_clip,
        }

    def load_state_dict(self, state) -> None:
        _check_state(state, "LinearFeatureBaseline", ("coeffs", "reg", "time_scale", "obs_clip"))
        coeffs = state["coeffs"]
        if coeffs is not None:
            coeffs = _real_array(coeffs, "state['coeffs']").copy()
            if coeffs.ndim != 1 or coeffs.shape[0] < 6 or coeffs.shape[0] % 2:
                raise ValueError(
                    f"state['coeffs'] must be a 1-D vector of length 2 obs_dim + 4; got shape "
                    f"{coeffs.shape}"
                )
        settings = self._settings(state["reg"], state["time_scale"], state["obs_clip"],
                                  "state['{}']")
        self.coeffs = coeffs
        self.reg, self.time_scale, self.obs_clip = settings


_OPTIMIZERS = ("trust-region", "lbfgs", "adam")
_DEFAULT_ITERATIONS = {"trust-region": 5, "lbfgs": 25, "adam": 10}


class MLPValueFunction(Baseline):
    """A neural-network state-value function ``V_φ(s)`` with a choice of regression solver.

    Parameters
    ----------
    obs_dim : int
        Observation size.
    hidden_sizes : sequence of positive int, default (64, 64)
        Hidden tanh layers (the PPO/TRPO reference value network).
    seed : int >= 0 or numpy.random.Generator
        Initial weights and Adam's minibatch order.
    optimizer : {"trust-region", "lbfgs", "adam"}, default "trust-region"
        The regression solver for :meth:`fit` (see Notes).
    max_change : float, default 0.05
        Trust-region radius ε: each step keeps
        ``mean((V_new - V_old)^2) / (2 σ²) <= ε`` with ``σ²`` the mean squared error
        before the step (trust-region only).
    iterations : int, optional
        Trust-region steps (default 5), L-BFGS iterations (default 25, modular_rl's
        value-function setting) or Adam epochs (default 10, the PPO paper's epochs).
    cg_iters : int, default 10
        Conjugate-gradient iterations per trust-region step (TRPO's setting).
    damping : float, default 1e-3
        ``λ`` of the damped Fisher ``F + λI`` in the trust-region step, relative to the
        output scale (targets are standardised, see ``normalize_targets``).
    learning_rate : float, default 1e-3
        Adam step size (OpenAI baselines' ``vf_stepsize``).
    minibatch_size : int, default 64
        Adam minibatch size (the PPO paper's MuJoCo setting).
    obs_normalizer : object with ``normalize(obs)``, optional
        Shared running observation normaliser (:class:`rl.policies.ObservationNormalizer`);
        applied to every input, never updated here (the sampler updates it) and not
        saved by :meth:`state_dict` (its owner saves it).
    dtype : {"float64", "float32"}, default "float64"
        Compute precision of the network's passes (:class:`rl.networks.MLP`); the
        parameters, targets, losses and the trust-region and L-BFGS solvers are float64
        either way. The Adam fit steps the weights and its moments in this precision
        (as deep-learning libraries do) and stores the result as float64.
    observation_layout : rl.spaces.ObservationLayout, optional
        For structured observations (a ``Dict`` / ``Tuple`` space without an image, the
        observations of :class:`rl.policies.MultiInputPolicy`): the network's input is the
        layout's flat encoding (:meth:`~rl.spaces.ObservationLayout.encode`), of width
        ``obs_dim = layout.flat_dim``, and ``obs_normalizer`` (the policy's) applies to
        its Box columns only.
    normalize_targets : bool, default True
        Predict ``V(s) = μ + s_y · net(s)`` and, at the start of every fit, set ``μ, s_y``
        to the mean and standard deviation of the new targets while rescaling the last
        layer so that no prediction changes (PopArt [4]_). The network then regresses on
        standardised targets whatever the reward units, which is what fixed step sizes,
        damping and the Adam learning rate need.

    Notes
    -----
    All three solvers minimise the mean squared error :math:`\\tfrac12 \\frac1N
    \\sum_n (V_\\phi(s_n) - y_n)^2` from the current weights. This class is the network:
    prediction, the output scaling and the prediction cache; the solvers are the functions
    of :mod:`rl.value_fitting`, chosen by ``optimizer``.

    **trust-region** (GAE paper §5 [1]_). Read :math:`V_\\phi(s)` as the mean of a
    Gaussian with variance :math:`\\sigma^2 = \\frac1N\\sum_n (V_{\\phi_{old}}(s_n) -
    y_n)^2`; the constraint

    .. math:: \\frac1N \\sum_n \\frac{(V_\\phi(s_n) - V_{\\phi_{old}}(s_n))^2}{2\\sigma^2}
              \\le \\varepsilon

    is then the mean KL divergence between old and new predictive distributions, whose
    Hessian is the Fisher :math:`F = J^T J / (N\\sigma^2)` -- the Gauss-Newton matrix
    :math:`H = J^T J / N` of the loss over :math:`\\sigma^2`. Each step:

    1. ``g = -∇f`` by backpropagation; ``F`` as :func:`trustregion.gauss_newton_operator`
       on the network's :meth:`~rl.networks.MLP.linearize` (one hand-written JVP and
       one VJP per product, damped by :func:`trustregion.damped`);
    2. :func:`trustregion.natural_step`: ``d ≈ F⁻¹g`` by CG and ``β = √(2ε / dᵀFd)``,
       the step to the quadratic boundary (the paper's rescaling);
    3. the step is capped at the minimiser of the Gauss-Newton model along ``d``,
       ``β* = gᵀd / dᵀHd`` (the paper always goes to the boundary, which overshoots
       once the model minimiser lies inside);
    4. backtracking (:func:`trustregion.backtracking`, contraction 0.8 as in Spinning
       Up's TRPO) until the *actual* constraint holds and the loss decreased. The network
       is nonlinear, so the full step often overshoots the quadratic estimate of the
       change, and a gentle contraction keeps the accepted step near the boundary; up to
       30 trials reach 0.8²⁹ ≈ 0.002 of the step, and since a CG iterate is a descent
       direction (``gᵀd > 0``) some trial is accepted unless the loss is flat to
       rounding. A trial costs one forward pass (the loss and the constraint share it),
       little next to the CG products.

    **lbfgs**: ``scipy.optimize.minimize(method="L-BFGS-B")`` with backpropagated gradients,
    ``iterations`` iterations (Schulman's modular_rl fits its value network this way).
    **adam**: ``iterations`` epochs of shuffled minibatches of Adam
    (:class:`rl.optimizers.Adam`, state kept across fits), as PPO does [2]_.
    The L-BFGS and Adam losses and gradients come from a
    :class:`rl.networks.SquaredErrorKernel` (one forward pass and one backpropagation
    on preallocated buffers per evaluation).

    Default: **trust-region** with 5 steps of ε = 0.05 and 10 CG iterations. It is the
    GAE paper's method: the constraint bounds how far one noisy batch can move the value
    function, and each step solves the local least-squares problem in the Gauss-Newton
    metric. A step changes the RMS prediction by at most :math:`\\sqrt{2\\varepsilon}\\,
    \\sigma`, so the error shrinks at most by the factor :math:`1 - \\sqrt{2\\varepsilon}
    \\approx 0.68` per step: a fit from scratch needs several steps, warm-started fits
    (every policy iteration after the first) need few. ``benchmarks/bench_value_fit.py``
    measures each solver's held-out explained variance over warm-started fits, a fit from
    scratch, and its CPU time against L-BFGS (``benchmarks/results/value_fit.md``).

    References
    ----------
    .. [1] J. Schulman, P. Moritz, S. Levine, M. Jordan and P. Abbeel,
       "High-dimensional continuous control using generalized advantage estimation",
       ICLR 2016, §5.
    .. [2] J. Schulman, F. Wolski, P. Dhariwal, A. Radford and O. Klimov, "Proximal
       policy optimization algorithms", arXiv:1707.06347, 2017.
    .. [3] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer,
       2006, §7.2 (L-BFGS), §10.3 (Gauss-Newton).
    .. [4] H. van Hasselt, A. Guez, M. Hessel, V. Mnih and D. Silver, "Learning values
       across many orders of magnitude", NeurIPS 2016, Alg. 1 (PopArt).

    Examples
    --------
    >>> x = np.linspace(-1.0, 1.0, 64)[:, None]
    >>> vf = MLPValueFunction(1, hidden_sizes=(16,), seed=0)
    >>> info = vf.fit(x, 2.0 * x[:, 0] + 1.0)
    >>> info["value/loss"] < info["value/loss_before"]
    True
    >>> vf.predict(x).shape
    (64,)
    """

    def __init__(
        self,
        obs_dim,
        hidden_sizes=(64, 64),
        *,
        seed,
        optimizer="trust-region",
        max_change=0.05,
        iterations=None,
        cg_iters=10,
        damping=1e-3,
        learning_rate=1e-3,
        minibatch_size=64,
        obs_normalizer=None,
        normalize_targets=True,
        dtype="float64",
        observation_layout=None,
    ):
        obs_dim = positive_int(obs_dim, "obs_dim")
        self.observation_layout = _checked_layout(observation_layout)
        if observation_layout is not None and (observation_layout.image is not None
                                               or observation_layout.flat_dim != obs_dim):
            raise ValueError(
                f"observation_layout must have no image leaf and flat_dim == obs_dim "
                f"({obs_dim}); got {observation_layout!r} (images: use "
                "ConvValueFunction(..., observation_layout=...))")
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}; got {optimizer!r}")
        if iterations is None:
            iterations = _DEFAULT_ITERATIONS[optimizer]
        iterations = positive_int(iterations, "iterations")
        cg_iters = positive_int(cg_iters, "cg_iters")
        minibatch_size = positive_int(minibatch_size, "minibatch_size")
        for name, value in (("max_change", max_change), ("learning_rate", learning_rate)):
            if not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
        if not isinstance(damping, numbers.Real) or not (np.isfinite(damping) and damping >= 0):
            raise ValueError(f"damping must be a finite number >= 0; got {damping!r}")
        if obs_normalizer is not None and not callable(getattr(obs_normalizer, "normalize", None)):
            raise ValueError(
                "obs_normalizer must have a normalize(obs) method (an ObservationNormalizer); "
                f"got {type(obs_normalizer).__name__}"
            )
        self.obs_dim = int(obs_dim)
        self.hidden_sizes = checked_hidden_sizes(hidden_sizes)
        self.optimizer = optimizer
        self.max_change = float(max_change)
        self.iterations = int(iterations)
        self.cg_iters = int(cg_iters)
        self.damping = float(damping)
        self.learning_rate = float(learning_rate)
        self.minibatch_size = int(minibatch_size)
        self.obs_normalizer = obs_normalizer
        self.normalize_targets = bool(normalize_targets)
        rng = as_generator(seed)
        self.net = MLP((self.obs_dim, *self.hidden_sizes, 1), output_gain=1.0, seed=rng,
                       dtype=dtype)
        self._rng = rng
        self._adam = Adam(self.net.num_params, learning_rate=self.learning_rate)
        self.target_mean = 0.0
        self.target_scale = 1.0
        self._last_prediction = None  # ((params, mean, scale), inputs, values)

    def __repr__(self) -> str:
        extra = "" if self.net.dtype == np.float64 else f", dtype='{self.net.dtype}'"
        return (f"MLPValueFunction(obs_dim={self.obs_dim}, hidden_sizes={self.hidden_sizes}, "
                f"optimizer={self.optimizer!r}, iterations={self.iterations}{extra})")

    # -- parameters ---------------------------------------------------------------------

    @property
    def params(self) -> np.ndarray:
        """The flat weight vector φ (a copy)."""
        return self.net.params.copy()

    @property
    def num_params(self) -> int:
        return self.net.num_params

    def _inputs(self, obs) -> np.ndarray:
        if self.observation_layout is not None:
            return _encoded(self.observation_layout, obs, self.obs_normalizer)
        x = _observations(obs)
        if x.shape[1] != self.obs_dim:
            raise ValueError(
                f"obs must have {self.obs_dim} features per observation (obs_dim); got shape "
                f"{x.shape}"
            )
        if self.obs_normalizer is not None:
            x = np.asarray(self.obs_normalizer.normalize(x), dtype=np.float64)
        return x

    def predict(self, obs, timesteps=None) -> np.ndarray:
        """``V_φ(s)`` for each row of ``obs`` (``timesteps`` is accepted and unused)."""
        return self._values(self._inputs(obs))

    def _values(self, x) -> np.ndarray:
        # An iteration predicts on the same observations with the same weights up to three
        # times (the advantages, the update's explained variance, the fit's "before"); the
        # last prediction is kept and reused when the weights (the network's params array,
        # replaced by every set_params), the output scaling and the inputs are the same.
        key = (self.net.params, self.target_mean, self.target_scale)
        last = self._last_prediction
        if (last is not None and last[0][0] is key[0] and last[0][1:] == key[1:]
                and _same_inputs(last[1], x)):
            return last[2].copy()
        output = self.net.forward_numpy(*network_args(x))[:, 0]
        values = self.target_mean + self.target_scale * output
        self._last_prediction = (key, map_leaves(np.copy, x), values.copy())
        return values

    def _restandardize(self, y) -> None:
        """Set ``μ, s_y`` to the statistics of ``y`` keeping every prediction (PopArt).

        With the last layer ``net(s) = h(s) W + b``, ``μ + s_y (h W + b) = μ' + s'_y (h W'
        + b')`` for all ``h`` when ``W' = W s_y / s'_y`` and ``b' = (s_y b + μ - μ') / s'_y``.
        """
        mu = float(np.mean(y))
        z, m = _scaled_deviations(y)
        scale = m * float(np.sqrt(np.mean(z**2)))  # population std without underflow
        if _all_equal(y) or not (np.isfinite(scale) and scale > 0.0):
            scale = self.target_scale  # no spread to standardise by: keep the scale
        phi = self.net.params.copy()
        h = self._last_hidden_width()  # W of the output layer is (h, 1), then b
        phi[-(h + 1) : -1] *= self.target_scale / scale
        phi[-1] = (self.target_scale * phi[-1] + self.target_mean - mu) / scale
        self.net.set_params(phi)
        self.target_mean, self.target_scale = mu, scale

    def _last_hidden_width(self) -> int:
        """Width of the output layer's input (the output layer ends θ: W, then b)."""
        return self.net.sizes[-2]

    # -- fitting -------------------------------------------------------------------------

    def fit(self, obs, targets, timesteps=None) -> dict:
        """Regress ``V_φ`` on ``targets`` with the configured solver; returns diagnostics.

        Besides the common keys (:class:`Baseline`) the dict holds ``"value/iterations"``
        and, for the trust region, ``"value/max_step_kl"`` (the largest realised
        ``mean((V_new - V_old)²) / (2σ²)`` of any step), ``"value/cg_nit"`` (total CG
        iterations) and ``"value/success"`` (1.0 unless a step could not be taken).
        """
        start = time.perf_counter()
        x = self._inputs(obs)
        y = _targets(targets, count_rows(x))
        before = self._values(x)
        if self.normalize_targets:
            self._restandardize(y)
        z = (y - self.target_mean) / self.target_scale  # the network's regression targets
        solver = {
            "trust-region": self._fit_trust_region,
            "lbfgs": self._fit_lbfgs,
            "adam": self._fit_adam,
        }[self.optimizer]
        extra = solver(x, z)
        after = self._values(x)
        return _fit_diagnostics(before, after, y, start, **extra)

    def _loss_and_gradient(self, x, z):
        """``φ -> (½ mean((net_φ(x) - z)²), its gradient)``: one forward pass and one
        backpropagation (:class:`rl.networks.SquaredErrorKernel`)."""
        kernel = SquaredErrorKernel(self.net, x.shape[0])

        def f_and_grad(phi):
            kernel.set_params(phi)
            return kernel(x, z)

        return f_and_grad

    def _fit_trust_region(self, x, z) -> dict:
        """GAE paper §5: natural steps on the Gaussian-output mean KL, capped at the GN minimum
        (:func:`rl.value_fitting.fit_trust_region`)."""
        return fit_trust_region(self.net, x, z, max_change=self.max_change,
                                iterations=self.iterations, cg_iters=self.cg_iters,
                                damping=self.damping)

    def _fit_lbfgs(self, x, z) -> dict:
        """L-BFGS-B (scipy) on the squared error, gradients by backpropagation
        (:func:`rl.value_fitting.fit_lbfgs`)."""
        return fit_lbfgs(self.net, self._loss_and_gradient(x, z), iterations=self.iterations)

    def _fit_adam(self, x, z) -> dict:
        """Shuffled minibatch epochs of Adam, as in PPO's value update
        (:func:`rl.value_fitting.fit_adam`), on a :class:`rl.networks.SquaredErrorKernel`
        that steps the weights in the network's compute dtype."""
        N = x.shape[0]
        kernel = SquaredErrorKernel(self.net, min(N, self.minibatch_size))
        kernel.set_params(self.net.params)
        dt = self.net.dtype
        x, z = x.astype(dt, copy=False), z.astype(dt, copy=False)  # gathered once per row

        def minibatch_gradient(idx):
            return kernel(x[idx], z[idx], copy=False)[1]

        # kernel.params is updated in place, in the network's compute dtype
        return fit_adam(self.net, self._adam, self._rng, kernel.params, minibatch_gradient, N,
                        epochs=self.iterations, minibatch_size=self.minibatch_size)

    # -- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Weights, output scaling, settings and the Adam state (not the shared normaliser)."""
        return {
            "type": type(self).__name__,
            "params": self.net.params.copy(),
            **self._shape_entries(),
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
            "adam": self._adam.state_dict(),
            "rng": self._rng.bit_generator.state,
        }

    def _shape_entries(self) -> dict:
        """The architecture a saved state must match (saved beside the weights)."""
        return {"obs_dim": self.obs_dim, "hidden_sizes": self.hidden_sizes}

    def load_state_dict(self, state) -> None:
        """Restore :meth:`state_dict` output into a network of the same shape."""
        mine = self._shape_entries()
        _check_state(state, type(self).__name__,
                     ("params", *mine, "target_mean", "target_scale"))
        theirs = {k: state[k] for k in mine}
        if _nested_tuples(theirs) != _nested_tuples(mine):
            described = ", ".join(f"{k}={v!r}" for k, v in theirs.items())
            raise ValueError(
                f"state is for a network with {described}; this one has "
                + ", ".join(f"{k}={v!r}" for k, v in mine.items())
            )
        mean, scale = _state_real(state, "target_mean"), _state_real(state, "target_scale")
        if not scale > 0.0:
            raise ValueError(f"state['target_scale'] must be > 0; got {scale!r}")
        adam = None
        if "adam" in state:  # checked into a fresh optimizer before anything changes
            adam = Adam(self.net.num_params, learning_rate=self.learning_rate)
            adam.load_state_dict(state["adam"])
        self.net.set_params(state["params"])
        self.target_mean, self.target_scale = mean, scale
        if adam is not None:
            self._adam = adam
        if "rng" in state:
            self._rng.bit_generator.state = state["rng"]


def _same_inputs(a, b) -> bool:
    """Whether two network inputs (arrays, or pairs of arrays) are equal, shapes included."""
    a_leaves, b_leaves = leaf_arrays(a), leaf_arrays(b)
    return isinstance(a, tuple) == isinstance(b, tuple) and len(a_leaves) == len(b_leaves) and \
        all(u.shape == v.shape and np.array_equal(u, v)
            for u, v in zip(a_leaves, b_leaves, strict=True))


def _nested_tuples(value):
    """Lists as tuples, all the way down (a state read back from JSON has lists)."""
    if isinstance(value, dict):
        return {k: _nested_tuples(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_nested_tuples(v) for v in value)
    return value


class ConvValueFunction(MLPValueFunction):
    """A state-value function on images: the convolutional torso of the CNN policy.

    Parameters
    ----------
    image_shape : tuple of 3 ints
        Shape of one frame in ``layout`` order.
    layout : {"HWC", "CHW"}, default "HWC"
    conv_layers : sequence of (out_channels, kernel, stride), default rl.conv.NATURE_CONV
    hidden_sizes : sequence of int, default (512,)
        Dense ReLU layers after the convolutions.
    seed, optimizer, max_change, iterations, cg_iters, damping, learning_rate,
    minibatch_size, normalize_targets, dtype
        As :class:`MLPValueFunction`.
    chunk_size : int, default 64
        Frames per chunk in the network's passes (:class:`rl.conv.ConvNet`).
    observation_layout : rl.spaces.ObservationLayout, optional
        For structured observations with an image leaf (the observations of
        :class:`rl.policies.MultiInputPolicy`): the image leaf goes through the
        convolutions and the layout's flat encoding of the other leaves joins the
        convolution features before the dense layers (the policy's torso);
        ``image_shape`` and ``layout`` must then be the image leaf's.
    obs_normalizer : ObservationNormalizer, optional
        With ``observation_layout``: the policy's normaliser, applied to the encoding's Box
        columns.

    Notes
    -----
    :class:`MLPValueFunction`'s three solvers and PopArt output scaling on a
    :class:`rl.conv.ConvNet` with one output (gain 1). The trust-region step uses the
    network's hand-written ``J v`` and ``J^T w``; L-BFGS and Adam take their gradients from
    the same linearisation (``J^T r / N``) instead of the MLP's preallocated kernel.
    Observations are frames of shape ``(N, *image_shape)``, or rows of ``prod(image_shape)``
    values (a batch stored flat), in uint8 (scaled by 1/255 inside the network), bool or
    float; they are not normalised.

    Examples
    --------
    >>> frames = np.random.default_rng(0).integers(0, 256, (32, 6, 6, 1), dtype=np.uint8)
    >>> vf = ConvValueFunction((6, 6, 1), conv_layers=((4, 3, 1),), hidden_sizes=(8,), seed=0)
    >>> info = vf.fit(frames, frames.mean(axis=(1, 2, 3)) / 255.0)
    >>> info["value/loss"] < info["value/loss_before"]
    True
    """

    def __init__(self, image_shape, *, layout="HWC", conv_layers=NATURE_CONV,
                 hidden_sizes=(512,), seed, optimizer="trust-region", max_change=0.05,
                 iterations=None, cg_iters=10, damping=1e-3, learning_rate=1e-3,
                 minibatch_size=64, normalize_targets=True, dtype="float64", chunk_size=64,
                 obs_normalizer=None, observation_layout=None):
        observation_layout = _checked_layout(observation_layout)
        extra_dim = 0
        if observation_layout is not None:
            image = observation_layout.image
            if image is None or tuple(image_shape) != image.shape or \
                    layout != observation_layout.image_layout:
                raise ValueError(
                    f"observation_layout must have an image leaf of shape {tuple(image_shape)} "
                    f"in {layout} order; got {observation_layout!r}")
            extra_dim = observation_layout.flat_dim
        rng = as_generator(seed)
        net = ConvNet(image_shape, 1, layout=layout, conv_layers=conv_layers,
                      hidden_sizes=hidden_sizes, extra_dim=extra_dim, output_gain=1.0, seed=rng,
                      dtype=dtype, chunk_size=chunk_size)
        # the settings are checked by the MLP value function's constructor (its own small
        # network is replaced by the convolutional one)
        super().__init__(int(np.prod(net.image_shape)), (1,), seed=rng, optimizer=optimizer,
                         max_change=max_change, iterations=iterations, cg_iters=cg_iters,
                         damping=damping, learning_rate=learning_rate,
                         minibatch_size=minibatch_size, normalize_targets=normalize_targets,
                         dtype=dtype)
        self.net = net
        self.image_shape = net.image_shape
        self.hidden_sizes = tuple(net.hidden_sizes)
        self._adam = Adam(net.num_params, learning_rate=self.learning_rate)
        self.observation_layout = observation_layout
        self.obs_normalizer = obs_normalizer

    def __repr__(self) -> str:
        return (f"ConvValueFunction(image_shape={self.image_shape}, layout={self.net.layout!r}, "
                f"conv_layers={self.net.conv_layers}, hidden_sizes={self.hidden_sizes}, "
                f"optimizer={self.optimizer!r}, iterations={self.iterations})")

    def _shape_entries(self) -> dict:
        net = self.net
        entries = {"image_shape": net.image_shape, "layout": net.layout,
                   "conv_layers": net.conv_layers, "hidden_sizes": self.hidden_sizes}
        if net.extra_dim:
            entries["extra_dim"] = net.extra_dim
        return entries

    def _last_hidden_width(self) -> int:
        return self.net.head.sizes[-2]

    def _inputs(self, obs):
        layout = self.observation_layout
        if layout is not None and layout.structured:
            images = layout.leaf_batch(obs, layout.image)
            if images.dtype.kind == "f" and not np.isfinite(images).all():
                raise ValueError(f"{layout.image.path} contains NaN or inf; pass finite values")
            if not layout.flat_dim:
                return images
            return images, _encoded(layout, obs, self.obs_normalizer)
        x = np.asarray(obs)
        size = int(np.prod(self.image_shape))
        if x.ndim == 2 and x.shape[1] == size:  # frames stored one row each
            x = x.reshape(x.shape[0], *self.image_shape)
        if x.ndim != 4 or x.shape[1:] != self.image_shape:
            raise ValueError(f"obs must have shape (N, {', '.join(map(str, self.image_shape))}) "
                             f"or (N, {size}) (frames stored flat); got shape {x.shape}")
        return x

    def _loss_and_gradient(self, x, z):
        """``φ -> (½ mean((net_φ(x) - z)²), J^T r / N)`` by the network's linearisation."""
        def f_and_grad(phi):
            return half_mse_and_gradient(self.net.linearize(phi, *network_args(x)), z)

        return f_and_grad

    def _fit_adam(self, x, z) -> dict:
        """Shuffled minibatch epochs of Adam (:func:`rl.value_fitting.fit_adam`), gradients
        by the network's linearisation, on a float64 copy of the weights; rows of a pair
        ``(images, extra)`` are taken leaf by leaf."""
        loss_and_gradient = self._loss_and_gradient
        theta = self.net.params.copy()

        def minibatch_gradient(idx):
            return loss_and_gradient(map_leaves(lambda a: a[idx], x), z[idx])(theta)[1]

        return fit_adam(self.net, self._adam, self._rng, theta, minibatch_gradient,
                        count_rows(x), epochs=self.iterations,
                        minibatch_size=self.minibatch_size)


# ---------------------------------------------------------------------------- by space


_BASELINES = ("mlp", "linear", "constant", "none")


def make_baseline(kind, observation_space, hidden_sizes=(64, 64), *, seed, obs_normalizer=None,
                  conv_layers="auto", conv_hidden_sizes="auto", **value_settings) -> Baseline:
    """The baseline of a kind that fits an observation space.

    Parameters
    ----------
    kind : {"mlp", "linear", "constant", "none"}
        A value network, :class:`LinearFeatureBaseline`, :class:`ConstantBaseline` or
        :class:`ZeroBaseline`.
    observation_space : gymnasium.spaces.Space
        One environment's observation space (accepted by :func:`rl.envs.check_spaces`).
    hidden_sizes : sequence of int, default (64, 64)
        Hidden widths of an MLP value network.
    seed : int >= 0 or numpy.random.Generator
    obs_normalizer : ObservationNormalizer, optional
        The policy's observation normaliser, shared (its Box columns for structured
        observations).
    conv_layers, conv_hidden_sizes : default "auto"
        The torso of a convolutional value network (as :func:`rl.policies.make_policy`:
        "auto" is :func:`rl.conv.conv_torso_for` the image).
    **value_settings
        The value network's other settings (``optimizer``, ``iterations``,
        ``learning_rate``, ``minibatch_size``, ``normalize_targets``, ``dtype``, ...).

    Returns
    -------
    Baseline
        For ``"mlp"``: :class:`MLPValueFunction` on vectors (``obs_dim`` = the vector's
        size, 1 for ``Discrete`` states) and on the flat encoding of ``Dict`` / ``Tuple``
        observations (``observation_layout``); :class:`ConvValueFunction` on images and
        on structured observations with an image leaf (its other leaves join the
        convolution features). For ``"linear"``: on vectors, or on the flat encoding of
        structured observations without an image.

    Raises
    ------
    ValueError
        An unknown ``kind``, or ``"linear"`` on images (no features for them).

    Examples
    --------
    >>> from gymnasium import spaces
    >>> space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "door": spaces.Discrete(3)})
    >>> make_baseline("mlp", space, (8,), seed=0)
    MLPValueFunction(obs_dim=5, hidden_sizes=(8,), optimizer='trust-region', iterations=5)
    >>> make_baseline("mlp", spaces.Box(0, 255, (8, 8, 3), np.uint8), seed=0).net.conv_layers
    ((16, 3, 1),)
    """
    from gymnasium import spaces

    from rl.conv import conv_torso_for

    if kind not in _BASELINES:
        raise ValueError(f"kind must be one of {_BASELINES}; got {kind!r}")
    if kind == "none":
        return ZeroBaseline()
    if kind == "constant":
        return ConstantBaseline()
    vector = isinstance(observation_space, spaces.Discrete) or (
        isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1)
    layout = None if vector else ObservationLayout.from_space(observation_space)
    if kind == "linear":
        return LinearFeatureBaseline(observation_layout=layout)  # refuses images
    if layout is None:
        shape = observation_space.shape
        obs_dim = int(np.prod(shape)) if shape else 1
        return MLPValueFunction(obs_dim, hidden_sizes, seed=seed, obs_normalizer=obs_normalizer,
                                **value_settings)
    if layout.image is None:
        return MLPValueFunction(layout.flat_dim, hidden_sizes, seed=seed,
                                obs_normalizer=obs_normalizer, observation_layout=layout,
                                **value_settings)
    image = layout.image
    auto_layers, auto_hidden = conv_torso_for(image.shape, layout.image_layout)
    return ConvValueFunction(
        image.shape, layout=layout.image_layout,
        conv_layers=auto_layers if isinstance(conv_layers, str) else conv_layers,
        hidden_sizes=auto_hidden if isinstance(conv_hidden_sizes, str) else conv_hidden_sizes,
        seed=seed, obs_normalizer=obs_normalizer if layout.structured else None,
        observation_layout=layout, **value_settings)


# ------------------------------------------------------------------------- batch interface


def _next_values(baseline, obs, next_obs, V, batch, t_next):
    """``V(s'_t)`` for a (T, N) batch, predicting only where ``s'_t`` is not ``s_{t+1}``.

    In a sampled batch the next observation of a step that did not end an episode is the
    following step's observation (and its time step the next one), so ``V(s'_t) =
    V(s_{t+1})``, already computed. Only episode ends (the true final observation) and
    the last step of the rollout need a prediction. Batches that do not have this
    structure (checked, exactly) get a prediction for every row.
    """
    T, N = V.shape
    flat_next = _step_rows(next_obs, T * N)
    carried = ~(np.asarray(batch.terminated, dtype=bool) | np.asarray(batch.truncated, dtype=bool))
    carried[-1] = False
    timesteps = getattr(batch, "timesteps", None)
    same = all(np.array_equal(nxt[:-1][carried[:-1]], now[1:][carried[:-1]])
               for nxt, now in zip(leaf_arrays(next_obs), leaf_arrays(obs), strict=True)) and (
        timesteps is None
        or np.array_equal(np.asarray(timesteps)[:-1][carried[:-1]] + 1,
                          np.asarray(timesteps)[1:][carried[:-1]]))
    if not same:
        return baseline.predict(flat_next, timesteps=t_next).reshape(T, N)
    V_next = np.empty((T, N))
    V_next[:-1] = V[1:]
    rows = np.flatnonzero(~carried.reshape(-1))
    V_next.reshape(-1)[rows] = np.reshape(baseline.predict(
        map_leaves(lambda x: x[rows], flat_next),
        timesteps=None if t_next is None else t_next[rows]), -1)
    return V_next


def _step_rows(obs, n: int):
    """``(T, N, ...)`` step observations as ``n = T N`` rows: ``(n, d)`` for an array, the
    leaves as ``(n, *leaf_shape)`` for a dict / tuple of arrays."""
    if isinstance(obs, (dict, tuple)):
        return map_leaves(lambda x: np.asarray(x).reshape(n, *np.shape(x)[2:]), obs)
    return obs.reshape(n, -1)


def compute_advantages(batch, baseline, gamma, lam, *, normalize=True):
    """GAE(γ, λ) advantages and value targets for a sampled :class:`rl.sampling.Batch`.

    Parameters
    ----------
    batch : rl.sampling.Batch
        Arrays shaped ``(T, N, ...)``: ``observations``, ``next_observations`` (the true
        final observation at an episode end), ``rewards``, ``terminated``, ``truncated``,
        ``timesteps``.
    baseline : Baseline
        Supplies ``V(s)`` through ``predict(obs, timesteps)``.
    gamma, lam : float
        Discount and GAE parameter, each in ``[0, 1]``.
    normalize : bool, default True
        Return :func:`normalize_advantages` of the estimates (the targets are never
        normalised).

    Returns
    -------
    advantages : ndarray, shape (T, N)
    value_targets : ndarray, shape (T, N)
        ``Â_t + V(s_t)`` with the unnormalised ``Â``: the λ-return (TD(λ) target); for
        λ = 1 the bootstrapped discounted return.

    Notes
    -----
    ``V(s_t)`` and ``V(s'_t)`` come from one ``predict`` each on the flattened
    ``observations`` and ``next_observations`` (time steps ``t`` and ``t + 1``), then
    :func:`gae`: a terminated step is not bootstrapped, a truncated step and the
    rollout's last step bootstrap from ``V(s'_t)``. With :class:`ZeroBaseline` and
    λ = 1 the advantages are the reward-to-go (:func:`reward_to_go`). Fit the baseline
    on ``value_targets`` *after* computing the advantages, as the GAE paper does, so
    the advantages never use a value function fitted to the same returns.

    References
    ----------
    .. [1] J. Schulman, P. Moritz, S. Levine, M. Jordan and P. Abbeel,
       "High-dimensional continuous control using generalized advantage estimation",
       ICLR 2016, Alg. 1.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> T, N = 3, 1
    >>> batch = SimpleNamespace(
    ...     observations=np.zeros((T, N, 1)), next_observations=np.zeros((T, N, 1)),
    ...     rewards=np.ones((T, N)), terminated=np.array([[False], [False], [True]]),
    ...     truncated=np.zeros((T, N), bool), timesteps=np.arange(T)[:, None])
    >>> A, targets = compute_advantages(batch, ZeroBaseline(), 1.0, 1.0, normalize=False)
    >>> A[:, 0].tolist()
    [3.0, 2.0, 1.0]
    """
    gamma = _discount(gamma, "gamma")
    lam = _discount(lam, "lam")
    r = _real_array(batch.rewards, "batch.rewards")
    if r.ndim != 2:
        raise ValueError(f"batch.rewards must have shape (T, N); got shape {r.shape}")
    T, N = r.shape
    obs, next_obs = batch.observations, batch.next_observations  # arrays, or dicts / tuples
    if not isinstance(obs, (dict, tuple)):
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
    for name, tree in (("batch.observations", obs), ("batch.next_observations", next_obs)):
        for arr in leaf_arrays(tree):
            if np.shape(arr)[:2] != (T, N):
                raise ValueError(f"{name} must have leading shape (T, N) = {(T, N)}; got "
                                 f"{np.shape(arr)}")
    timesteps = getattr(batch, "timesteps", None)
    if timesteps is not None:
        timesteps = np.asarray(timesteps)
        if timesteps.shape != (T, N):
            raise ValueError(f"batch.timesteps must have shape {(T, N)}; got {timesteps.shape}")
        t_now, t_next = timesteps.reshape(-1), timesteps.reshape(-1) + 1
    else:
        t_now = t_next = None
    V = baseline.predict(_step_rows(obs, T * N), timesteps=t_now).reshape(T, N)
    V_next = _next_values(baseline, obs, next_obs, V, batch, t_next)
    A = gae(r, V, V_next, batch.terminated, batch.truncated, gamma, lam)
    value_targets = A + V
    if normalize:
        A = normalize_advantages(A)
    return A, value_targets
