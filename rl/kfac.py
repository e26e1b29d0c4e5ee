r"""K-FAC for the MLP policies: Kronecker factors of the Fisher matrix from a batch.

The policy's Fisher matrix :math:`F = \sum_n w_n J_n^T F_{dist}(y_n) J_n` is approximated, as
by Martens & Grosse (2015), by a block-diagonal matrix with one block
:math:`A_l \otimes G_l` per layer of the network (:meth:`rl.networks.MLP.kronecker_factors`)
and, for :class:`~rl.policies.GaussianMLP`, the exact dense block of the log-standard
deviations. The expectation over actions is taken exactly, through a square root of the
distribution's Fisher; the operator and its exact inverse are
:func:`trustregion.kronecker_factored_operator`. See :doc:`/theory/kfac`.
"""

from __future__ import annotations

import numpy as np

import trustregion as tr
from rl.distributions import Categorical, DiagGaussian
from rl.policies import CategoricalCNN, CategoricalMLP, GaussianMLP

__all__ = ["fisher_roots", "kfac_blocks", "kfac_fisher_operator"]


def fisher_roots(distribution_class, params):
    r"""Square roots :math:`R_n` of the output Fisher, :math:`R_n R_n^T = F_{dist}(y_n)`.

    Parameters
    ----------
    distribution_class : type
        :class:`~rl.distributions.Categorical` (``params`` are logits) or
        :class:`~rl.distributions.DiagGaussian` (``params`` are ``[mean, log_std]``; the
        root covers the mean only, whose Fisher is :math:`\mathrm{diag}(1/\sigma^2)`).
    params : ndarray of shape (N, P)

    Returns
    -------
    ndarray of shape (N, K, K)
        Categorical: column :math:`k` is :math:`\sqrt{p_k}(e_k - p)`, so
        :math:`R R^T = \sum_k p_k (e_k - p)(e_k - p)^T = \mathrm{diag}(p) - p p^T`.
        DiagGaussian: :math:`\mathrm{diag}(1/\sigma)`.
    """
    params = np.asarray(params, dtype=np.float64)
    if distribution_class is Categorical:
        p = np.asarray(Categorical(params).probs())
        eye = np.eye(p.shape[1])
        # R[n, i, k] = sqrt(p_k) (delta_ik - p_i)
        return (eye[None, :, :] - p[:, :, None]) * np.sqrt(p)[:, None, :]
    if distribution_class is DiagGaussian:
        d = params.shape[1] // 2
        inv_std = np.exp(-params[:, d:])
        return inv_std[:, :, None] * np.eye(d)[None, :, :]
    raise ValueError(f"K-FAC supports Categorical and DiagGaussian heads; got "
                     f"{getattr(distribution_class, '__name__', distribution_class)}")


def _network_input(policy, obs):
    """The network's input: the observations, normalised as the policy's forward pass does."""
    x = np.asarray(obs)
    if x.ndim != 2 or x.shape[1] != policy.obs_dim:
        raise ValueError(f"obs must have shape (N, {policy.obs_dim}); got shape {x.shape}")
    if policy.obs_normalizer is not None:
        x = policy.obs_normalizer.normalize(x)
    return x


def kfac_blocks(policy, obs, weights=None, theta=None):
    """The K-FAC blocks of an MLP policy's Fisher on a batch, in the order of θ.

    Parameters
    ----------
    policy : CategoricalMLP or GaussianMLP
    obs : ndarray of shape (N, obs_dim)
    weights : ndarray of shape (N,), optional
        Row weights summing to one (default ``1/N`` each, a sampled batch).
    theta : ndarray, optional
        Point of evaluation (default the policy's θ).

    Returns
    -------
    list
        ``(A_l, G_l)`` per layer of the network, then, for a Gaussian policy, the dense
        log-std block :math:`2 I` (the Fisher of :math:`\\log\\sigma`, exact: the mean and
        log-std blocks of a Gaussian's Fisher are uncoupled), ready for
        :func:`trustregion.kronecker_factored_operator`.
    """
    if not isinstance(policy, (CategoricalMLP, GaussianMLP, CategoricalCNN)):
        raise ValueError(f"K-FAC needs an MLP policy (CategoricalMLP or GaussianMLP) or a "
                         f"CategoricalCNN; got {type(policy).__name__}")
    theta = policy.theta if theta is None else np.asarray(theta, dtype=np.float64)
    if isinstance(policy, CategoricalCNN):  # KFC for the convolutions (Grosse & Martens 2016)
        images = np.asarray(obs)
        n = images.shape[0]
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
        roots = fisher_roots(Categorical, policy.distribution_params(images, theta))
        return policy.net.kronecker_factors(theta, images, roots, w)
    x = _network_input(policy, obs)
    n = x.shape[0]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    params = policy.distribution_params(obs, theta)
    roots = fisher_roots(policy.distribution_class, params)
    net_theta = theta[: policy.net.num_params]
    blocks = policy.net.kronecker_factors(net_theta, x, roots, w)
    if isinstance(policy, GaussianMLP):
        blocks.append(2.0 * float(np.sum(w)) * np.eye(policy.act_dim))
    return blocks


def kfac_fisher_operator(policy, obs, weights=None, *, theta=None, damping=0.0,
                         pi_damping=True):
    """The K-FAC approximation of an MLP policy's Fisher as a ``LinearOperator``.

    Parameters
    ----------
    policy : CategoricalMLP or GaussianMLP
    obs : ndarray of shape (N, obs_dim)
    weights : ndarray of shape (N,), optional
        Row weights (default ``1/N``), as the objective's Fisher uses them.
    theta : ndarray, optional
        Point of evaluation (default the policy's θ).
    damping : float, optional
        :math:`\\lambda`, split between the factors
        (:func:`trustregion.kronecker_factored_operator`).
    pi_damping : bool, optional
        Martens & Grosse's :math:`\\pi` split (True) or an even one.

    Returns
    -------
    trustregion.KroneckerFactoredOperator
        ``K @ v`` and ``K.inverse() @ v``.

    Examples
    --------
    >>> import numpy as np
    >>> from rl.policies import GaussianMLP
    >>> policy = GaussianMLP(3, 2, hidden_sizes=(), seed=0)
    >>> obs = np.random.default_rng(0).standard_normal((50, 3))
    >>> K = kfac_fisher_operator(policy, obs)
    >>> F = policy.fisher_operator(obs)
    >>> v = np.random.default_rng(1).standard_normal(policy.num_params)
    >>> bool(np.allclose(K @ v, F @ v))     # a linear layer with a Gaussian head: exact
    True
    """
    blocks = kfac_blocks(policy, obs, weights, theta)
    return tr.kronecker_factored_operator(blocks, damping=damping, pi_damping=pi_damping)
