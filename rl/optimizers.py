"""First-order optimizers on flat parameter vectors (used by VPG, PPO and value fitting)."""

from __future__ import annotations

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
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must lie in [0, 1); got {beta!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.epsilon = positive_scalar(epsilon, "epsilon")
        self.m = np.zeros(int(num_params))
        self.v = np.zeros(int(num_params))
        self.t = 0

    def step(self, theta, grad):
        """Return the parameters after one Adam step *downhill* along ``grad``."""
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != self.m.shape:
            raise ValueError(f"grad must have shape {self.m.shape}; got {grad.shape}")
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
        """The optimizer state, for checkpoints."""
        return {"m": self.m.astype(np.float64), "v": self.v.astype(np.float64), "t": self.t,
                "learning_rate": self.learning_rate}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output (shapes must match)."""
        m = as_vector(state["m"], "state['m']", n=self.m.shape[0])
        v = as_vector(state["v"], "state['v']", n=self.v.shape[0])
        self.m, self.v, self.t = m.copy(), v.copy(), int(state["t"])  # updated in place
        self.learning_rate = float(state.get("learning_rate", self.learning_rate))
