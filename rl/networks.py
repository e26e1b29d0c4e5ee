"""Flat-parameter multilayer perceptrons: one float64 vector θ, two forward paths.

The update traces :meth:`MLP.forward` with autograd; the sampler calls
:meth:`MLP.forward_numpy` on weights cached by :meth:`MLP.set_params`, so the
hot path never builds autograd boxes.
"""

from __future__ import annotations

from itertools import pairwise

import autograd.numpy as anp
import numpy as np
from autograd.extend import defjvp, defvjp, primitive

__all__ = ["MLP", "orthogonal", "tanh"]

_ACTIVATIONS = ("tanh", "relu", "identity")


@primitive
def tanh(x):
    """``numpy.tanh`` whose derivative reuses the output: ``d tanh(x) = (1 - tanh(x)²) dx``.

    autograd's own rule evaluates ``1 / cosh(x)²`` — a second transcendental pass over
    every hidden unit; this one costs two multiplications. It stays differentiable to any
    order because the rule is written in terms of the (traced) output.

    Examples
    --------
    >>> from autograd import grad
    >>> bool(np.isclose(grad(tanh)(0.5), 1.0 / np.cosh(0.5) ** 2, rtol=1e-14))
    True
    """
    return np.tanh(x)


defvjp(tanh, lambda ans, x: lambda g: g * (1.0 - ans * ans))
defjvp(tanh, lambda g, ans, x: g * (1.0 - ans * ans))
tanh.__module__ = __name__  # documented (and doctested) as part of this module


def orthogonal(shape: tuple[int, int], gain: float, rng: np.random.Generator) -> np.ndarray:
    """Draw a (semi-)orthogonal matrix scaled by ``gain``.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the matrix.
    gain : float
        Scale applied to the orthogonal matrix.
    rng : numpy.random.Generator
        Source of the Gaussian matrix.

    Returns
    -------
    W : ndarray of shape ``shape``
        ``gain * Q`` with orthonormal columns (rows >= cols) or rows (rows < cols).

    Notes
    -----
    ``Q`` is the factor of the QR decomposition of a standard Gaussian matrix with the
    signs of ``diag(R)`` folded in, which makes ``Q`` Haar-distributed [1]_. This is
    the initialisation of the OpenAI baselines / CleanRL policies.

    References
    ----------
    .. [1] F. Mezzadri, "How to generate random matrices from the classical compact
       groups", Notices of the AMS 54(5), 2007.

    Examples
    --------
    >>> W = orthogonal((5, 3), 2.0, np.random.default_rng(0))
    >>> bool(np.allclose(W.T @ W, 4.0 * np.eye(3)))
    True
    """
    rows, cols = shape
    big, small = max(rows, cols), min(rows, cols)
    A = rng.standard_normal((big, small))
    Q, R = np.linalg.qr(A)
    Q = Q * np.sign(np.where(np.diag(R) == 0.0, 1.0, np.diag(R)))
    if rows < cols:
        Q = Q.T
    return gain * Q


class MLP:
    """Fully connected network on a flat parameter vector.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``(in, hidden_1, ..., out)``; at least two entries, all >= 1.
    activation : {"tanh", "relu", "identity"}, default "tanh"
        Hidden-layer nonlinearity; the output layer is linear.
    output_gain : float, default 1.0
        Gain of the orthogonal initialisation of the last layer (0.01 for policy
        heads, 1.0 for value heads, as in the PPO/TRPO reference implementations).
    seed : int, numpy.random.Generator or None
        Randomness for the initial parameters stored in :attr:`params`.

    Attributes
    ----------
    sizes : tuple of int
    num_params : int
        Length of the flat parameter vector.
    params : ndarray of shape (num_params,)
        The parameters cached for :meth:`forward_numpy` (a copy; set with
        :meth:`set_params`).

    Notes
    -----
    Layout of θ: for each layer ``k`` in order, the weight ``W_k`` of shape
    ``(sizes[k], sizes[k+1])`` in row-major order, then the bias ``b_k``. The
    forward pass is ``h_{k+1} = act(h_k W_k + b_k)`` with no activation on the last
    layer. Initialisation: orthogonal weights [1]_ with gain √2 on hidden layers and
    ``output_gain`` on the last, zero biases, as in the PPO reference code [2]_.

    References
    ----------
    .. [1] A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the
       nonlinear dynamics of learning in deep linear neural networks", ICLR 2014.
    .. [2] S. Huang et al., "The 37 Implementation Details of Proximal Policy
       Optimization", ICLR Blog Track, 2022.

    Examples
    --------
    >>> net = MLP((3, 8, 2), seed=0)
    >>> net.num_params
    50
    >>> x = np.ones((4, 3))
    >>> bool(np.allclose(net.forward(net.params, x), net.forward_numpy(x)))
    True
    """

    def __init__(self, sizes, *, activation: str = "tanh", output_gain: float = 1.0, seed=None):
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                f"sizes must be a sequence of at least two positive ints (input, ..., output); "
                f"got {sizes!r}"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}; got {activation!r}")
        output_gain = float(output_gain)
        if not np.isfinite(output_gain) or output_gain < 0.0:
            raise ValueError(f"output_gain must be a finite number >= 0; got {output_gain!r}")
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        self.output_gain = output_gain
        # (weight slice, weight shape, bias slice) per layer
        self._layout = []
        offset = 0
        for n_in, n_out in pairwise(self.sizes):
            w = slice(offset, offset + n_in * n_out)
            offset += n_in * n_out
            b = slice(offset, offset + n_out)
            offset += n_out
            self._layout.append((w, (n_in, n_out), b))
        self.num_params = offset
        self._weights: list[tuple[np.ndarray, np.ndarray]] = []
        self.set_params(self.init_params(np.random.default_rng(seed)))

    def __repr__(self) -> str:
        return (
            f"MLP(sizes={self.sizes}, activation={self.activation!r}, "
            f"output_gain={self.output_gain})"
        )

    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """Draw initial parameters (orthogonal weights, zero biases).

        Parameters
        ----------
        rng : numpy.random.Generator

        Returns
        -------
        theta : ndarray of shape (num_params,), float64

        Examples
        --------
        >>> net = MLP((2, 4, 1), output_gain=0.01)
        >>> theta = net.init_params(np.random.default_rng(1))
        >>> theta.shape, float(abs(theta[-1]))
        ((17,), 0.0)
        """
        theta = np.zeros(self.num_params)
        last = len(self._layout) - 1
        for k, (w, shape, _b) in enumerate(self._layout):
            gain = self.output_gain if k == last else np.sqrt(2.0)
            theta[w] = orthogonal(shape, gain, rng).ravel()
        return theta

    def _check_params(self, flat) -> np.ndarray:
        flat = np.asarray(flat, dtype=np.float64)
        if flat.shape != (self.num_params,):
            raise ValueError(
                f"flat_params must have shape ({self.num_params},) for an MLP with sizes "
                f"{self.sizes}; got shape {flat.shape}"
            )
        return flat

    def set_params(self, flat) -> None:
        """Cache ``flat`` unflattened as contiguous numpy weights for :meth:`forward_numpy`.

        Parameters
        ----------
        flat : array_like of shape (num_params,)
        """
        flat = self._check_params(flat)
        if not np.all(np.isfinite(flat)):
            raise ValueError("flat_params contains NaN or inf; pass finite parameters")
        self.params = flat.copy()
        self._weights = [
            (np.ascontiguousarray(self.params[w].reshape(shape)), self.params[b].copy())
            for w, shape, b in self._layout
        ]

    def unflatten(self, flat_params):
        """Split θ into ``[(W_0, b_0), (W_1, b_1), ...]`` by slicing (autograd-traceable)."""
        return [(flat_params[w].reshape(shape), flat_params[b]) for w, shape, b in self._layout]

    def forward(self, flat_params, x):
        """Network output for parameters ``flat_params``, traceable by autograd.

        Parameters
        ----------
        flat_params : array of shape (num_params,)
            May be an autograd box.
        x : ndarray of shape (N, sizes[0])

        Returns
        -------
        y : array of shape (N, sizes[-1])
        """
        h = x
        layers = self.unflatten(flat_params)
        for k, (W, b) in enumerate(layers):
            h = anp.dot(h, W) + b
            if k < len(layers) - 1:
                if self.activation == "tanh":
                    h = tanh(h)
                elif self.activation == "relu":
                    h = anp.maximum(h, 0.0)
        return h

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        """Network output at the cached parameters, plain numpy (the sampling hot path).

        Parameters
        ----------
        x : ndarray of shape (N, sizes[0])

        Returns
        -------
        y : ndarray of shape (N, sizes[-1])
        """
        act = _NUMPY_ACTIVATIONS[self.activation]
        *hidden, (W_out, b_out) = self._weights
        h = x
        for W, b in hidden:
            h = h @ W
            h += b
            if act is not None:
                act(h, out=h)
        h = h @ W_out
        h += b_out
        return h


def _relu(h, out):
    return np.maximum(h, 0.0, out=out)


_NUMPY_ACTIVATIONS = {"tanh": np.tanh, "relu": _relu, "identity": None}
