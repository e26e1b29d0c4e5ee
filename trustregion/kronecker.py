r"""Kronecker-factored block-diagonal curvature (K-FAC) with an exact inverse product.

A block-diagonal approximation of a curvature matrix (Fisher, Gauss-Newton) in which each
layer's block is a Kronecker product :math:`A_l \otimes G_l` of two small factors, and any
remaining parameters form dense blocks :math:`B_j`. Products with the operator and with its
exact inverse cost a few small matrix products per block. The factors come from the caller
(the :mod:`rl` policies compute them from a batch); nothing here knows what they mean.

Layout: block ``l`` covers the next ``a_l g_l`` entries of the flat vector, read as the
row-major matrix :math:`V_l` of shape ``(a_l, g_l)``, and

.. math::

    (A_l \otimes G_l)\,\mathrm{vec}(V_l) = \mathrm{vec}(A_l V_l G_l),
    \qquad
    (A_l \otimes G_l)^{-1}\,\mathrm{vec}(V_l) = \mathrm{vec}(A_l^{-1} V_l G_l^{-1})

(row-major ``vec``; with a column-major ``vec`` and :math:`V^T` this is Martens & Grosse's
:math:`\mathrm{vec}(G^{-1} V A^{-1})`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse.linalg import LinearOperator

from trustregion._checks import nonnegative_scalar

__all__ = ["KroneckerFactoredOperator", "kronecker_factored_operator"]


def _symmetric_factor(M, name: str) -> np.ndarray:
    try:
        M = np.array(M, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a square matrix of real numbers") from exc
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix; got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or inf")
    scale = max(1.0, float(np.max(np.abs(M))))
    if np.max(np.abs(M - M.T)) > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric (a second-moment matrix); it is not")
    return 0.5 * (M + M.T)


def _inverse_spd(M, name: str) -> np.ndarray:
    """The inverse of a symmetric positive definite ``M`` by its eigendecomposition."""
    lam, Q = np.linalg.eigh(M)
    if not lam[0] > 0.0:
        raise ValueError(
            f"{name} is not positive definite (smallest eigenvalue {lam[0]:.3g}); pass "
            "damping > 0 to invert the factors"
        )
    return (Q / lam) @ Q.T


class KroneckerFactoredOperator(LinearOperator):
    r"""A block-diagonal ``LinearOperator`` of Kronecker-factored and dense blocks.

    Build it with :func:`kronecker_factored_operator`, which validates the blocks and applies
    the damping. ``K @ v`` is the product with the (damped) approximation;
    :meth:`inverse` is the exact inverse product, for a preconditioner ``M`` of
    :func:`trustregion.cg` or a natural-gradient direction.

    Attributes
    ----------
    blocks : list
        ``("kron", A, G)`` or ``("dense", B)`` per block, the damped factors in order.
    """

    def __init__(self, blocks, n):
        super().__init__(dtype=np.float64, shape=(n, n))
        self.blocks = blocks
        self._inverses = None

    def _apply(self, v, inverse):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        out = np.empty_like(v)
        offset = 0
        for block in self._factors(inverse):
            if block[0] == "kron":
                _, A, G = block
                size = A.shape[0] * G.shape[0]
                V = v[offset:offset + size].reshape(A.shape[0], G.shape[0])
                out[offset:offset + size] = (A @ V @ G).reshape(-1)  # vec(A V G)
            else:
                B = block[1]
                size = B.shape[0]
                out[offset:offset + size] = B @ v[offset:offset + size]
            offset += size
        return out

    def _factors(self, inverse):
        if not inverse:
            return self.blocks
        if self._inverses is None:  # computed once, on the first inverse product
            inverses = []
            for i, block in enumerate(self.blocks):
                if block[0] == "kron":
                    inverses.append(("kron", _inverse_spd(block[1], f"blocks[{i}] A"),
                                     _inverse_spd(block[2], f"blocks[{i}] G")))
                else:
                    inverses.append(("dense", _inverse_spd(block[1], f"blocks[{i}] B")))
            self._inverses = inverses
        return self._inverses

    def _matvec(self, v):
        return self._apply(v, inverse=False)

    def _rmatvec(self, v):  # symmetric
        return self._apply(v, inverse=False)

    def _adjoint(self):
        return self

    def inverse(self) -> LinearOperator:
        """The exact inverse product ``v -> K^{-1} v`` as a symmetric ``LinearOperator``.

        Per block :math:`\\mathrm{vec}(A^{-1} V G^{-1})` or :math:`B^{-1} v`, the factors'
        inverses computed once by their eigendecompositions. Raises ``ValueError`` if a
        factor is not positive definite (pass ``damping > 0``).
        """
        self._factors(inverse=True)  # validate now, not in the middle of a solve
        n = self.shape[0]
        apply = self._apply
        return LinearOperator((n, n), matvec=lambda v: apply(v, inverse=True),
                              rmatvec=lambda v: apply(v, inverse=True), dtype=np.float64)

    def todense(self) -> np.ndarray:
        """The matrix itself, block by block (for tests and small problems)."""
        n = self.shape[0]
        M = np.zeros((n, n))
        offset = 0
        for block in self.blocks:
            B = np.kron(block[1], block[2]) if block[0] == "kron" else block[1]
            size = B.shape[0]
            M[offset:offset + size, offset:offset + size] = B
            offset += size
        return M

    def __repr__(self):
        n = self.shape[0]
        kinds = ", ".join(
            f"{b[1].shape[0]}x{b[2].shape[0]} kron" if b[0] == "kron" else f"{b[1].shape[0]} dense"
            for b in self.blocks)
        return f"<{n}x{n} Kronecker-factored operator [{kinds}]>"


def kronecker_factored_operator(blocks, *, damping=0.0, pi_damping=True):
    r"""A Kronecker-factored block-diagonal approximation, damped, with an exact inverse.

    Parameters
    ----------
    blocks : sequence
        In the order of the flat parameter vector: a pair ``(A, G)`` of symmetric positive
        semidefinite factors for a block :math:`A \otimes G` over the next
        ``len(A) * len(G)`` entries (the row-major matrix ``V`` of shape
        ``(len(A), len(G))``), or a single symmetric matrix ``B`` for a dense block.
    damping : float, optional
        Tikhonov damping :math:`\lambda \ge 0` (default 0). Dense blocks become
        :math:`B + \lambda I`; Kronecker blocks are damped factor by factor (see Notes).
    pi_damping : bool, optional
        Split :math:`\lambda` between the two factors by Martens & Grosse's
        :math:`\pi` (True, their §6.3) or evenly, :math:`\sqrt\lambda` each (False).

    Returns
    -------
    KroneckerFactoredOperator
        ``K @ v`` the damped approximation; ``K.inverse()`` its exact inverse product.

    Raises
    ------
    ValueError
        For a factor that is not a finite symmetric square matrix, a negative or
        non-finite damping, or blocks that cover no entries.

    Notes
    -----
    The factored Tikhonov damping of [1]_ (§6.3) replaces :math:`A \otimes G` by

    .. math::

        (A + \pi\sqrt\lambda\, I) \otimes (G + \tfrac{1}{\pi}\sqrt\lambda\, I),
        \qquad
        \pi = \sqrt{\frac{\operatorname{tr}(A) / \dim A}{\operatorname{tr}(G) / \dim G}},

    which is :math:`A \otimes G + \lambda I` plus the cross terms
    :math:`\pi\sqrt\lambda\, I \otimes G + \tfrac{\sqrt\lambda}{\pi} A \otimes I`; :math:`\pi`
    makes the two factors' damping proportional to their average eigenvalues and
    minimises a bound on the cross terms' norm. Where a trace is zero, or the ratio of the
    square roots of the traces leaves the float range, :math:`\pi = 1`.
    The operator and its inverse use the same damped factors, so ``K.inverse()`` is the
    exact inverse of ``K``; both are symmetric positive definite when :math:`\lambda > 0`.

    References
    ----------
    .. [1] J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored
       approximate curvature", ICML 2015.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> A, G = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([[3.0]])
    >>> K = tr.kronecker_factored_operator([(A, G), np.eye(1)], damping=0.0)
    >>> K.shape
    (3, 3)
    >>> bool(np.allclose(K.todense(), [[6.0, 1.5, 0.0], [1.5, 3.0, 0.0], [0.0, 0.0, 1.0]]))
    True
    >>> v = np.array([1.0, -1.0, 2.0])
    >>> bool(np.allclose(K @ (K.inverse() @ v), v))
    True
    """
    lam = nonnegative_scalar(damping, "damping")
    if not isinstance(pi_damping, (bool, np.bool_)):
        raise ValueError(f"pi_damping must be True or False; got {pi_damping!r}")
    if isinstance(blocks, np.ndarray) or not hasattr(blocks, "__iter__"):
        raise ValueError("blocks must be a sequence of (A, G) pairs and dense matrices B")
    damped, n, root = [], 0, math.sqrt(lam)
    for i, block in enumerate(blocks):
        if isinstance(block, tuple) and len(block) == 2:
            A = _symmetric_factor(block[0], f"blocks[{i}][0] (A)")
            G = _symmetric_factor(block[1], f"blocks[{i}][1] (G)")
            pi = 1.0
            if pi_damping:
                mean_a = float(np.trace(A)) / A.shape[0]
                mean_g = float(np.trace(G)) / G.shape[0]
                if mean_a > 0 and mean_g > 0:
                    # Martens & Grosse §6.3; the square roots first, so that a ratio of
                    # traces beyond the float range (a subnormal trace) does not overflow
                    pi = math.sqrt(mean_a) / math.sqrt(mean_g)
                    if not 0.0 < pi < math.inf:
                        pi = 1.0
            A = A + pi * root * np.eye(A.shape[0])
            G = G + (root / pi) * np.eye(G.shape[0])
            damped.append(("kron", A, G))
            n += A.shape[0] * G.shape[0]
        else:
            B = _symmetric_factor(block, f"blocks[{i}] (B)")
            damped.append(("dense", B + lam * np.eye(B.shape[0])))
            n += B.shape[0]
    if n == 0:
        raise ValueError("blocks must cover at least one entry; got none")
    return KroneckerFactoredOperator(damped, n)
