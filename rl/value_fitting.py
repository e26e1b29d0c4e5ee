r"""The regression solvers of the value networks: trust region, L-BFGS and Adam.

Each fits the weights :math:`\phi` of a network to standardised targets :math:`z` by least
squares, :math:`f(\phi) = \tfrac12 \frac1N \sum_n (\mathrm{net}_\phi(x_n) - z_n)^2`, starting
from the network's current weights, sets the result on the network and returns the solver's
diagnostics (keys without the ``"value/"`` prefix, which the caller adds). They hold no state
of their own: :class:`rl.advantages.MLPValueFunction` (the network, its output scaling and
its prediction cache) chooses one by its ``optimizer`` setting and passes what it keeps
across fits (the Adam optimiser and the minibatch generator).

* :func:`fit_trust_region`: natural steps on the mean KL of Gaussian predictions, the GAE
  paper's method (§5).
* :func:`fit_lbfgs`: ``scipy.optimize.minimize(method="L-BFGS-B")`` on ``f`` and its
  gradient.
* :func:`fit_adam`: epochs of shuffled minibatches of Adam, as PPO fits its value network.

The network is an :class:`rl.networks.MLP` or an :class:`rl.conv.ConvNet`: anything with
``params``, ``set_params``, ``forward`` and ``linearize``.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from trustregion.line_search import backtracking
from trustregion.natural_step import natural_step
from trustregion.operators import damped, gauss_newton_operator

__all__ = ["fit_trust_region", "fit_lbfgs", "fit_adam", "half_mse_and_gradient", "network_args"]


def network_args(x) -> tuple:
    """The network's input arguments: ``(x,)``, or ``(images, extra)`` for a pair."""
    return x if isinstance(x, tuple) else (x,)


def half_mse_and_gradient(lin, z):
    """``(½ mean((V - z)²), its gradient in φ)`` from a linearisation ``lin`` of ``V_φ``."""
    r = lin.output[:, 0] - z
    N = r.shape[0]
    return 0.5 * float(r @ r) / N, lin.vjp((r / N)[:, None])


def fit_trust_region(net, x, z, *, max_change, iterations, cg_iters, damping) -> dict:
    """GAE paper §5: natural steps on the Gaussian-output mean KL, capped at the GN minimum.

    Parameters
    ----------
    net : MLP or ConvNet
        Fitted in place from its current weights.
    x : ndarray or tuple of ndarrays
        The network's inputs: an array, or a pair ``(images, extra)`` for a
        :class:`rl.conv.ConvNet` with other observation leaves beside the image.
    z : ndarray of shape (N,)
        The regression targets.
    max_change : float
        The radius ε of the mean-KL constraint of each step.
    iterations : int
        Steps.
    cg_iters : int
        CG iterations per step.
    damping : float
        λ of the damped Fisher ``F + λI``.

    Returns
    -------
    dict
        ``iterations`` (steps taken), ``cg_nit``, ``max_step_kl`` and ``success``.

    Notes
    -----
    The steps of :class:`rl.advantages.MLPValueFunction`'s Notes: ``g = -∇f``; ``d ≈ F⁻¹g``
    by :func:`trustregion.natural_step` with the Fisher ``F = J^T J / (N σ²)`` of the
    Gaussian predictions (σ² the mean squared error before the step); the step length
    ``β = √(2ε / dᵀFd)`` capped at the Gauss-Newton model's minimiser ``gᵀd / dᵀHd``;
    then backtracking until the actual mean KL is at most ε and the loss decreased.
    """
    args = network_args(x)
    N = z.shape[0]
    eps = max_change
    last = {}  # the latest trial's predictions, shared by the loss and the constraint

    def f(phi_new):
        V = net.forward(phi_new, *args)[:, 0]
        last["phi"], last["V"] = phi_new, V
        r = V - z
        return 0.5 * float(r @ r) / N

    def predictions(phi_new):
        if "phi" in last and np.array_equal(last["phi"], phi_new):
            return last["V"]
        return net.forward(phi_new, *args)[:, 0]

    phi = net.params.copy()
    nit, cg_nit, max_kl, success = 0, 0, 0.0, True
    for _ in range(iterations):
        lin = net.linearize(phi, *args)  # V_old, J v and J^T u at phi
        V_old = lin.output[:, 0]
        f0, grad = half_mse_and_gradient(lin, z)
        sigma2 = 2.0 * f0  # mean((V_old - z)^2), the predictive variance
        if sigma2 == 0.0:
            break  # the targets are met exactly: nothing to fit
        g = -grad  # the direction of steepest decrease of f
        # Fisher of the Gaussian outputs N(V_phi(s), sigma2), averaged over the batch
        F = gauss_newton_operator(lin, phi, lambda u, s=N * sigma2: u / s)
        step = natural_step(g, damped(F, damping), eps, maxiter=cg_iters)
        cg_nit += step.cg.nit
        if not step.success:
            success = False
            break
        d = step.direction
        # curvature of the Gauss-Newton model of f: H = sigma2 F, and natural_step's
        # curvature is d^T (F + damping I) d
        dHd = sigma2 * (step.curvature - damping * float(d @ d))
        beta = step.beta
        if dHd > 0.0:
            beta = min(beta, float(g @ d) / dHd)  # do not pass the model's minimiser
        if not beta > 0.0:
            success = False
            break

        def mean_kl(phi_new, V_old=V_old, sigma2=sigma2):
            dV = predictions(phi_new) - V_old
            return float(dV @ dV) / (2.0 * sigma2 * N)

        def accept(phi_new, f_new, f0=f0, mean_kl=mean_kl):
            return f_new < f0 and mean_kl(phi_new) <= eps

        search = backtracking(f, phi, beta * d, shrink=0.8, max_steps=30, accept=accept, f0=f0)
        if not search.success:
            success = False
            break
        phi = search.x
        max_kl = max(max_kl, mean_kl(phi))
        nit += 1
    net.set_params(phi)
    return {
        "iterations": nit,
        "cg_nit": cg_nit,
        "max_step_kl": max_kl,
        "success": float(success),
    }


def fit_lbfgs(net, loss_and_gradient, *, iterations) -> dict:
    """L-BFGS-B (scipy) on the squared error, gradients by backpropagation.

    Parameters
    ----------
    net : MLP or ConvNet
        Fitted in place from its current weights; left as it was unless the result is
        finite and no worse.
    loss_and_gradient : callable
        ``φ -> (f(φ), ∇f(φ))`` on the fit's rows.
    iterations : int
        L-BFGS iterations.

    Returns
    -------
    dict
        ``iterations`` and ``success`` (1.0 when scipy converged or ran out of iterations).
    """
    res = scipy.optimize.minimize(
        loss_and_gradient, net.params, jac=True, method="L-BFGS-B",
        options={"maxiter": iterations},
    )
    if np.all(np.isfinite(res.x)) and loss_and_gradient(res.x)[0] <= \
            loss_and_gradient(net.params)[0]:
        net.set_params(res.x)
    return {"iterations": int(res.nit), "success": float(res.success or res.status == 1)}


def fit_adam(net, adam, rng, theta, minibatch_gradient, num_rows, *, epochs,
             minibatch_size) -> dict:
    """Shuffled minibatch epochs of Adam, as in PPO's value update.

    A fit whose weights come out NaN or inf (an overflowing target or gradient) leaves
    the network and the Adam state as they were and reports ``success`` 0.

    Parameters
    ----------
    net : MLP or ConvNet
        Receives the result (as float64) when it is finite.
    adam : rl.optimizers.Adam
        Steps ``theta`` in place; its state carries over between fits.
    rng : numpy.random.Generator
        Draws each epoch's order of the rows.
    theta : ndarray
        The weights to step, updated in place (the network's weights, possibly in its
        compute dtype).
    minibatch_gradient : callable
        ``rows -> ∇f`` on those rows at the current ``theta``.
    num_rows : int
        ``N``, the number of rows.
    epochs, minibatch_size : int

    Returns
    -------
    dict
        ``iterations`` (epochs), ``adam_steps`` and ``success``.
    """
    saved = adam.state_dict()  # m, v and t copied: restored if the fit diverges
    steps = 0
    for _ in range(epochs):
        order = rng.permutation(num_rows)
        for lo in range(0, num_rows, minibatch_size):
            adam.step_in_place(theta, minibatch_gradient(order[lo:lo + minibatch_size]))
            steps += 1
    phi = theta.astype(np.float64)
    if np.all(np.isfinite(phi)):
        net.set_params(phi)
        success = 1.0
    else:  # the moments may be NaN too: step_in_place does not check its gradients
        adam.load_state_dict(saved)
        success = 0.0
    return {"iterations": epochs, "adam_steps": steps, "success": success}
