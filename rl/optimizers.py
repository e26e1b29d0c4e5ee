"""First-order optimizers on flat parameter vectors (used by VPG, PPO and value fitting)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from trustregion._checks import as_vector, positive_scalar

__all__ = ["Adam"]


class Adam:
    """Adam on a flat float64 parameter vector (Kingma & Ba, 2015, Alg. 1).

    Parameters
    ----------
    num_params : int
        Length of the parameter vector.
    learning_rate : float, default 3e-4
        Step size :math:`\\alpha` (3e-4 is the PPO paper's MuJoCo setting).
    beta1, beta2 : float, default 0.9, 0.999
        Decay rates of the first and second moment estimates (Kingma & Ba's defaults).
    epsilon : float, default 1e-8
        Denominator offset of the update, part of Adam's definition (Alg. 1).

    Notes
    -----
    For a gradient :math:`g_t` of the objective to *minimise*,

    .. math::

        m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t,\\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,\\quad
        \\theta_t = \\theta_{t-1} - \\alpha\\,
        \\frac{m_t / (1-\\beta_1^t)}{\\sqrt{v_t / (1-\\beta_2^t)} + \\epsilon}.

    References
    ----------
    D. P. Kingma and J. Ba, "Adam: A method for stochastic optimization", ICLR 2015.

    Examples
    --------
    >>> opt = Adam(2, learning_rate=0.1)
    >>> theta = np.array([1.0, -1.0])
    >>> for _ in range(200):
    ...     theta = opt.step(theta, 2 * theta)   # minimise ||theta||^2
    >>> bool(np.linalg.norm(theta) < 1e-2)
    True
    """

    def __init__(self, num_params, *, learning_rate=3e-4, beta1=0.9, beta2=0.999, epsilon=1e-8):
        if int(num_params) != num_params or num_params < 1:
            raise ValueError(f"num_params must be a positive integer; got {num_params!r}")
        self.learning_rate = positive_scalar(learning_rate, "learning_rate")
        self.beta1 = _beta(beta1, "beta1")
        self.beta2 = _beta(beta2, "beta2")
        self.epsilon = positive_scalar(epsilon, "epsilon")
        self.m = np.zeros(int(num_params))
        self.v = np.zeros(int(num_params))
        self.t = 0

    def __repr__(self) -> str:
        return (f"Adam(num_params={self.m.shape[0]}, learning_rate={self.learning_rate}, "
                f"betas=({self.beta1}, {self.beta2}), t={self.t})")

    def step(self, theta, grad):
        """Return the parameters after one Adam step *downhill* along ``grad``.

        Raises
        ------
        ValueError
            If ``grad`` has the wrong shape or holds NaN or inf; the state is left as it
            was (one non-finite gradient would otherwise make the moments NaN for good).
        """
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != self.m.shape:
            raise ValueError(f"grad must have shape {self.m.shape}; got {grad.shape}")
        if not np.isfinite(grad).all():
            raise ValueError("grad contains NaN or inf; the Adam state is unchanged (skip "
                             "this step or clip the gradient)")
        theta = np.array(theta, dtype=np.float64)  # a fresh copy, stepped in place
        self.step_in_place(theta, grad)
        return theta

    def step_in_place(self, theta, grad):
        """One Adam step on ``theta`` in place, in ``theta``'s floating dtype.

        The fast path of minibatch fits in single precision: ``theta`` and ``grad`` are
        arrays of one float dtype (e.g. a float32 network's weights and gradient) and the
        moments are kept in that dtype too, as deep-learning libraries keep them. The
        arithmetic is that of :meth:`step`; :meth:`step` and :meth:`state_dict` return
        the moments to float64.

        Parameters
        ----------
        theta : ndarray, float dtype, shape (num_params,)
            Updated in place.
        grad : ndarray of ``theta``'s dtype and shape

        Examples
        --------
        >>> opt = Adam(2, learning_rate=0.1)
        >>> theta = np.array([1.0, -1.0], dtype=np.float32)
        >>> for _ in range(200):
        ...     opt.step_in_place(theta, 2 * theta)   # minimise ||theta||^2
        >>> bool(np.linalg.norm(theta) < 1e-2), theta.dtype
        (True, dtype('float32'))
        """
        if not isinstance(theta, np.ndarray) or theta.shape != self.m.shape or \
                theta.dtype.kind != "f":
            raise ValueError(f"theta must be a float ndarray of shape {self.m.shape}; got "
                             f"{type(theta).__name__} {getattr(theta, 'shape', '')}")
        if not isinstance(grad, np.ndarray) or grad.shape != theta.shape or \
                grad.dtype != theta.dtype:
            raise ValueError(f"grad must be an ndarray of theta's shape {theta.shape} and "
                             f"dtype {theta.dtype}")
        self._moments_as(theta.dtype)
        self.t += 1
        m, v = self.m, self.v  # updated in place: a step allocates no temporaries
        m *= self.beta1
        g = np.multiply(grad, 1.0 - self.beta1, out=self._scratch)
        m += g
        v *= self.beta2
        np.multiply(grad, grad, out=g)
        g *= 1.0 - self.beta2
        v += g
        denom = np.divide(v, 1.0 - self.beta2**self.t, out=g)  # v_hat
        np.sqrt(denom, out=denom)
        denom += self.epsilon
        update = np.divide(m, denom, out=denom)
        update *= self.learning_rate / (1.0 - self.beta1**self.t)  # lr * m_hat / (...)
        theta -= update

    def _moments_as(self, dtype) -> None:
        if self.m.dtype != dtype:
            self.m, self.v = self.m.astype(dtype), self.v.astype(dtype)
        if getattr(self, "_scratch", None) is None or self._scratch.dtype != dtype:
            self._scratch = np.empty_like(self.m)

    def state_dict(self):
        """The optimizer state and settings, for checkpoints (moments as float64 copies)."""
        return {"m": self.m.astype(np.float64), "v": self.v.astype(np.float64), "t": self.t,
                "learning_rate": self.learning_rate, "beta1": self.beta1, "beta2": self.beta2,
                "epsilon": self.epsilon}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output (shapes must match).

        ``learning_rate``, ``beta1``, ``beta2`` and ``epsilon`` are restored when present
        (older checkpoints without them keep the current values). Everything is checked
        before anything is changed.

        Raises
        ------
        ValueError
            If ``state`` is not a dict with ``"m"``, ``"v"`` and ``"t"``, a moment has the
            wrong length or is not finite, ``v`` has a negative entry, ``t`` is not an
            integer >= 0, or a setting is out of range.

        Examples
        --------
        >>> opt = Adam(2, learning_rate=0.1, beta2=0.99)
        >>> _ = opt.step(np.zeros(2), np.ones(2))
        >>> restored = Adam(2)
        >>> restored.load_state_dict(opt.state_dict())
        >>> restored
        Adam(num_params=2, learning_rate=0.1, betas=(0.9, 0.99), t=1)
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a dict from Adam.state_dict(); got "
                             f"{type(state).__name__}")
        missing = [k for k in ("m", "v", "t") if k not in state]
        if missing:
            raise ValueError(f"state is missing the entries {missing}; pass Adam.state_dict() "
                             "output")
        n = self.m.shape[0]
        m = as_vector(state["m"], "state['m']", n=n, against="num_params")
        v = as_vector(state["v"], "state['v']", n=n, against="num_params")
        if np.any(v < 0.0):
            raise ValueError("state['v'] must be non-negative (a mean of squared gradients); "
                             f"got a minimum of {float(v.min())!r}")
        t = state["t"]
        if isinstance(t, np.ndarray) and t.ndim == 0:
            t = t[()]
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real) or \
                not float(t).is_integer() or t < 0:
            raise ValueError(f"state['t'] must be an integer >= 0 (the step count); got {t!r}")
        settings = {
            "learning_rate": positive_scalar(state.get("learning_rate", self.learning_rate),
                                             "state['learning_rate']"),
            "beta1": _beta(state.get("beta1", self.beta1), "state['beta1']"),
            "beta2": _beta(state.get("beta2", self.beta2), "state['beta2']"),
            "epsilon": positive_scalar(state.get("epsilon", self.epsilon), "state['epsilon']"),
        }
        self.m, self.v, self.t = m, v, int(t)  # fresh copies, updated in place
        for name, value in settings.items():
            setattr(self, name, value)


def _beta(value, name: str) -> float:
    """A decay rate in ``[0, 1)``, or ``ValueError`` naming ``name``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or \
            not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a real number in [0, 1); got {value!r}")
    return float(value)
