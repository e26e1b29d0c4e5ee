"""Matrix-free curvature operators against their dense definitions.

Every product is compared with the matrix it claims to apply, built densely by
``autograd.hessian`` / ``autograd.jacobian`` or by central differences, with
tolerances from the unit roundoff and the size of the quantities involved.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.sparse as sp
from autograd.scipy.special import logsumexp
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import trustregion as tr
from tests.strategies import finite_floats, spd_matrices, symmetric_matrices, vectors

EPS = np.finfo(np.float64).eps
SUBNORMAL = np.finfo(np.float64).smallest_subnormal


def roundoff(k, scale):
    """Bound on the rounding of ``k`` floating-point operations on numbers of size ``scale``.

    Each operation errs by at most ``eps`` relative or, in the subnormal range, by one
    subnormal spacing absolute.
    """
    return k * (EPS * scale + SUBNORMAL)


JVP_MODES = ("forward", "reverse")


# ----------------------------------------------------------------------------------------
# Test problems, drawn by construction
# ----------------------------------------------------------------------------------------


def smooth_objective(x, S, c, B):
    """``f(x) = 1/2 x^T S x + sum_k c_k sin(b_k^T x)``: derivatives of every order bounded."""
    return 0.5 * anp.dot(x, anp.dot(S, x)) + anp.dot(c, anp.sin(anp.dot(B, x)))


@st.composite
def smooth_problems(draw, max_n=5):
    """``(x, S, c, B)`` for :func:`smooth_objective` with ``n <= max_n``."""
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, 4))
    S = draw(symmetric_matrices(n, scale=5.0))
    c = draw(vectors(k, min_value=-2.0, max_value=2.0))
    B = draw(hnp.arrays(np.float64, (k, n), elements=finite_floats(-2.0, 2.0)))
    x = draw(vectors(n, min_value=-3.0, max_value=3.0))
    return x, S, c, B


def unit_vector(draw, n):
    v = draw(vectors(n, min_value=-1.0, max_value=1.0))
    norm = np.linalg.norm(v)
    assume(norm > 1e-3)
    return v / norm


def make_model(W, V, shape):
    """``y(theta) = reshape(tanh(W theta) + 1/2 (V theta)^2, shape)``, nonlinear R^n -> R^m."""

    def model(theta):
        return anp.reshape(anp.tanh(anp.dot(W, theta)) + 0.5 * anp.dot(V, theta) ** 2, shape)

    return model


@st.composite
def model_problems(draw, max_n=5, max_m=6):
    """``(model, x, m, shape)`` with a model output of ``m`` entries shaped ``shape``."""
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    W = draw(hnp.arrays(np.float64, (m, n), elements=finite_floats(-1.5, 1.5)))
    V = draw(hnp.arrays(np.float64, (m, n), elements=finite_floats(-1.0, 1.0)))
    x = draw(vectors(n, min_value=-2.0, max_value=2.0))
    shape = (m,) if m % 2 else (m // 2, 2)
    return make_model(W, V, shape), x, m, shape


def dense_jacobian(model, x, m):
    return np.reshape(autograd.jacobian(model)(x), (m, x.size))


def dense(A):
    """The matrix of an operator, column by column (``A @ I``)."""
    return A @ np.eye(A.shape[1])


# Output-space Fisher information of the two distributions the RL layer uses.


def softmax(logits):
    z = logits - anp.max(logits, axis=-1, keepdims=True)
    e = anp.exp(z)
    return e / anp.sum(e, axis=-1, keepdims=True)


def categorical_fisher_mean(logits, u):
    """``F(y) u / N`` for a batch of Categoricals in their logits: ``p*u - p (p.u)``."""
    p = softmax(logits)
    return (p * u - p * np.sum(p * u, axis=-1, keepdims=True)) / logits.shape[0]


def categorical_mean_kl(old_logits, new_logits):
    """``mean_i KL(p_old,i || p_new,i)`` with ``p = softmax(logits)``."""
    p_old = softmax(old_logits)
    log_p_old = old_logits - logsumexp(old_logits, axis=-1, keepdims=True)
    log_p_new = new_logits - logsumexp(new_logits, axis=-1, keepdims=True)
    return anp.mean(anp.sum(p_old * (log_p_old - log_p_new), axis=-1))


def gaussian_fisher_mean(params, u):
    """``F(y) u / N``, diagonal Gaussians in (mean, log_std): ``(u_mu / sigma^2, 2 u_log_std)``."""
    d = params.shape[-1] // 2
    sigma2 = np.exp(2.0 * params[:, d:])
    return np.concatenate([u[:, :d] / sigma2, 2.0 * u[:, d:]], axis=-1) / params.shape[0]


def gaussian_mean_kl(old, new):
    """``mean_i KL(N(mu_old, sigma_old^2) || N(mu_new, sigma_new^2))`` (diagonal)."""
    d = old.shape[-1] // 2
    mu0, log_s0 = old[:, :d], old[:, d:]
    mu1, log_s1 = new[:, :d], new[:, d:]
    kl = (
        log_s1 - log_s0 + (anp.exp(2 * log_s0) + (mu0 - mu1) ** 2) / (2 * anp.exp(2 * log_s1)) - 0.5
    )
    return anp.mean(anp.sum(kl, axis=-1))


@st.composite
def policy_models(draw, head):
    """``(model, theta)``: a batch of N states mapped to distribution parameters.

    ``head="categorical"`` gives logits (N, A); ``head="gaussian"`` gives (N, 2d) =
    [mean, log_std], both depending nonlinearly on ``theta``.
    """
    N = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))  # features
    width = draw(st.integers(1, 3))  # actions A, or action dimension d
    P = width if head == "categorical" else 2 * width
    X = draw(hnp.arrays(np.float64, (N, k), elements=finite_floats(-1.5, 1.5)))
    theta = draw(vectors(k * P, min_value=-1.0, max_value=1.0))

    def model(t):
        Z = anp.dot(X, anp.reshape(t, (k, P)))
        return anp.tanh(Z) + 0.5 * Z  # nonlinear, so J depends on theta

    return model, theta


def operator_scale(M):
    return max(np.linalg.norm(M, 2), np.finfo(np.float64).tiny)


# ----------------------------------------------------------------------------------------
# Hessian-vector products
# ----------------------------------------------------------------------------------------


@given(smooth_problems())
def test_hessian_operator_equals_dense_autograd_hessian(problem):
    """Pearlmutter: ``H @ v = nabla^2 f(x) v`` for every v, so ``H @ I`` is the Hessian.

    Compared with ``autograd.hessian`` (two dense reverse passes) at the same x, to
    rounding: ``|H I - nabla^2 f| <= 64 n eps ||nabla^2 f||`` entrywise.
    """
    x, S, c, B = problem
    H = tr.hessian_operator(smooth_objective, x, args=(S, c, B))
    reference = autograd.hessian(smooth_objective)(x, S, c, B)
    scale = np.linalg.norm(S, 2) + np.sum(np.abs(c) * np.sum(B**2, axis=1))
    np.testing.assert_allclose(dense(H), reference, rtol=0, atol=roundoff(64 * x.size, scale))


@given(smooth_problems(), st.data())
def test_hessian_operator_equals_central_differences_of_the_gradient(problem, data):
    """``nabla^2 f(x) v = (nabla f(x + h v) - nabla f(x - h v)) / 2h + O(h^2)``.

    Taylor: the truncation error is at most ``h^2/6 * M4`` with ``M4 = sum_k |c_k|
    ||b_k||^4`` bounding the fourth derivative along a unit v; rounding in the two
    gradients (size ``G``) and in ``x +- h v`` adds ``8 n eps (G + ||H|| ||x||) / h``.
    ``h = eps^(1/3)`` balances the two.
    """
    x, S, c, B = problem
    v = unit_vector(data.draw, x.size)
    H = tr.hessian_operator(smooth_objective, x, args=(S, c, B))
    gradient = autograd.grad(smooth_objective)
    h = EPS ** (1.0 / 3.0)
    fd = (gradient(x + h * v, S, c, B) - gradient(x - h * v, S, c, B)) / (2 * h)
    b_norms = np.linalg.norm(B, axis=1)
    M4 = np.sum(np.abs(c) * b_norms**4)
    hess_norm = np.linalg.norm(S, 2) + np.sum(np.abs(c) * b_norms**2)
    G = np.linalg.norm(S, 2) * (np.linalg.norm(x) + h) + np.sum(np.abs(c) * b_norms)
    tol = h**2 / 6 * M4 + roundoff(8 * x.size, G + hess_norm * np.linalg.norm(x)) / h
    assert np.linalg.norm(H @ v - fd) <= tol


@given(smooth_problems())
def test_hessian_operator_carries_value_and_gradient(problem):
    """Building the HVP traces ``f`` and ``nabla f`` at x: ``H.fun = f(x)``, ``H.grad = grad f(x)``.

    Same arithmetic as a plain evaluation, so equal to ``16 eps`` times the size of the terms.
    """
    x, S, c, B = problem
    H = tr.hessian_operator(smooth_objective, x, args=(S, c, B))
    scale = np.linalg.norm(S, 2) * (1 + np.linalg.norm(x)) ** 2 + np.sum(
        np.abs(c) * (1 + np.linalg.norm(B, axis=1))
    )
    assert abs(H.fun - smooth_objective(x, S, c, B)) <= roundoff(16, scale)
    np.testing.assert_allclose(
        H.grad, autograd.grad(smooth_objective)(x, S, c, B), rtol=0, atol=roundoff(16, scale)
    )
    np.testing.assert_array_equal(H.x, x)


def test_hessian_operator_is_matrix_free_at_large_n():
    """No n-by-n array is formed: at n = 10^6 (a dense Hessian would need 8 TB) the product works.

    ``f(x) = sum x_i^4 / 4 + sum x_i x_{i+1}`` has
    ``(nabla^2 f v)_i = 3 x_i^2 v_i + v_{i-1} + v_{i+1}``.
    """
    n = 10**6
    rng = np.random.default_rng(0)
    x, v = rng.standard_normal(n), rng.standard_normal(n)

    def f(z):
        return anp.sum(z**4) / 4 + anp.sum(z[:-1] * z[1:])

    H = tr.hessian_operator(f, x)
    expected = 3 * x**2 * v
    expected[1:] += v[:-1]
    expected[:-1] += v[1:]
    np.testing.assert_allclose(
        H @ v, expected, rtol=0, atol=roundoff(8, np.abs(expected).max() + 3)
    )


# ----------------------------------------------------------------------------------------
# Gauss-Newton and Fisher products
# ----------------------------------------------------------------------------------------


def output_hessian_forms(Hout, shape):
    """The same ``H_out`` as an ndarray, a sparse matrix, a LinearOperator and a callable."""
    return {
        "ndarray": Hout,
        "sparse": sp.csr_matrix(Hout),
        "LinearOperator": aslinearoperator(Hout),
        "callable": lambda u: np.reshape(Hout @ np.reshape(u, -1), shape),
    }


@pytest.mark.parametrize("jvp", JVP_MODES)
@given(model_problems(), st.data())
def test_gauss_newton_operator_equals_dense_JtHJ(jvp, problem, data):
    """``G @ v = J^T H_out J v``, ``J = autograd.jacobian(model)(x)``, for every form of ``H_out``.

    Tolerance ``32 (m + n) eps ||J||^2 ||H_out||`` (rounding of two products with J and one with H).
    """
    model, x, m, shape = problem
    Hout = data.draw(symmetric_matrices(m, scale=5.0))
    J = dense_jacobian(model, x, m)
    reference = J.T @ Hout @ J
    tol = roundoff(32 * (m + x.size), operator_scale(J) ** 2 * operator_scale(Hout))
    for form, H_out in output_hessian_forms(Hout, shape).items():
        G = tr.gauss_newton_operator(model, x, H_out, jvp=jvp)
        np.testing.assert_allclose(dense(G), reference, rtol=0, atol=tol, err_msg=form)
        np.testing.assert_array_equal(G.y, np.reshape(model(x), shape))


def linearization_of(model, x, m, shape):
    """A hand-made :class:`trustregion.Linearization` from the dense autograd Jacobian."""
    J = dense_jacobian(model, x, m)
    return tr.Linearization(np.reshape(model(x), shape),
                            lambda v: np.reshape(J @ v, shape),
                            lambda w: J.T @ np.reshape(w, -1))


@given(model_problems(), st.data())
def test_linearization_model_gives_the_autograd_operators(problem, data):
    """A ``Linearization`` passed as ``model`` gives the same ``J^T H J`` and ``J^T F(y) J`` as
    tracing the callable model, and the dot-product test holds for its products.

    Tolerance ``32 (m + n) eps ||J||^2 ||H_out||``, as for the traced operator.
    """
    model, x, m, shape = problem
    Hout = data.draw(symmetric_matrices(m, scale=5.0))
    J = dense_jacobian(model, x, m)
    lin = linearization_of(model, x, m, shape)
    tol = roundoff(32 * (m + x.size), operator_scale(J) ** 2 * operator_scale(Hout))
    G = tr.gauss_newton_operator(lin, x, Hout)
    np.testing.assert_allclose(dense(G), J.T @ Hout @ J, rtol=0, atol=tol)
    np.testing.assert_array_equal(G.y, np.reshape(model(x), shape))

    def output_fisher(y, u):
        return np.reshape(Hout @ np.reshape(u, -1), shape)

    F = tr.fisher_operator(lin, x, output_fisher)
    np.testing.assert_allclose(dense(F), dense(tr.fisher_operator(model, x, output_fisher)),
                               rtol=0, atol=tol)
    assert lin.check(x.size, np.random.default_rng(0)) < 1e-12


@given(model_problems(), st.data())
def test_gauss_newton_adjoint_uses_transposed_output_hessian(problem, data):
    """``(J^T H J)^T = J^T H^T J``: for non-symmetric ``H_out``, ``G.rmatvec`` applies ``H_out^T``.

    Tolerance ``32 (m + n) eps ||J||^2 ||H_out||``.
    """
    model, x, m, _ = problem
    Hout = data.draw(hnp.arrays(np.float64, (m, m), elements=finite_floats(-3.0, 3.0)))
    J = dense_jacobian(model, x, m)
    G = tr.gauss_newton_operator(model, x, Hout)
    tol = roundoff(32 * (m + x.size), operator_scale(J) ** 2 * operator_scale(Hout))
    np.testing.assert_allclose(G.H @ np.eye(x.size), J.T @ Hout.T @ J, rtol=0, atol=tol)


@pytest.mark.parametrize("jvp", JVP_MODES)
@given(policy_models("categorical"))
def test_fisher_operator_categorical_equals_hessian_of_mean_kl(jvp, problem):
    """Fisher = Hessian of KL: ``J^T F(y) J = nabla^2_theta' mean KL(p_theta || p_theta')``
    at theta' = theta (Schulman et al. 2015, App. C; Martens 2020, §9).

    With ``p = softmax(model(theta))`` and ``F(y) = diag(p) - p p^T`` per state (divided by
    N for the mean). Exact, because ``d KL / d y' = p' - p`` vanishes at theta' = theta, which
    removes the second-derivative-of-model term; compared to ``64 n eps ||nabla^2 KL||``.
    """
    model, theta = problem
    old_logits = model(theta)
    F = tr.fisher_operator(model, theta, categorical_fisher_mean, jvp=jvp)
    reference = autograd.hessian(lambda t: categorical_mean_kl(old_logits, model(t)))(theta)
    J = dense_jacobian(model, theta, old_logits.size)
    tol = roundoff(64 * theta.size, operator_scale(J) ** 2 + 1)
    np.testing.assert_allclose(dense(F), reference, rtol=0, atol=tol)


@pytest.mark.parametrize("jvp", JVP_MODES)
@given(policy_models("gaussian"))
def test_fisher_operator_gaussian_equals_hessian_of_mean_kl(jvp, problem):
    """Fisher = Hessian of KL for diagonal Gaussians in (mean, log_std).

    ``F(y) = diag(1/sigma^2, 2)`` per state, so ``J^T F J = nabla^2_theta' mean KL(N_theta ||
    N_theta')`` at theta' = theta; tolerance ``64 n eps ||J||^2 max(1/sigma^2, 2)``.
    """
    model, theta = problem
    old = model(theta)
    F = tr.fisher_operator(model, theta, gaussian_fisher_mean, jvp=jvp)
    reference = autograd.hessian(lambda t: gaussian_mean_kl(old, model(t)))(theta)
    d = old.shape[1] // 2
    J = dense_jacobian(model, theta, old.size)
    out_norm = max(np.exp(-2 * old[:, d:]).max(), 2.0)
    tol = roundoff(64 * theta.size, operator_scale(J) ** 2 * out_norm)
    np.testing.assert_allclose(dense(F), reference, rtol=0, atol=tol)


@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.integers(1, 8).flatmap(
                lambda N: hnp.arrays(np.float64, (N, n), elements=finite_floats(-5.0, 5.0))
            ),
            vectors(n),
        )
    )
)
def test_empirical_fisher_equals_mean_outer_product_of_scores(args):
    """``F_hat v = (1/N) sum_i s_i (s_i^T v) = S^T S v / N``; ``matmat`` gives the same columns."""
    S, v = args
    F = tr.empirical_fisher_operator(S)
    reference = S.T @ S / S.shape[0]
    tol = roundoff(8 * S.shape[0], operator_scale(S) ** 2 / S.shape[0])
    np.testing.assert_allclose(F @ v, reference @ v, rtol=0, atol=tol * (np.abs(v).sum() + 1))
    np.testing.assert_allclose(dense(F), reference, rtol=0, atol=tol)


# ----------------------------------------------------------------------------------------
# Symmetry and definiteness
# ----------------------------------------------------------------------------------------


@st.composite
def symmetric_operators(draw):
    """``(name, A, ||A||)`` for each operator that must be symmetric."""
    kind = draw(
        st.sampled_from(["hessian", "gauss_newton", "fisher", "empirical_fisher", "damped"])
    )
    if kind == "hessian":
        x, S, c, B = draw(smooth_problems())
        A = tr.hessian_operator(smooth_objective, x, args=(S, c, B))
        return kind, A, np.linalg.norm(S, 2) + np.sum(np.abs(c) * np.sum(B**2, axis=1))
    if kind == "gauss_newton":
        model, x, m, _ = draw(model_problems())
        Hout = draw(symmetric_matrices(m, scale=5.0))
        J = dense_jacobian(model, x, m)
        return (
            kind,
            tr.gauss_newton_operator(model, x, Hout),
            operator_scale(J) ** 2 * operator_scale(Hout),
        )
    if kind == "fisher":
        model, theta = draw(policy_models("categorical"))
        J = dense_jacobian(model, theta, model(theta).size)
        return (
            kind,
            tr.fisher_operator(model, theta, categorical_fisher_mean),
            operator_scale(J) ** 2,
        )
    if kind == "empirical_fisher":
        n = draw(st.integers(1, 6))
        S = draw(
            hnp.arrays(np.float64, (draw(st.integers(1, 8)), n), elements=finite_floats(-5.0, 5.0))
        )
        return kind, tr.empirical_fisher_operator(S), operator_scale(S) ** 2
    A = draw(symmetric_matrices(draw(st.integers(1, 6))))
    lam = draw(finite_floats(0.0, 10.0))
    return kind, tr.damped(A, lam), operator_scale(A) + lam


@given(symmetric_operators(), st.data())
def test_operators_are_symmetric(named, data):
    """``u^T (A v) = v^T (A u)`` for the Hessian, Gauss-Newton (symmetric H_out), Fisher,
    empirical Fisher and damped operators.

    Both sides are ``u^T A v`` up to rounding, ``|difference| <= 32 n eps ||A|| ||u||_1 ||v||_1``;
    ``rmatvec`` equals ``matvec``.
    """
    _, A, norm = named
    n = A.shape[0]
    u, v = data.draw(vectors(n)), data.draw(vectors(n))
    u1, v1 = np.abs(u).sum(), np.abs(v).sum()  # 1-norms bound the 2-norms without underflow
    assert abs(u @ (A @ v) - v @ (A @ u)) <= roundoff(32 * n, norm * u1 * v1)
    np.testing.assert_allclose(A.rmatvec(v), A.matvec(v), rtol=0, atol=roundoff(32 * n, norm * v1))


@st.composite
def psd_operators(draw):
    """``(name, A, ||A||)`` for operators that are positive semidefinite by construction."""
    kind = draw(
        st.sampled_from(
            ["gauss_newton", "fisher_categorical", "fisher_gaussian", "empirical_fisher"]
        )
    )
    if kind == "gauss_newton":
        model, x, m, _ = draw(model_problems())
        Hout = draw(spd_matrices(m, max_log10_cond=4.0))
        J = dense_jacobian(model, x, m)
        return (
            kind,
            tr.gauss_newton_operator(model, x, Hout),
            operator_scale(J) ** 2 * operator_scale(Hout),
        )
    if kind.startswith("fisher"):
        head = kind.split("_")[1]
        model, theta = draw(policy_models(head))
        fisher = categorical_fisher_mean if head == "categorical" else gaussian_fisher_mean
        y = model(theta)
        J = dense_jacobian(model, theta, y.size)
        out_norm = (
            1.0 if head == "categorical" else max(np.exp(-2 * y[:, y.shape[1] // 2 :]).max(), 2.0)
        )
        return kind, tr.fisher_operator(model, theta, fisher), operator_scale(J) ** 2 * out_norm
    n = draw(st.integers(1, 6))
    S = draw(
        hnp.arrays(np.float64, (draw(st.integers(1, 8)), n), elements=finite_floats(-5.0, 5.0))
    )
    return kind, tr.empirical_fisher_operator(S), operator_scale(S) ** 2


@given(psd_operators(), st.data())
def test_gauss_newton_and_fisher_operators_are_positive_semidefinite(named, data):
    """``v^T A v >= 0`` for ``J^T H J`` (``H`` PSD), ``J^T F J`` (``F`` a Fisher), ``S^T S / N``.

    ``v^T J^T H J v = (J v)^T H (J v) >= 0``; allowed rounding ``32 n eps ||A|| ||v||_1^2``.
    """
    _, A, norm = named
    v = data.draw(vectors(A.shape[0]))
    assert v @ (A @ v) >= -roundoff(32 * A.shape[0], norm * np.abs(v).sum() ** 2)


# ----------------------------------------------------------------------------------------
# Damping
# ----------------------------------------------------------------------------------------


@given(
    st.integers(1, 6).flatmap(lambda n: st.tuples(symmetric_matrices(n), vectors(n))),
    finite_floats(0.0, 100.0),
)
def test_damped_adds_lambda_times_identity_exactly(args, lam):
    """``(A + lambda I) v = A v + lambda v`` in floating point, bit for bit, for every form of A;
    the spectrum shifts by lambda: ``eig(A + lambda I) = eig(A) + lambda`` (Weyl), to
    ``8 n eps (||A|| + lambda)``.
    """
    A, v = args
    n = A.shape[0]
    for form in (A, sp.csr_matrix(A), aslinearoperator(A)):
        D = tr.damped(form, lam)
        np.testing.assert_array_equal(D @ v, aslinearoperator(form).matvec(v) + lam * v)
    D = tr.damped(lambda w: A @ w, lam, n=n)
    np.testing.assert_array_equal(D @ v, A @ v + lam * v)
    np.testing.assert_array_equal(tr.damped(A, 0.0) @ v, A @ v)
    shifted = np.linalg.eigvalsh(0.5 * (dense(tr.damped(A, lam)) + dense(tr.damped(A, lam)).T))
    np.testing.assert_allclose(
        shifted, np.linalg.eigvalsh(A) + lam, rtol=0, atol=roundoff(8 * n, operator_scale(A) + lam)
    )


# ----------------------------------------------------------------------------------------
# The LinearOperator contract
# ----------------------------------------------------------------------------------------


def all_operators(n=3):
    """One instance of each builder, all of size n."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n)
    S, W = rng.standard_normal((n, n)), rng.standard_normal((4, n))
    S = S + S.T
    model = make_model(W, 0.5 * W, (2, 2))
    return {
        "hessian": tr.hessian_operator(
            lambda z: anp.sum(anp.sin(z)) + anp.dot(z, anp.dot(S, z)), x
        ),
        "gauss_newton": tr.gauss_newton_operator(model, x, np.eye(4)),
        "gauss_newton_callable": tr.gauss_newton_operator(model, x, lambda u: 2 * u),
        "fisher": tr.fisher_operator(model, x, categorical_fisher_mean),
        "fisher_reverse": tr.fisher_operator(model, x, categorical_fisher_mean, jvp="reverse"),
        "fisher_linearization": tr.fisher_operator(
            tr.Linearization(W @ x, lambda v: W @ v, lambda w: W.T @ w), x,
            lambda y, u: 2.0 * u),
        "empirical_fisher": tr.empirical_fisher_operator(W),
        "damped": tr.damped(S, 0.5),
        "damped_operator": tr.damped(tr.empirical_fisher_operator(W), 1e-2),
    }


@pytest.mark.parametrize("name", list(all_operators()))
def test_operators_are_float64_linear_operators_of_the_right_shape(name):
    """Each builder returns an (n, n) float64 ``LinearOperator``: ``matvec`` maps (n,) -> (n,) and
    (n, 1) -> (n, 1), integer vectors are accepted, ``matmat`` gives the ``matvec`` columns,
    ``rmatvec`` / ``.H`` equal the operator for symmetric ones, and the input is never modified.
    """
    n = 3
    A = all_operators(n)[name]
    assert isinstance(A, LinearOperator)
    assert A.shape == (n, n) and A.dtype == np.float64
    v = np.array([1.0, -2.0, 0.5])
    v_before = v.copy()
    Av = A @ v
    np.testing.assert_array_equal(v, v_before)
    assert Av.shape == (n,) and Av.dtype == np.float64
    assert A.matvec(v.reshape(n, 1)).shape == (n, 1)
    np.testing.assert_array_equal(A.matvec(v.reshape(n, 1)).ravel(), Av)
    assert (A @ np.array([1, 0, 2])).dtype == np.float64
    X = np.column_stack([v, 2 * v, np.ones(n)])
    columns = np.column_stack([A @ X[:, j] for j in range(3)])
    np.testing.assert_allclose(A @ X, columns, rtol=0, atol=roundoff(16, np.abs(columns).max()))
    np.testing.assert_allclose(A.rmatvec(v), Av, rtol=0, atol=roundoff(16, np.abs(Av).max()))
    np.testing.assert_allclose(A.H @ X, columns, rtol=0, atol=roundoff(16, np.abs(columns).max()))


def test_operators_copy_the_point():
    """The operator is the curvature at x when built: changing x afterwards changes nothing."""
    x = np.array([0.3, -1.2])
    f = lambda z: anp.sum(z**4)  # noqa: E731
    model = lambda z: anp.tanh(z * 2.0)  # noqa: E731
    H = tr.hessian_operator(f, x)
    G = tr.gauss_newton_operator(model, x, np.eye(2))
    v = np.array([1.0, 1.0])
    before = (H @ v, G @ v)
    x[:] = [5.0, 5.0]
    np.testing.assert_array_equal(H @ v, before[0])
    np.testing.assert_array_equal(G @ v, before[1])


def test_gauss_newton_with_scalar_model_output():
    """A scalar output ``y = ||theta||^2`` has ``J = 2 theta^T``, so ``G = 4 h theta theta^T``."""
    x = np.array([1.0, -2.0, 0.5])
    for H_out in (np.array([[3.0]]), lambda u: 3.0 * u):
        G = tr.gauss_newton_operator(lambda t: anp.sum(t**2), x, H_out)
        np.testing.assert_allclose(dense(G), 12 * np.outer(x, x), rtol=0, atol=roundoff(64, 1.0))


# ----------------------------------------------------------------------------------------
# Bad input: ValueError naming the argument, before any work
# ----------------------------------------------------------------------------------------


def _f(z):
    return anp.sum(z**2)


def _model(z):
    return anp.tanh(anp.reshape(anp.concatenate([z, z]), (2, -1)))


X2 = np.array([1.0, 2.0])

BAD_INPUTS = {
    "x NaN": (lambda: tr.hessian_operator(_f, np.array([1.0, np.nan])), "x"),
    "x 2-D": (lambda: tr.hessian_operator(_f, np.ones((2, 2))), "x"),
    "x empty": (lambda: tr.hessian_operator(_f, np.array([])), "x"),
    "x strings": (lambda: tr.gauss_newton_operator(_model, ["a", "b"], np.eye(4)), "x"),
    "f not callable": (lambda: tr.hessian_operator(3.0, X2), "f"),
    "f vector-valued": (lambda: tr.hessian_operator(_model, X2), "f must return a real scalar"),
    "f not finite at x": (lambda: tr.hessian_operator(lambda z: anp.sum(z ** 2) + np.inf, X2), "f"),
    "args not tuple": (lambda: tr.hessian_operator(_f, X2, args=[1]), "args"),
    "model not callable": (lambda: tr.gauss_newton_operator(None, X2, np.eye(4)), "model"),
    "model not finite": (
        lambda: tr.fisher_operator(lambda z: z + np.inf, X2, lambda y, u: u),
        "model",
    ),
    "linearization jvp wrong shape": (
        lambda: tr.gauss_newton_operator(
            tr.Linearization(np.ones(4), lambda v: np.ones(3), lambda w: np.ones(2)), X2,
            np.eye(4)) @ X2,  # checked at the first product
        "Linearization.jvp",
    ),
    "linearization vjp wrong size": (
        lambda: tr.gauss_newton_operator(
            tr.Linearization(np.ones(4), lambda v: np.ones(4), lambda w: np.ones(3)), X2,
            np.eye(4)) @ X2,
        "Linearization.vjp",
    ),
    "linearization output NaN": (
        lambda: tr.fisher_operator(
            tr.Linearization(np.full(4, np.nan), lambda v: np.ones(4), lambda w: np.ones(2)),
            X2, lambda y, u: u),
        "Linearization.output",
    ),
    "linearization products not callable": (
        lambda: tr.Linearization(np.ones(4), None, lambda w: w), "jvp and vjp",
    ),
    "output_hessian wrong size": (
        lambda: tr.gauss_newton_operator(_model, X2, np.eye(3)),
        "output_hessian",
    ),
    "output_hessian not square": (
        lambda: tr.gauss_newton_operator(_model, X2, np.ones((4, 2))),
        "output_hessian",
    ),
    "output_hessian operator wrong size": (
        lambda: tr.gauss_newton_operator(_model, X2, aslinearoperator(np.eye(5))),
        "output_hessian",
    ),
    "output_hessian NaN": (
        lambda: tr.gauss_newton_operator(_model, X2, np.full((4, 4), np.nan)),
        "output_hessian",
    ),
    "output_hessian callable wrong shape": (
        lambda: tr.gauss_newton_operator(_model, X2, lambda u: u[:1]),
        "output_hessian",
    ),
    "output_hessian wrong type": (
        lambda: tr.gauss_newton_operator(_model, X2, "identity"),
        "output_hessian",
    ),
    "output_fisher not callable": (
        lambda: tr.fisher_operator(_model, X2, np.eye(4)),
        "output_fisher",
    ),
    "output_fisher wrong shape": (
        lambda: tr.fisher_operator(_model, X2, lambda y, u: u.ravel()[:3]),
        "output_fisher",
    ),
    "jvp unknown": (lambda: tr.fisher_operator(_model, X2, lambda y, u: u, jvp="sideways"), "jvp"),
    "scores 1-D": (lambda: tr.empirical_fisher_operator(np.ones(3)), "scores"),
    "scores empty": (lambda: tr.empirical_fisher_operator(np.ones((0, 3))), "scores"),
    "scores inf": (lambda: tr.empirical_fisher_operator(np.array([[1.0, np.inf]])), "scores"),
    "damping negative": (lambda: tr.damped(np.eye(2), -1e-3), "damping"),
    "damping NaN": (lambda: tr.damped(np.eye(2), float("nan")), "damping"),
    "damping not a number": (lambda: tr.damped(np.eye(2), "0.1"), "damping"),
    "A not square": (lambda: tr.damped(np.ones((2, 3)), 0.1), "A"),
    "A callable without n": (lambda: tr.damped(lambda v: v, 0.1), "A"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_value_error_naming_the_argument(case):
    """Invalid arguments raise ``ValueError`` naming the argument, before any product is taken."""
    build, name = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=name):
        build()


def test_hessian_operator_reports_an_untraceable_function():
    """f calling plain numpy/float on its argument cannot be traced: the ValueError the
    docstring promises, with the advice minimize gives, not autograd's TypeError."""
    with pytest.raises(ValueError, match="^autograd could not differentiate f"):
        tr.hessian_operator(lambda x: float(np.linalg.norm(x)), X2)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: tr.hessian_operator(_f, np.array([1.0 + 1j, 2.0])), "x"),
        (lambda: tr.damped(np.eye(2, dtype=complex), 0.1), "A"),
        (lambda: tr.damped(aslinearoperator(np.eye(2, dtype=complex)), 0.1), "A"),
        (lambda: tr.empirical_fisher_operator(np.ones((2, 2)) * 1j), "scores"),
        (lambda: tr.gauss_newton_operator(_model, X2, np.eye(4, dtype=complex)),
         "output_hessian"),
    ],
)
def test_complex_input_is_refused_naming_the_argument(build, name):
    """Complex input is refused; the imaginary part is never dropped with a ComplexWarning."""
    with pytest.raises(ValueError, match=rf"^{name} must be real"):
        build()
