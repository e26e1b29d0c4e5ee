"""Matrix-free curvature operators: Hessian-, Gauss-Newton- and Fisher-vector products.

Every builder returns a square float64 :class:`scipy.sparse.linalg.LinearOperator`
whose product ``A @ v`` costs a small constant number of function evaluations and
never forms the matrix: the Hessian by Pearlmutter's trick (a reverse pass through
the gradient), the Gauss-Newton and Fisher matrices as ``J^T B J v`` with one
forward-mode Jacobian-vector product and one vector-Jacobian product. They plug
into :func:`trustregion.cg`, :func:`trustregion.steihaug` and
:func:`trustregion.natural_step` as ``A``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from autograd import make_jvp, make_vjp
from autograd.extend import vspace
from autograd.tracer import getval
from scipy.sparse.linalg import LinearOperator

from trustregion._checks import (
    as_operator,
    as_vector,
    autograd_error,
    nonnegative_scalar,
    reject_complex,
)

__all__ = [
    "Linearization",
    "hessian_operator",
    "gauss_newton_operator",
    "fisher_operator",
    "empirical_fisher_operator",
    "damped",
]


class _ProductOperator(LinearOperator):
    """A square float64 ``LinearOperator`` defined by a product ``v -> A v``.

    ``product`` receives a 1-D float64 vector of length ``n``. When ``adjoint`` is
    None the operator is symmetric: ``rmatvec`` is ``matvec`` and ``A.H`` is ``A``.
    """

    def __init__(self, n, product, *, adjoint=None, block=None, kind="operator"):
        super().__init__(dtype=np.float64, shape=(n, n))
        self._product = product
        self._adjoint_product = adjoint
        self._block = block
        self.kind = kind

    def _matvec(self, v):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        return np.asarray(self._product(v), dtype=np.float64).reshape(-1)

    def _rmatvec(self, v):
        if self._adjoint_product is None:
            return self._matvec(v)
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        return np.asarray(self._adjoint_product(v), dtype=np.float64).reshape(-1)

    def _matmat(self, X):
        if self._block is None:
            return super()._matmat(X)
        return np.asarray(self._block(np.asarray(X, dtype=np.float64)), dtype=np.float64)

    def _rmatmat(self, X):
        if self._adjoint_product is None:
            return self._matmat(X)
        X = np.asarray(X, dtype=np.float64)
        return np.column_stack([self._rmatvec(X[:, j]) for j in range(X.shape[1])])

    def _adjoint(self):
        if self._adjoint_product is None:
            return self
        return super()._adjoint()

    def __repr__(self):
        n = self.shape[0]
        return f"<{n}x{n} {self.kind} with dtype=float64>"


class Linearization:
    """A model linearised at a point: its output ``y`` and the products ``J v``, ``J^T w``.

    Pass one as the ``model`` of :func:`gauss_newton_operator` or
    :func:`fisher_operator` to use hand-written Jacobian products instead of
    autograd's trace (e.g. the kernels of :meth:`rl.networks.MLP.linearize`).

    Parameters
    ----------
    output : array_like
        ``y = model(x)``, a finite real array of any shape.
    jvp : callable
        ``v -> J v``: a vector of length ``n`` to an array shaped like ``output``.
    vjp : callable
        ``w -> J^T w``: an array shaped like ``output`` to a vector of length ``n``.

    Notes
    -----
    The two products must be each other's adjoints, ``<w, J v> = <J^T w, v>``; the
    operators built on them are then symmetric. :meth:`check` tests this identity on
    random vectors (the dot-product test).

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> A = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]])
    >>> lin = tr.Linearization(A @ [1.0, 1.0], lambda v: A @ v, lambda w: A.T @ w)
    >>> G = tr.gauss_newton_operator(lin, np.ones(2), np.eye(3))
    >>> bool(np.allclose(G @ np.eye(2), A.T @ A))
    True
    >>> lin.check(2, np.random.default_rng(0)) < 1e-14
    True
    """

    def __init__(self, output, jvp, vjp):
        if not callable(jvp) or not callable(vjp):
            raise ValueError(
                "jvp and vjp must be callables (v -> J v and w -> J^T w); got "
                f"{type(jvp).__name__} and {type(vjp).__name__}"
            )
        self.output = np.asarray(output)
        self.jvp = jvp
        self.vjp = vjp

    def __repr__(self):
        return f"Linearization(output shape {self.output.shape})"

    def check(self, n, rng) -> float:
        """Relative error of the dot-product test ``<w, J v> = <J^T w, v>``.

        Parameters
        ----------
        n : int
            Length of the input vector ``v``.
        rng : numpy.random.Generator
            Draws standard normal ``v`` and ``w``.

        Returns
        -------
        float
            ``|<w, J v> - <J^T w, v>| / max(|<w, J v>|, |<J^T w, v>|, tiny)``.
        """
        v = rng.standard_normal(n)
        w = rng.standard_normal(self.output.shape)
        lhs = float(np.sum(w * np.asarray(self.jvp(v))))
        rhs = float(np.asarray(self.vjp(w)).reshape(-1) @ v)
        return abs(lhs - rhs) / max(abs(lhs), abs(rhs), np.finfo(float).tiny)


def _as_point(x) -> np.ndarray:
    """``x`` as a private finite 1-D float64 copy with at least one entry."""
    x = as_vector(x, "x")
    if x.size == 0:
        raise ValueError("x must have at least one entry; got an empty vector")
    return x


_JVP_MODES = ("forward", "reverse")


def _linearize(model, x, jvp):
    """Trace ``model`` once at ``x``: its output ``y`` and the products ``J v``, ``J^T w``.

    The reverse-mode trace is recorded here, once, so ``J^T w`` is one reverse pass.
    ``J v`` is a forward-mode pass through ``model`` (``jvp="forward"``), or one
    reverse pass through the recorded trace of the linear map ``w -> J^T w``
    (``jvp="reverse"``, traced here as well).
    A :class:`Linearization` brings its own products; ``jvp`` is then ignored.
    """
    if isinstance(model, Linearization):
        return _own_linearization(model, x)
    if not callable(model):
        raise ValueError(
            "model must be a callable theta -> y or a trustregion.Linearization; got "
            f"{type(model).__name__}"
        )
    if jvp not in _JVP_MODES:
        raise ValueError(f"jvp must be one of {_JVP_MODES}; got {jvp!r}")
    vjp, y = make_vjp(model)(x)
    y = getval(y)
    y_arr = np.asarray(y)
    if y_arr.dtype.kind not in "fiu":
        raise ValueError(
            f"model(x) must return a real array (any shape); got dtype {y_arr.dtype} "
            f"from {type(y).__name__}"
        )
    if y_arr.size == 0:
        raise ValueError("model(x) returned an empty array; it must have at least one entry")
    if not np.all(np.isfinite(y_arr)):
        raise ValueError("model(x) contains NaN or inf; pass a point x where the model is finite")
    y_space = vspace(y)
    if jvp == "forward":
        forward = make_jvp(model)(x)

        def jacobian_vector(v):
            return np.reshape(forward(v)[1], -1)
    else:
        # w -> J^T w is linear, so its vector-Jacobian product at any w is v -> J v
        transposed, _ = make_vjp(vjp)(y_space.zeros())

        def jacobian_vector(v):
            return np.reshape(transposed(v), -1)

    def vector_jacobian(w):
        return vjp(np.asarray(w, dtype=y_arr.dtype).reshape(y_space.shape))

    return y_arr, jacobian_vector, vector_jacobian


def _own_linearization(lin, x):
    """Validate a :class:`Linearization` taken at ``x`` and flatten its products."""
    y_arr = lin.output
    if y_arr.dtype.kind not in "fiu" or y_arr.size == 0:
        raise ValueError(
            f"Linearization.output must be a non-empty real array; got dtype {y_arr.dtype}, "
            f"shape {y_arr.shape}"
        )
    if not np.all(np.isfinite(y_arr)):
        raise ValueError("Linearization.output contains NaN or inf; linearise at a point where "
                         "the model is finite")
    n, shape = x.size, y_arr.shape

    def jacobian_vector(v):
        Jv = np.asarray(lin.jvp(v), dtype=np.float64)
        if Jv.size != y_arr.size:
            raise ValueError(f"Linearization.jvp returned shape {Jv.shape}; it must return an "
                             f"array shaped like the output, {shape}")
        return Jv.reshape(-1)

    def vector_jacobian(w):
        JTw = np.asarray(lin.vjp(np.asarray(w, dtype=np.float64).reshape(shape)),
                         dtype=np.float64).reshape(-1)
        if JTw.size != n:
            raise ValueError(f"Linearization.vjp returned {JTw.size} entries; the point x has "
                             f"{n}, and J^T w must have as many")
        return JTw

    # the products' shapes are checked at every product, so a wrong one fails at the first
    # product with the message above; not here, where two trial products would cost as
    # much as a third of a CG iteration
    return y_arr.astype(np.float64, copy=False), jacobian_vector, vector_jacobian


def _output_map(fn, y_arr, name, *, with_y):
    """Wrap an output-space map as ``u (flat) -> B u (flat)`` with a shape check at build time."""
    m = y_arr.size

    if with_y:
        def apply(u):
            return fn(y_arr, u.reshape(y_arr.shape))
    else:
        def apply(u):
            return fn(u.reshape(y_arr.shape))

    def flat(u):
        Bu = np.asarray(apply(u), dtype=np.float64)
        if Bu.size != m:
            raise ValueError(
                f"{name} returned an array of shape {Bu.shape} for an input shaped like "
                f"model(x), {y_arr.shape}; it must return an array of that shape"
            )
        return Bu.reshape(-1)

    flat(np.zeros(m))  # checked once before any product is taken
    return flat


def hessian_operator(f, x, *, args=()) -> LinearOperator:
    """The Hessian of a scalar function at a point, as a matrix-free operator.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> scalar``, traceable by autograd (use ``autograd.numpy``).
    x : array_like, shape (n,)
        The point; a finite 1-D vector. It is copied.
    args : tuple, optional
        Extra arguments passed to ``f`` (held fixed).

    Returns
    -------
    H : LinearOperator, shape (n, n), dtype float64
        ``H @ v = nabla^2 f(x) v``; symmetric, so ``H.rmatvec`` is ``H.matvec``.
        It also carries ``H.x`` (the point), ``H.fun`` (``f(x)``) and ``H.grad``
        (``nabla f(x)``), computed while building it.

    Raises
    ------
    ValueError
        If ``x`` is not a finite non-empty real 1-D vector, ``f`` does not return a
        real scalar, autograd cannot trace ``f`` (e.g. it calls ``float`` or plain
        ``numpy`` on its argument), or ``f(x)`` or its gradient is not finite.

    Notes
    -----
    Pearlmutter's identity: the Hessian-vector product is the directional
    derivative of the gradient,

    .. math:: \\nabla^2 f(x)\\, v = \\frac{d}{dr} \\nabla f(x + r v)\\Big|_{r=0}
              = \\big(v^T \\nabla^2 f(x)\\big)^T ,

    so it costs a small multiple of one gradient and no n-by-n array is ever
    formed. The gradient computation is traced once, when the operator is built
    (``autograd.make_hvp``); each product is one reverse pass through that trace,
    and symmetry of the Hessian makes the vector-Jacobian product of the gradient
    equal to ``nabla^2 f(x) v``.

    References
    ----------
    .. [1] B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural
       Computation 6(1), 147-160, 1994.
    .. [2] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer,
       2006, §8.1 (Hessian-vector products).

    Examples
    --------
    >>> import autograd.numpy as anp
    >>> import numpy as np
    >>> import trustregion as tr
    >>> f = lambda x: 0.25 * anp.sum(x ** 4)          # Hessian diag(3 x^2)
    >>> H = tr.hessian_operator(f, np.array([1.0, 2.0]))
    >>> H.shape, H.dtype
    ((2, 2), dtype('float64'))
    >>> print(np.round(H @ np.array([1.0, 1.0]), 12).tolist())
    [3.0, 12.0]
    """
    if not callable(f):
        raise ValueError(f"f must be a callable x -> scalar; got {type(f).__name__}")
    x = _as_point(x)
    if not isinstance(args, tuple):
        raise ValueError(f"args must be a tuple of extra arguments to f; got {type(args).__name__}")
    record = {}

    def gradient(z):
        vjp, value = make_vjp(f)(z, *args)
        if vspace(value).size != 1 or np.iscomplexobj(getval(value)):
            raise ValueError(
                f"f must return a real scalar; got an output of shape {np.shape(getval(value))} "
                "(for a vector-valued model use gauss_newton_operator)"
            )
        record["fun"] = float(np.reshape(getval(value), ()))
        return vjp(vspace(value).ones())

    # autograd.make_hvp: trace the gradient once, then each product is one VJP of it
    try:
        hvp, g = make_vjp(gradient)(x)
    except (TypeError, AttributeError, NotImplementedError) as exc:
        raise autograd_error(
            "f", "build the operator from your own product v -> H v (a LinearOperator)"
        ) from exc
    g = np.array(getval(g), dtype=np.float64)
    if not np.isfinite(record["fun"]) or not np.all(np.isfinite(g)):
        raise ValueError(
            "f(x) or its gradient contains NaN or inf; pass a point x where f is finite"
        )
    H = _ProductOperator(x.size, hvp, kind="Hessian operator (Pearlmutter)")
    H.x, H.fun, H.grad = x, record["fun"], g
    return H


def _jtbj_operator(model, x, apply_B, apply_B_adjoint, kind, jvp):
    """``v -> J^T B J v`` at ``x``: one Jacobian-vector and one vector-Jacobian product."""
    y_arr, J, JT = _linearize(model, x, jvp)
    B = apply_B(y_arr)

    def product(v):
        return JT(B(J(v)))  # J^T (B (J v))

    adjoint = None
    if apply_B_adjoint is not None:
        B_adjoint = apply_B_adjoint(y_arr)

        def adjoint(v):
            return JT(B_adjoint(J(v)))  # J^T (B^T (J v))

    A = _ProductOperator(x.size, product, adjoint=adjoint, kind=kind)
    A.x, A.y = x, y_arr
    return A


def gauss_newton_operator(model, x, output_hessian, *, jvp: str = "forward") -> LinearOperator:
    """The generalized Gauss-Newton matrix ``J^T H_out J`` as a matrix-free operator.

    Parameters
    ----------
    model : callable or Linearization
        ``model(theta) -> y``, an array of any shape, traceable by autograd; or a
        :class:`Linearization` taken at ``x`` (hand-written ``J v`` and ``J^T w``).
    x : array_like, shape (n,)
        The point; a finite 1-D vector. It is copied.
    output_hessian : ndarray, sparse matrix, LinearOperator or callable
        The Hessian ``H_out`` of the loss with respect to the model output: an
        ``(m, m)`` matrix or operator acting on the flattened output
        (``m = model(x).size``), or a callable ``u -> H_out u`` taking and returning
        arrays shaped like ``y``. A callable is taken to be symmetric.
    jvp : {"forward", "reverse"}, optional
        How ``J v`` is computed. ``"forward"`` (default): a forward-mode pass through
        ``model`` (``autograd.make_jvp``) on every product. ``"reverse"``: the
        reverse-mode trace of ``w -> J^T w`` is recorded once more at build time and
        each ``J v`` is one reverse pass through it -- a dearer build, cheaper products
        (worth it when many products are taken at one point, as in conjugate gradient).

    Returns
    -------
    G : LinearOperator, shape (n, n), dtype float64
        ``G @ v = J^T H_out J v`` with ``J = dy/dtheta`` at ``x``; ``G.rmatvec`` is
        ``J^T H_out^T J v``. It also carries ``G.x`` and ``G.y = model(x)``.

    Raises
    ------
    ValueError
        If ``x`` is not a finite non-empty 1-D vector, ``model(x)`` is not a finite
        real array, ``output_hessian`` does not act on arrays of ``model(x)``'s size, or
        ``jvp`` is not ``"forward"`` or ``"reverse"``; at a product, if a
        :class:`Linearization`'s ``jvp`` or ``vjp`` returns the wrong shape.

    Notes
    -----
    For a loss ``L(theta) = l(model(theta))`` the Hessian splits as

    .. math:: \\nabla^2 L = J^T \\nabla^2 l\\, J + \\sum_i \\frac{\\partial l}{\\partial y_i}
              \\nabla^2 y_i ,

    and the Gauss-Newton matrix keeps the first term, ``G = J^T H_out J``. It is
    positive semidefinite whenever ``H_out`` is. A product costs one forward-mode
    Jacobian-vector product ``J v`` (``autograd.make_jvp``) and one
    vector-Jacobian product ``J^T w`` (``autograd.make_vjp``, whose trace is
    recorded once when the operator is built); ``J`` is never formed.

    References
    ----------
    .. [1] N. N. Schraudolph, "Fast curvature matrix-vector products for
       second-order gradient descent", Neural Computation 14(7), 1723-1738, 2002.
    .. [2] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer,
       2006, §10.3 (the Gauss-Newton method).

    Examples
    --------
    Least squares ``l(y) = 1/2 ||y||^2`` has ``H_out = I`` and ``G = J^T J``:

    >>> import autograd.numpy as anp
    >>> import numpy as np
    >>> import trustregion as tr
    >>> model = lambda t: anp.array([t[0] * t[1], t[0] + 2.0 * t[1]])
    >>> G = tr.gauss_newton_operator(model, np.array([1.0, 3.0]), np.eye(2))
    >>> J = np.array([[3.0, 1.0], [1.0, 2.0]])
    >>> bool(np.allclose(G @ np.eye(2), J.T @ J))
    True
    """
    x = _as_point(x)

    if isinstance(output_hessian, (LinearOperator, np.ndarray, list, tuple)) or sp.issparse(
        output_hessian
    ):
        def operator_on(y_arr):
            m = y_arr.size
            shape = tuple(getattr(output_hessian, "shape", np.shape(output_hessian)))
            if shape != (m, m):
                raise ValueError(
                    f"output_hessian has shape {shape} but model(x) has {m} entries (shape "
                    f"{y_arr.shape}); pass a ({m}, {m}) matrix acting on the flattened output"
                )
            return as_operator(output_hessian, "output_hessian", n=m)

        return _jtbj_operator(
            model,
            x,
            lambda y_arr: operator_on(y_arr).matvec,
            lambda y_arr: operator_on(y_arr).rmatvec,
            "Gauss-Newton operator",
            jvp,
        )
    if callable(output_hessian):
        def apply_B(y_arr):
            return _output_map(output_hessian, y_arr, "output_hessian", with_y=False)

        return _jtbj_operator(model, x, apply_B, None, "Gauss-Newton operator", jvp)
    raise ValueError(
        "output_hessian must be an (m, m) array, sparse matrix or LinearOperator, or a callable "
        f"u -> H u with u shaped like model(x); got {type(output_hessian).__name__}"
    )


def fisher_operator(model, x, output_fisher, *, jvp: str = "forward") -> LinearOperator:
    """The Fisher information ``J^T F(y) J`` of a model's output distribution, matrix-free.

    Parameters
    ----------
    model : callable or Linearization
        ``model(theta) -> y``, the distribution parameters (any shape, e.g. ``(N, P)``
        for a batch of N distributions), traceable by autograd; or a
        :class:`Linearization` taken at ``x`` (hand-written ``J v`` and ``J^T w``).
    x : array_like, shape (n,)
        The point; a finite 1-D vector. It is copied.
    output_fisher : callable
        ``output_fisher(y, u) -> F(y) u``: the Fisher information of the output
        distribution in its own parameters ``y``, applied to ``u`` shaped like ``y``
        (e.g. a Categorical or diagonal Gaussian ``fisher_vector``, divided by N for
        a batch mean). It must be symmetric positive semidefinite.
    jvp : {"forward", "reverse"}, optional
        How ``J v`` is computed. ``"forward"`` (default): a forward-mode pass through
        ``model`` (``autograd.make_jvp``) on every product. ``"reverse"``: the
        reverse-mode trace of ``w -> J^T w`` is recorded once more at build time and
        each ``J v`` is one reverse pass through it -- a dearer build, cheaper products
        (worth it when many products are taken at one point, as in conjugate gradient).

    Returns
    -------
    F : LinearOperator, shape (n, n), dtype float64
        ``F @ v = J^T F(y) J v`` with ``y = model(x)`` and ``J = dy/dtheta`` at ``x``;
        symmetric, so ``F.rmatvec`` is ``F.matvec``. It also carries ``F.x`` and
        ``F.y``.

    Raises
    ------
    ValueError
        If ``x`` is not a finite non-empty 1-D vector, ``model(x)`` is not a finite
        real array, ``output_fisher`` does not return an array shaped like ``y``, or
        ``jvp`` is not ``"forward"`` or ``"reverse"``; at a product, if a
        :class:`Linearization`'s ``jvp`` or ``vjp`` returns the wrong shape.

    Notes
    -----
    By the chain rule the Fisher information of ``p(. | y(theta))`` is the
    pull-back of the output Fisher,

    .. math:: F(\\theta) = J^T F_y(y)\\, J, \\qquad
              F_y(y) = \\mathbb{E}_{a \\sim p(\\cdot|y)}
              [\\nabla_y \\log p(a|y)\\, \\nabla_y \\log p(a|y)^T],

    which is also the Hessian of ``theta' -> KL(p(.|y(theta)) || p(.|y(theta')))``
    at ``theta' = theta``. ``y = model(x)`` is evaluated once, when the operator
    is built, together with the trace for the vector-Jacobian product; a product
    is one forward-mode JVP ``J v``, the analytic ``F_y`` in output space, and one
    VJP ``J^T w`` -- the efficient form of TRPO's Appendix C.1 [1]_, with no
    second-order differentiation.

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan and P. Abbeel, "Trust
       Region Policy Optimization", ICML 2015, Appendix C.1.
    .. [2] J. Martens, "New insights and perspectives on the natural gradient
       method", JMLR 21(146), 2020, §9.

    Examples
    --------
    A Categorical distribution with logits ``y = W theta``; its Fisher in the
    logits is ``diag(p) - p p^T``:

    >>> import autograd.numpy as anp
    >>> import numpy as np
    >>> import trustregion as tr
    >>> W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> def categorical_fisher(logits, u):
    ...     p = np.exp(logits - logits.max())
    ...     p = p / p.sum()
    ...     return p * u - p * (p @ u)
    >>> F = tr.fisher_operator(lambda t: anp.dot(W, t), np.array([0.5, -0.5]), categorical_fisher)
    >>> p = np.exp(W @ [0.5, -0.5])
    >>> p = p / p.sum()
    >>> bool(np.allclose(F @ np.eye(2), W.T @ (np.diag(p) - np.outer(p, p)) @ W))
    True
    """
    x = _as_point(x)
    if not callable(output_fisher):
        raise ValueError(
            "output_fisher must be a callable (y, u) -> F(y) u with u shaped like model(x); "
            f"got {type(output_fisher).__name__}"
        )

    def apply_B(y_arr):
        return _output_map(output_fisher, y_arr, "output_fisher", with_y=True)

    return _jtbj_operator(model, x, apply_B, None, "Fisher operator", jvp)


def empirical_fisher_operator(scores) -> LinearOperator:
    """The empirical Fisher ``S^T S / N`` of per-sample gradients, as an operator.

    Parameters
    ----------
    scores : array_like, shape (N, n)
        Row ``i`` is the score (gradient of a per-sample log-likelihood) of sample ``i``.
        Finite, with ``N >= 1``. It is copied.

    Returns
    -------
    F : LinearOperator, shape (n, n), dtype float64
        ``F @ v = S^T (S v) / N``; symmetric positive semidefinite.

    Raises
    ------
    ValueError
        If ``scores`` is not a finite 2-D array with at least one row and column.

    Notes
    -----
    The Monte Carlo estimate of the Fisher information from N samples,

    .. math:: \\hat F = \\frac{1}{N} \\sum_{i=1}^N s_i s_i^T = \\frac{1}{N} S^T S ,

    applied as two matrix-vector products, O(N n) work, without forming the
    n-by-n matrix. Unlike :func:`fisher_operator` it uses observed rather than
    expected outer products, so it is biased when the samples do not come from
    the model [2]_.

    References
    ----------
    .. [1] S. Amari, "Natural gradient works efficiently in learning", Neural
       Computation 10(2), 251-276, 1998.
    .. [2] F. Kunstner, L. Balles and P. Hennig, "Limitations of the empirical
       Fisher approximation for natural gradient descent", NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> S = np.array([[1.0, 0.0], [1.0, 2.0]])
    >>> F = tr.empirical_fisher_operator(S)
    >>> print((F @ np.eye(2)).tolist())
    [[1.0, 1.0], [1.0, 2.0]]
    """
    reject_complex(scores, "scores")
    try:
        S = np.array(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"scores must be a 2-D array (N samples, n parameters) of real numbers; "
            f"got {type(scores).__name__}"
        ) from exc
    if S.ndim != 2 or S.shape[0] == 0 or S.shape[1] == 0:
        raise ValueError(
            f"scores must be a 2-D array (N samples, n parameters) with N, n >= 1; got shape "
            f"{S.shape} (stack per-sample gradients as rows)"
        )
    if not np.all(np.isfinite(S)):
        raise ValueError("scores contains NaN or inf; pass finite per-sample gradients")
    N, n = S.shape

    def product(v):
        return S.T @ (S @ v) / N

    def block(X):
        return S.T @ (S @ X) / N

    return _ProductOperator(n, product, block=block, kind="empirical Fisher operator")


def damped(A, damping, *, n: int | None = None) -> LinearOperator:
    """``A + damping * I`` as an operator (Tikhonov / Levenberg-Marquardt damping).

    Parameters
    ----------
    A : ndarray, sparse matrix, LinearOperator or callable
        A square operator; a callable ``v -> A v`` needs ``n``.
    damping : float
        ``lambda >= 0``.
    n : int, optional
        The size of ``A`` when it is a callable.

    Returns
    -------
    D : LinearOperator, shape (n, n), dtype float64
        ``D @ v = A v + lambda v`` and ``D.rmatvec(v) = A^T v + lambda v`` (the latter
        needs ``A.rmatvec``).

    Raises
    ------
    ValueError
        If ``damping`` is negative or not finite, or ``A`` is not a square operator.

    Notes
    -----
    Adding ``lambda I`` shifts every eigenvalue of a symmetric ``A`` by ``lambda``,

    .. math:: \\lambda_i(A + \\lambda I) = \\lambda_i(A) + \\lambda ,

    so a positive semidefinite ``A`` becomes positive definite with condition
    number at most ``(lambda_max + lambda) / lambda``; the conjugate gradient
    iteration on a damped Fisher or Gauss-Newton matrix then cannot meet zero
    curvature. This is the damping of Levenberg-Marquardt [1]_ and of TRPO's
    Fisher-vector products (``cg_damping``) [2]_.

    References
    ----------
    .. [1] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer,
       2006, §10.3 (Levenberg-Marquardt).
    .. [2] J. Schulman, S. Levine, P. Moritz, M. Jordan and P. Abbeel, "Trust
       Region Policy Optimization", ICML 2015.

    Examples
    --------
    >>> import numpy as np
    >>> import trustregion as tr
    >>> D = tr.damped(np.array([[2.0, 1.0], [1.0, 2.0]]), 0.5)
    >>> print((D @ np.eye(2)).tolist())
    [[2.5, 1.0], [1.0, 2.5]]
    """
    lam = nonnegative_scalar(damping, "damping")
    A = as_operator(A, "A", n=n)
    size = A.shape[0]

    def product(v):
        return A.matvec(v) + lam * v

    def adjoint(v):
        return A.rmatvec(v) + lam * v

    def block(X):
        return A.matmat(X) + lam * X

    return _ProductOperator(size, product, adjoint=adjoint, block=block, kind="damped operator")
