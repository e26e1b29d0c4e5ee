"""Action distributions on a batch: log-probability, entropy, KL and the Fisher information.

A distribution is described by ONE array ``params`` of shape ``(N, P)``, one row per
observation: the logits for :class:`Categorical`, ``[mean, log_std]`` for
:class:`DiagGaussian`, the logit blocks side by side for :class:`MultiCategorical`
(``MultiDiscrete`` actions), the logit of each bit for :class:`Bernoulli`
(``MultiBinary`` actions). Everything but :meth:`sample` / :meth:`mode` is written with
``autograd.numpy`` and is traceable in ``params``, so a policy gets its gradients, its
KL and its Fisher-vector products by composing a network with these formulas.

:meth:`fisher_vector` is the analytic Fisher matrix of the distribution in its own
parameters, ``F(y) = E_a[∇_y log p(a|y) ∇_y log p(a|y)^T]``, applied to a vector. It is
the ``output_fisher`` that :func:`trustregion.fisher_operator` contracts with the
network Jacobian, ``J^T F J v`` (TRPO paper, App. C.1).
"""

from __future__ import annotations

import numbers

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

__all__ = ["Distribution", "Categorical", "DiagGaussian", "MultiCategorical", "Bernoulli"]

_LOG_2PI = float(np.log(2.0 * np.pi))


def _logsumexp_rows(l):
    """``log Σ_a exp(l_a)`` per row, shape (N, 1); traceable by autograd in ``l``.

    The shift ``m`` (the row maximum) is taken from ``l``'s value and held constant:
    ``m + log Σ exp(l - m)`` equals the log-sum-exp for every ``m``, so its derivatives
    of every order in ``l`` are those of the log-sum-exp, and no ``exp`` overflows.
    A quarter of the cost of ``scipy.special.logsumexp`` on the (4096, 2) logits of a
    CartPole batch.
    """
    m = np.max(getval(l), axis=-1, keepdims=True)
    return m + anp.log(anp.sum(anp.exp(l - m), axis=-1, keepdims=True))


def _row_weights(weights, n: int):
    """``weights`` as an (n, 1) float64 column (``None``: ones)."""
    if weights is None:
        return np.ones((n, 1))
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != n:
        raise ValueError(f"weights must have one entry per row ({n}); got {w.shape[0]}")
    return w[:, None]


def _check_params(params, name: str):
    shape = getattr(params, "shape", None)
    if shape is None:
        params = np.asarray(params, dtype=np.float64)
        shape = params.shape
    if len(shape) != 2 or shape[-1] < 1:
        raise ValueError(
            f"{name} must be a 2-D array of shape (N, P), one row per observation; got shape "
            f"{tuple(shape)} (use params[None, :] for a single distribution)"
        )
    return params


class Distribution:
    """Base class: a batch of ``N`` distributions described by ``params`` of shape (N, P)."""

    params = None

    def __len__(self) -> int:
        return self.params.shape[0]

    def __repr__(self) -> str:
        n, width = self.params.shape
        return f"{type(self).__name__}(N={n}, P={width})"

    @classmethod
    def fisher_product(cls, params, weights=None):
        """``u ↦ w ⊙ F(params) u``: :meth:`fisher_vector` at fixed ``params`` with row
        weights ``w`` (default ones). Subclasses precompute what the products share."""
        w = _row_weights(weights, np.shape(params)[0])
        return lambda u: w * cls.fisher_vector(params, u)

    def _check_other(self, other) -> None:
        if type(other) is not type(self):
            raise ValueError(
                f"other must be a {type(self).__name__} to compute the KL divergence; "
                f"got {type(other).__name__}"
            )
        if tuple(other.params.shape) != tuple(self.params.shape):
            raise ValueError(
                f"other.params must have the shape of self.params {tuple(self.params.shape)}; "
                f"got {tuple(other.params.shape)}"
            )


class Categorical(Distribution):
    """Categorical distributions over ``A`` actions, parameterised by logits.

    Parameters
    ----------
    logits : array of shape (N, A)
        Unnormalised log-probabilities; may be an autograd box.

    Notes
    -----
    ``log p_a = l_a - logsumexp(l)`` (the log-sum-exp is shifted by the row maximum, so
    no logit overflows ``exp``). With ``p = softmax(l)``:

    * entropy ``H(p) = -Σ_a p_a log p_a``;
    * ``KL(p ‖ q) = Σ_a p_a (log p_a - log q_a)``;
    * Fisher in the logits ``F(l) = diag(p) - p p^T``, so ``F u = p ⊙ u - p (p·u)``. It
      equals the Hessian of ``l' ↦ KL(p_l ‖ p_{l'})`` at ``l' = l`` [1]_.

    References
    ----------
    .. [1] S. Amari, "Natural gradient works efficiently in learning", Neural
       Computation 10(2), 1998.

    Examples
    --------
    >>> d = Categorical(np.log([[0.2, 0.3, 0.5]]))
    >>> np.round(np.exp(d.log_prob(np.array([2]))), 6)
    array([0.5])
    >>> np.round(d.entropy(), 4)
    array([1.0297])
    >>> d.mode()
    array([2])
    """

    def __init__(self, logits):
        self.params = _check_params(logits, "logits")

    @property
    def logits(self):
        """The parameters (N, A)."""
        return self.params

    @property
    def num_actions(self) -> int:
        return self.params.shape[-1]

    def __repr__(self) -> str:
        return f"Categorical(N={self.params.shape[0]}, num_actions={self.num_actions})"

    def log_probs(self):
        """All log-probabilities ``log p_a``, shape (N, A) (normalised, stable log-softmax)."""
        l = self.params
        return l - _logsumexp_rows(l)

    def probs(self):
        """All probabilities ``p_a``, shape (N, A)."""
        return anp.exp(self.log_probs())

    def log_prob(self, actions):
        """Log-probability of one action per row.

        Parameters
        ----------
        actions : int ndarray of shape (N,)
            Integer actions in ``[0, A)``.

        Returns
        -------
        log_p : array of shape (N,)

        Raises
        ------
        ValueError
            If ``actions`` has the wrong shape, is not of an integer dtype, or holds an
            action outside ``[0, A)``.
        """
        actions = np.asarray(actions)
        n, num_actions = self.params.shape
        if actions.shape != (n,):
            raise ValueError(
                f"actions must have shape ({n},), one integer action per row; got shape "
                f"{actions.shape}"
            )
        if n and (
            actions.dtype.kind not in "iu" or actions.min() < 0 or actions.max() >= num_actions
        ):
            what = (f"dtype {actions.dtype}" if actions.dtype.kind not in "iu"
                    else f"values in [{actions.min()}, {actions.max()}]")
            raise ValueError(
                f"actions must be integers in [0, {num_actions}) (one of the {num_actions} "
                f"actions); got {what} (cast with actions.astype(np.int64) if they are "
                "whole numbers stored as floats)"
            )
        return self.log_probs()[np.arange(n), actions.astype(np.intp, copy=False)]

    def entropy(self):
        """Entropy ``-Σ_a p_a log p_a`` per row, shape (N,).

        Terms with ``p_a = 0`` (masked actions, logit ``-inf``) count as 0, the limit of
        ``p log p``; their gradient is 0 as well.
        """
        logp = self.log_probs()
        p = anp.exp(logp)
        support = getval(p) > 0.0  # off it p = 0, and log p (maybe -inf) is replaced by 0
        return -anp.sum(p * anp.where(support, logp, 0.0), axis=-1)

    def kl(self, other: Categorical):
        """``KL(self ‖ other) = Σ_a p_a (log p_a − log q_a)`` per row, shape (N,).

        Terms with ``p_a = 0`` count as 0 (whatever ``q_a``), so masked actions (logit
        ``-inf``) give finite values; ``p_a > 0 = q_a`` gives ``+inf``.
        """
        self._check_other(other)
        logp = self.log_probs()
        p = anp.exp(logp)
        support = getval(p) > 0.0  # off it p = 0, and both logs are replaced by 0
        log_ratio = anp.where(support, logp, 0.0) - anp.where(support, other.log_probs(), 0.0)
        return anp.sum(p * log_ratio, axis=-1)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw one action per row by inverse CDF on ``rng.random`` (plain numpy).

        Parameters
        ----------
        rng : numpy.random.Generator

        Returns
        -------
        actions : int64 ndarray of shape (N,)

        Examples
        --------
        >>> d = Categorical(np.array([[0.0, 0.0, -50.0], [-50.0, -50.0, 0.0]]))
        >>> a = d.sample(np.random.default_rng(0))
        >>> bool(a[0] in (0, 1) and a[1] == 2)
        True
        """
        return self._inverse_cdf(rng)[0]

    def _inverse_cdf(self, rng: np.random.Generator):
        # u ~ U[0, c_A) on the unnormalised cumulative weights c; a = #{k < A-1 : c_k <= u}
        # (counting only the first A-1 partial sums keeps a <= A-1 even if u rounds up to c_A)
        l = np.asarray(self.params, dtype=np.float64)
        shifted = l - np.maximum.reduce(l, axis=1, keepdims=True)
        c = np.exp(shifted)
        np.add.accumulate(c, axis=1, out=c)  # cumulative sums, in place
        total = c[:, -1:]
        u = rng.random((l.shape[0], 1))
        u *= total
        actions = (c[:, :-1] <= u).sum(axis=1)
        return actions, shifted, total[:, 0]

    def sample_with_log_prob(self, rng: np.random.Generator):
        """Draw one action per row and return it with its log-probability (plain numpy).

        Notes
        -----
        With unnormalised weights ``w = exp(l - max l)`` and ``c = cumsum(w)``, a uniform
        ``u ~ U[0, c_A)`` gives ``a = #{k : c_k ≤ u}``, which has probability
        ``w_a / c_A = p_a``. ``log p_a = l_a - max l - log c_A``.

        Returns
        -------
        actions : int64 ndarray of shape (N,)
        log_p : float64 ndarray of shape (N,)

        Examples
        --------
        >>> d = Categorical(np.zeros((2, 4)))
        >>> a, log_p = d.sample_with_log_prob(np.random.default_rng(0))
        >>> np.round(np.exp(log_p), 6)
        array([0.25, 0.25])
        """
        actions, shifted, total = self._inverse_cdf(rng)
        log_p = shifted[np.arange(actions.shape[0]), actions] - np.log(total)
        return actions, log_p

    def mode(self) -> np.ndarray:
        """Most probable action per row, shape (N,)."""
        return np.argmax(np.asarray(self.params), axis=-1)

    @staticmethod
    def fisher_vector(params, u):
        """Fisher information in the logits times ``u``: ``p ⊙ u − p (p·u)`` row by row.

        Parameters
        ----------
        params : array of shape (N, A)
            Logits at which the Fisher is evaluated.
        u : array of shape (N, A)

        Returns
        -------
        Fu : array of shape (N, A)

        Examples
        --------
        >>> l = np.array([[0.0, 1.0, -1.0]])
        >>> p = np.exp(l) / np.exp(l).sum()
        >>> F = np.diag(p[0]) - np.outer(p[0], p[0])
        >>> u = np.array([[1.0, 2.0, 3.0]])
        >>> bool(np.allclose(Categorical.fisher_vector(l, u), u @ F))
        True
        """
        p = anp.exp(params - _logsumexp_rows(params))
        return p * u - p * anp.sum(p * u, axis=-1, keepdims=True)

    @staticmethod
    def fisher_product(params, weights=None):
        """``u ↦ w ⊙ F(params) u`` for many ``u`` at fixed logits (plain numpy).

        :meth:`fisher_vector` recomputes the softmax at every call; the Fisher-vector
        products of one conjugate-gradient solve all share the logits, so here ``p`` and
        ``w p`` are computed once.

        The product is also accurate where :meth:`fisher_vector` is not: near a
        deterministic policy (``p_k ≈ 1``) the entries of ``F u = p ⊙ (u − p·u)`` are
        small differences of order-one numbers. Here they are formed relative to the
        most likely action ``k``: with ``v = u − u_k``, ``F u = p ⊙ (v − p·v)``, and
        ``p·v = Σ_{b≠k} p_b v_b`` is itself small, so every entry keeps its relative
        accuracy (a conjugate-gradient solve at a nearly deterministic policy otherwise
        sees rounding noise as curvature).

        Parameters
        ----------
        params : array of shape (N, A)
        weights : array of shape (N,), optional
            Row weights ``w`` (default ones).

        Returns
        -------
        callable
            ``u`` of shape (N, A) ``->`` ``w[:, None] * fisher_vector(params, u)``.

        Examples
        --------
        >>> l, u = np.array([[0.0, 1.0, -1.0]]), np.array([[1.0, 2.0, 3.0]])
        >>> Fu = Categorical.fisher_product(l, [0.5])(u)
        >>> bool(np.allclose(Fu, 0.5 * Categorical.fisher_vector(l, u)))
        True
        """
        l = np.asarray(_check_params(params, "params"), dtype=np.float64)
        p = np.exp(l - _logsumexp_rows(l))
        wp = _row_weights(weights, l.shape[0]) * p
        rows, k = np.arange(l.shape[0]), np.argmax(l, axis=-1)  # the most likely actions

        def product(u):
            v = u - u[rows, k][:, None]  # u relative to the most likely action
            v -= np.sum(p * v, axis=-1, keepdims=True)  # v - p·v = u - p·u
            v *= wp
            return v

        return product


class DiagGaussian(Distribution):
    """Gaussians with diagonal covariance, parameterised by ``[mean, log_std]``.

    Parameters
    ----------
    params : array of shape (N, 2d)
        ``concatenate([mean, log_std], axis=-1)``; may be an autograd box.

    Notes
    -----
    With ``μ = params[:, :d]``, ``s = params[:, d:]`` and ``σ = exp(s)``:

    * ``log p(x) = -½ Σ_i ((x_i - μ_i)/σ_i)² - Σ_i s_i - (d/2) log 2π``;
    * entropy ``H = Σ_i s_i + (d/2)(1 + log 2π)``;
    * ``KL(p ‖ q) = Σ_i [ (μ_p - μ_q)² / (2σ_q²) + ½(e^{x_i} - 1 - x_i) ]`` with
      ``x_i = 2(s_p - s_q)`` (the usual closed form, written with ``expm1`` so that
      nearby distributions do not cancel) [1]_;
    * Fisher in ``(μ, s)`` is diagonal: ``1/σ²`` on the mean, ``2`` on the log-std.

    References
    ----------
    .. [1] J. Duchi, "Derivations for linear algebra and optimization", Stanford,
       2007 (KL divergence between Gaussians).

    Examples
    --------
    >>> d = DiagGaussian.from_mean_log_std(np.zeros((1, 2)), np.zeros(2))
    >>> np.round(d.log_prob(np.zeros((1, 2))), 4)
    array([-1.8379])
    >>> np.round(d.entropy(), 4)
    array([2.8379])
    >>> q = DiagGaussian.from_mean_log_std(np.ones((1, 2)), np.zeros(2))
    >>> np.round(d.kl(q), 6)
    array([1.])
    """

    def __init__(self, params):
        params = _check_params(params, "params")
        if params.shape[-1] % 2 != 0:
            raise ValueError(
                f"params must have an even number of columns [mean, log_std]; got shape "
                f"{tuple(params.shape)} (use DiagGaussian.from_mean_log_std(mean, log_std))"
            )
        self.params = params
        self.dim = params.shape[-1] // 2

    def __repr__(self) -> str:
        return f"DiagGaussian(N={self.params.shape[0]}, dim={self.dim})"

    @classmethod
    def from_mean_log_std(cls, mean, log_std) -> DiagGaussian:
        """Build from ``mean`` (N, d) and ``log_std`` (d,) or (N, d), broadcasting log_std.

        Examples
        --------
        >>> DiagGaussian.from_mean_log_std(np.zeros((3, 2)), np.array([0.1, 0.2])).params.shape
        (3, 4)
        """
        mean_shape = tuple(getattr(mean, "shape", np.shape(mean)))
        ls_shape = tuple(getattr(log_std, "shape", np.shape(log_std)))
        if len(mean_shape) != 2 or ls_shape not in (mean_shape[1:], mean_shape):
            raise ValueError(
                f"mean must have shape (N, d) and log_std shape (d,) or (N, d); got {mean_shape} "
                f"and {ls_shape}"
            )
        log_std = anp.zeros(mean_shape) + log_std
        return cls(anp.concatenate([mean, log_std], axis=-1))

    @property
    def mean(self):
        return self.params[:, : self.dim]

    @property
    def log_std(self):
        return self.params[:, self.dim :]

    @property
    def std(self):
        return anp.exp(self.log_std)

    def log_prob(self, actions):
        """Log-density of one action per row, shape (N,).

        Parameters
        ----------
        actions : ndarray of shape (N, d)
        """
        actions = np.asarray(actions, dtype=np.float64)
        n = self.params.shape[0]
        if actions.shape != (n, self.dim):
            raise ValueError(
                f"actions must have shape ({n}, {self.dim}); got shape {actions.shape}"
            )
        log_std = self.log_std
        z = (actions - self.mean) * anp.exp(-log_std)
        log_norm = anp.sum(log_std, axis=-1) + 0.5 * self.dim * _LOG_2PI
        return -0.5 * anp.sum(z * z, axis=-1) - log_norm

    def entropy(self):
        """Entropy ``Σ_i s_i + (d/2)(1 + log 2π)`` per row, shape (N,)."""
        return anp.sum(self.log_std, axis=-1) + 0.5 * self.dim * (1.0 + _LOG_2PI)

    def kl(self, other: DiagGaussian):
        """``KL(self ‖ other)`` per row, shape (N,) (closed form, see Notes)."""
        self._check_other(other)
        x = 2.0 * (self.log_std - other.log_std)
        dmu = self.mean - other.mean
        return anp.sum(
            0.5 * dmu * dmu * anp.exp(-2.0 * other.log_std) + 0.5 * (anp.expm1(x) - x), axis=-1
        )

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw ``μ + σ ⊙ ε`` with ``ε ~ N(0, I)`` (plain numpy), shape (N, d)."""
        return self.sample_with_log_prob(rng)[0]

    def sample_with_log_prob(self, rng: np.random.Generator):
        """Draw one action per row and return it with its log-density (plain numpy).

        Returns
        -------
        actions : float64 ndarray of shape (N, d)
        log_p : float64 ndarray of shape (N,)
        """
        params = np.asarray(self.params, dtype=np.float64)
        d = self.dim
        mean, log_std = params[:, :d], params[:, d:]
        eps = rng.standard_normal(mean.shape)
        actions = np.exp(log_std) * eps
        actions += mean
        log_p = -0.5 * np.einsum("ij,ij->i", eps, eps) - log_std.sum(axis=1) - 0.5 * d * _LOG_2PI
        return actions, log_p

    def mode(self) -> np.ndarray:
        """The mean, shape (N, d)."""
        return np.array(self.mean, dtype=np.float64)

    @staticmethod
    def fisher_vector(params, u):
        """Fisher information in ``(μ, log σ)`` times ``u``: ``[u_μ / σ², 2 u_s]``.

        Parameters
        ----------
        params : array of shape (N, 2d)
        u : array of shape (N, 2d)

        Returns
        -------
        Fu : array of shape (N, 2d)

        Examples
        --------
        >>> params = np.array([[0.0, np.log(2.0)]])
        >>> DiagGaussian.fisher_vector(params, np.array([[1.0, 1.0]]))
        array([[0.25, 2.  ]])
        """
        d = params.shape[-1] // 2
        return anp.concatenate(
            [u[:, :d] * anp.exp(-2.0 * params[:, d:]), 2.0 * u[:, d:]], axis=-1
        )

    @staticmethod
    def fisher_product(params, weights=None):
        """``u ↦ w ⊙ F(params) u`` for many ``u`` at fixed parameters (plain numpy).

        The diagonal ``[1/σ², 2]`` (times the row weights) is computed once; a product is
        one elementwise multiplication.

        Parameters
        ----------
        params : array of shape (N, 2d)
        weights : array of shape (N,), optional
            Row weights ``w`` (default ones).

        Returns
        -------
        callable
            ``u`` of shape (N, 2d) ``->`` ``w[:, None] * fisher_vector(params, u)``.

        Examples
        --------
        >>> params = np.array([[0.0, np.log(2.0)]])
        >>> DiagGaussian.fisher_product(params, [2.0])(np.array([[1.0, 1.0]]))
        array([[0.5, 4. ]])
        """
        y = np.asarray(_check_params(params, "params"), dtype=np.float64)
        d = y.shape[-1] // 2
        diag = np.empty_like(y)
        diag[:, :d] = np.exp(-2.0 * y[:, d:])
        diag[:, d:] = 2.0
        diag *= _row_weights(weights, y.shape[0])

        def product(u):
            return diag * u

        return product


def _nvec(nvec) -> tuple[int, ...]:
    """``nvec`` as a tuple of ints >= 1 (the numbers of choices of a MultiDiscrete space)."""
    if isinstance(nvec, np.ndarray):
        sizes = nvec.tolist() if nvec.ndim == 1 and nvec.dtype.kind in "iu" else None
    else:
        try:
            sizes = list(nvec) if not isinstance(nvec, (str, bytes)) else None
        except TypeError:
            sizes = None
    if not sizes or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_)) and n >= 1
        for n in sizes
    ):
        raise ValueError(
            f"nvec must be a non-empty 1-D sequence of positive ints (the number of choices of "
            f"each sub-action, e.g. MultiDiscrete.nvec); got {nvec!r}"
        )
    return tuple(int(n) for n in sizes)


def _check_binary_actions(actions, n: int, d: int, what: str) -> np.ndarray:
    """``actions`` of shape (n, d) with entries in {0, 1} (int or bool), else a ValueError."""
    actions = np.asarray(actions)
    if actions.shape != (n, d):
        raise ValueError(f"actions must have shape ({n}, {d}), one row of {what} per "
                         f"observation; got shape {actions.shape}")
    if actions.dtype.kind not in "iub":
        raise ValueError(f"actions must be integers or bools; got dtype {actions.dtype} (cast "
                         "with actions.astype(np.int64) if they are whole numbers)")
    return actions


class MultiCategorical(Distribution):
    """Independent categorical sub-actions (a ``MultiDiscrete`` action), one logit block each.

    Parameters
    ----------
    logits : array of shape (N, Σ_k n_k)
        The logits of the ``K`` sub-actions side by side, block ``k`` of width ``n_k``;
        may be an autograd box.
    nvec : sequence of int, optional
        ``(n_1, ..., n_K)``, the numbers of choices; defaults to the class's own
        :attr:`nvec` (a class made by :meth:`for_nvec`, which is what a policy's
        ``distribution_class`` is, so that ``distribution_class(params)`` works as for
        :class:`Categorical`).

    Notes
    -----
    With ``p^k = softmax(l^k)`` the ``K`` sub-actions are independent, so every quantity is
    the sum, or the block-diagonal stack, of the :class:`Categorical` ones [1]_:

    * ``log p(a) = Σ_k log p^k_{a_k}``; entropy ``H = Σ_k H(p^k)``;
    * ``KL(p ‖ q) = Σ_k KL(p^k ‖ q^k)``;
    * Fisher in the logits ``F(l) = blockdiag_k(diag(p^k) − p^k p^{kT})``: the score of
      ``l^k`` involves only ``a_k``, and the scores of independent sub-actions are
      uncorrelated with mean zero, so the off-diagonal blocks vanish.

    References
    ----------
    .. [1] T. M. Cover, J. A. Thomas, *Elements of Information Theory*, 2nd ed., Wiley,
       2006, §2.5 (chain rule for entropy and relative entropy).

    Examples
    --------
    >>> d = MultiCategorical(np.log([[0.2, 0.8, 0.5, 0.25, 0.25]]), nvec=[2, 3])
    >>> np.round(np.exp(d.log_prob(np.array([[1, 0]]))), 6)
    array([0.4])
    >>> d.mode()
    array([[1, 0]])
    >>> MultiCategorical.for_nvec([2, 3])(np.zeros((4, 5)))
    MultiCategorical(N=4, nvec=(2, 3))
    """

    nvec: tuple[int, ...] | None = None
    _classes: dict = {}

    def __init__(self, logits, nvec=None):
        params = _check_params(logits, "logits")
        self.nvec = type(self)._resolve_nvec(nvec)
        if params.shape[-1] != sum(self.nvec):
            raise ValueError(
                f"logits must have sum(nvec) = {sum(self.nvec)} columns for nvec {self.nvec}; "
                f"got shape {tuple(params.shape)}"
            )
        self.params = params

    @classmethod
    def for_nvec(cls, nvec) -> type:
        """The subclass whose instances default to ``nvec`` (one class per ``nvec``).

        A policy's ``distribution_class`` is called with the parameters alone
        (``distribution_class(params)``, ``distribution_class.fisher_product(params, w)``);
        this class carries the block sizes so that those calls work unchanged.
        """
        nvec = _nvec(nvec)
        bound = cls._classes.get(nvec)
        if bound is None:
            bound = cls._classes[nvec] = type(cls.__name__, (cls,), {
                "nvec": nvec, "__module__": cls.__module__, "__doc__": cls.__doc__,
                "__qualname__": cls.__qualname__})
        return bound

    @classmethod
    def _resolve_nvec(cls, nvec) -> tuple[int, ...]:
        if nvec is None:
            if cls.nvec is None:
                raise ValueError("nvec is required: pass MultiCategorical(logits, nvec=[...]) "
                                 "or use MultiCategorical.for_nvec(nvec)(logits)")
            return cls.nvec
        return _nvec(nvec)

    @staticmethod
    def _blocks(nvec):
        """``slice`` of each sub-action's logits."""
        ends = np.cumsum(nvec).tolist()
        return [slice(end - n, end) for n, end in zip(nvec, ends, strict=True)]

    def __repr__(self) -> str:
        return f"MultiCategorical(N={self.params.shape[0]}, nvec={self.nvec})"

    def categoricals(self) -> list[Categorical]:
        """The ``K`` independent :class:`Categorical` factors (views of the logit blocks)."""
        return [Categorical(self.params[:, s]) for s in self._blocks(self.nvec)]

    def log_prob(self, actions):
        """``Σ_k log p^k_{a_k}`` per row, shape (N,).

        Parameters
        ----------
        actions : int ndarray of shape (N, K)
            Column ``k`` in ``[0, n_k)``.
        """
        actions = np.asarray(actions)
        n, K = self.params.shape[0], len(self.nvec)
        if actions.shape != (n, K):
            raise ValueError(f"actions must have shape ({n}, {K}), one sub-action per column "
                             f"for nvec {self.nvec}; got shape {actions.shape}")
        return sum(c.log_prob(actions[:, k]) for k, c in enumerate(self.categoricals()))

    def entropy(self):
        """``Σ_k H(p^k)`` per row, shape (N,)."""
        return sum(c.entropy() for c in self.categoricals())

    def kl(self, other: MultiCategorical):
        """``Σ_k KL(p^k ‖ q^k)`` per row, shape (N,)."""
        self._check_other(other)
        return sum(p.kl(q) for p, q in zip(self.categoricals(), other.categoricals(),
                                           strict=True))

    def _check_other(self, other) -> None:
        if not isinstance(other, MultiCategorical) or other.nvec != self.nvec:
            raise ValueError(
                f"other must be a MultiCategorical with nvec {self.nvec} to compute the KL "
                f"divergence; got {other!r}"
            )
        if tuple(other.params.shape) != tuple(self.params.shape):
            raise ValueError(
                f"other.params must have the shape of self.params {tuple(self.params.shape)}; "
                f"got {tuple(other.params.shape)}"
            )

    def sample_with_log_prob(self, rng: np.random.Generator):
        """One sub-action per block by :meth:`Categorical.sample_with_log_prob` (plain numpy).

        Returns
        -------
        actions : int64 ndarray of shape (N, K)
        log_p : float64 ndarray of shape (N,)
        """
        params = np.asarray(self.params, dtype=np.float64)
        actions = np.empty((params.shape[0], len(self.nvec)), dtype=np.int64)
        log_p = np.zeros(params.shape[0])
        for k, s in enumerate(self._blocks(self.nvec)):
            actions[:, k], lp = Categorical(params[:, s]).sample_with_log_prob(rng)
            log_p += lp
        return actions, log_p

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per row, int64 of shape (N, K)."""
        return self.sample_with_log_prob(rng)[0]

    def mode(self) -> np.ndarray:
        """The most probable sub-action of every block, shape (N, K)."""
        params = np.asarray(self.params)
        return np.stack([np.argmax(params[:, s], axis=-1) for s in self._blocks(self.nvec)],
                        axis=-1)

    @classmethod
    def fisher_vector(cls, params, u, nvec=None):
        """Fisher information in the logits times ``u``: :meth:`Categorical.fisher_vector`
        on each block (the Fisher is block diagonal).

        Parameters
        ----------
        params, u : arrays of shape (N, Σ n_k)
        nvec : sequence of int, optional
            Defaults to the class's :attr:`nvec`.

        Examples
        --------
        >>> l, u = np.zeros((1, 4)), np.array([[1.0, 0.0, 2.0, 0.0]])
        >>> MultiCategorical.fisher_vector(l, u, nvec=[2, 2])
        array([[ 0.25, -0.25,  0.5 , -0.5 ]])
        """
        blocks = cls._blocks(cls._resolve_nvec(nvec))
        return anp.concatenate(
            [Categorical.fisher_vector(params[:, s], u[:, s]) for s in blocks], axis=-1)

    @classmethod
    def fisher_product(cls, params, weights=None, nvec=None):
        """``u ↦ w ⊙ F(params) u`` at fixed logits: one :meth:`Categorical.fisher_product`
        per block (each precomputes its softmax once and keeps its relative accuracy near a
        deterministic sub-action).

        Parameters
        ----------
        params : array of shape (N, Σ n_k)
        weights : array of shape (N,), optional
        nvec : sequence of int, optional

        Returns
        -------
        callable
            ``u`` of shape (N, Σ n_k) ``->`` ``w[:, None] * fisher_vector(params, u)``.
        """
        l = np.asarray(_check_params(params, "params"), dtype=np.float64)
        blocks = cls._blocks(cls._resolve_nvec(nvec))
        products = [Categorical.fisher_product(l[:, s], weights) for s in blocks]

        def product(u):
            out = np.empty_like(l)
            for s, f in zip(blocks, products, strict=True):
                out[:, s] = f(u[:, s])
            return out

        return product


def _softplus(l):
    """``log(1 + e^l) = logaddexp(0, l)`` elementwise: stable for every ``l``, and its
    autograd derivatives ``e^{l − softplus(l)}`` are smooth to every order (a form with
    ``|l|`` has a second derivative that divides by ``|l|`` near 0)."""
    return anp.logaddexp(0.0, l)


class Bernoulli(Distribution):
    """Independent Bernoulli bits (a ``MultiBinary`` action), parameterised by logits.

    Parameters
    ----------
    logits : array of shape (N, d)
        ``l_i = log(p_i / (1 − p_i))``, ``p_i = P(x_i = 1)``; may be an autograd box.

    Notes
    -----
    Bit ``i`` is the two-action :class:`Categorical` with logits ``(0, l_i)``, and the
    formulas are that distribution's written with ``softplus(l) = log(1 + e^l)`` (the
    log-sum-exp of ``(0, l)``): ``log p_i = −softplus(−l_i)``, ``log(1 − p_i) =
    −softplus(l_i)``.

    * ``log p(x) = Σ_i [x_i l_i − softplus(l_i)]``;
    * entropy ``H = Σ_i [softplus(l_i) − p_i l_i]``;
    * ``KL(p ‖ q) = Σ_i [p_i (log p_i − log q_i) + (1 − p_i)(log(1 − p_i) − log(1 − q_i))]``;
    * Fisher in the logits is diagonal, ``F(l) = diag(p ⊙ (1 − p))``: the score of ``l_i``
      is ``x_i − p_i``, whose variance is ``p_i (1 − p_i)``, and the bits are independent.

    Examples
    --------
    >>> d = Bernoulli(np.array([[0.0, np.log(3.0)]]))
    >>> np.round(np.exp(d.log_prob(np.array([[1, 1]]))), 6)
    array([0.375])
    >>> d.mode()
    array([[0, 1]])
    >>> Bernoulli.fisher_vector(d.params, np.ones((1, 2)))
    array([[0.25  , 0.1875]])
    """

    def __init__(self, logits):
        self.params = _check_params(logits, "logits")

    @property
    def logits(self):
        """The parameters (N, d)."""
        return self.params

    @property
    def dim(self) -> int:
        return self.params.shape[-1]

    def __repr__(self) -> str:
        return f"Bernoulli(N={self.params.shape[0]}, dim={self.dim})"

    def log_prob(self, actions):
        """``Σ_i [x_i l_i − softplus(l_i)]`` per row, shape (N,).

        Parameters
        ----------
        actions : ndarray of shape (N, d) with entries 0 or 1 (ints or bools)
        """
        n, d = self.params.shape
        x = _check_binary_actions(actions, n, d, f"{d} bits")
        if x.size and not np.all((x == 0) | (x == 1)):
            raise ValueError("actions must hold only 0 and 1 (one bit per entry); got values "
                             f"in [{x.min()}, {x.max()}]")
        l = self.params
        return anp.sum(x.astype(np.float64) * l - _softplus(l), axis=-1)

    def entropy(self):
        """``Σ_i [softplus(l_i) − p_i l_i]`` per row, shape (N,)."""
        l = self.params
        p = anp.exp(-_softplus(-l))
        return anp.sum(_softplus(l) - p * l, axis=-1)

    def kl(self, other: Bernoulli):
        """``KL(self ‖ other)`` per row, shape (N,) (see Notes), finite for finite logits."""
        self._check_other(other)
        l, m = self.params, other.params
        log_p, log_1p = -_softplus(-l), -_softplus(l)
        p = anp.exp(log_p)
        return anp.sum(p * (log_p + _softplus(-m)) + (1.0 - p) * (log_1p + _softplus(m)),
                       axis=-1)

    def sample_with_log_prob(self, rng: np.random.Generator):
        """Draw ``x_i = [u_i < p_i]`` with ``u ~ U[0, 1)`` (plain numpy) and its log-probability.

        Returns
        -------
        actions : int64 ndarray of shape (N, d)
        log_p : float64 ndarray of shape (N,)
        """
        l = np.asarray(self.params, dtype=np.float64)
        u = rng.random(l.shape)
        p = np.exp(-_softplus(-l))
        x = (u < p).astype(np.int64)
        return x, np.sum(x * l - _softplus(l), axis=-1)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per row, int64 of shape (N, d)."""
        return self.sample_with_log_prob(rng)[0]

    def mode(self) -> np.ndarray:
        """``[l_i > 0]`` (the more probable bit; 0 at a tie), int64 of shape (N, d)."""
        return (np.asarray(self.params) > 0.0).astype(np.int64)

    @staticmethod
    def fisher_vector(params, u):
        """Fisher information in the logits times ``u``: ``p ⊙ (1 − p) ⊙ u``.

        ``p (1 − p) = exp(−softplus(l) − softplus(−l))`` has full relative accuracy even
        where ``p`` rounds to 0 or 1.

        Parameters
        ----------
        params, u : arrays of shape (N, d)
        """
        return anp.exp(-_softplus(params) - _softplus(-params)) * u

    @staticmethod
    def fisher_product(params, weights=None):
        """``u ↦ w ⊙ F(params) u`` at fixed logits: the diagonal ``w p (1 − p)`` is computed
        once; a product is one multiplication.

        Parameters
        ----------
        params : array of shape (N, d)
        weights : array of shape (N,), optional

        Returns
        -------
        callable
            ``u`` of shape (N, d) ``->`` ``w[:, None] * fisher_vector(params, u)``.
        """
        l = np.asarray(_check_params(params, "params"), dtype=np.float64)
        diag = np.exp(-_softplus(l) - _softplus(-l))
        diag *= _row_weights(weights, l.shape[0])

        def product(u):
            return diag * u

        return product
