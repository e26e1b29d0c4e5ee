"""Input validation shared by the solvers: clear errors raised before any work."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import dnrm2
from scipy.sparse.linalg import LinearOperator

__all__ = [
    "as_vector",
    "as_operator",
    "as_dense_matrix",
    "positive_scalar",
    "nonnegative_scalar",
    "scalar_option",
    "real_scalar_output",
    "check_symmetric",
    "check_callable",
    "norm2",
    "autograd_error",
    "reject_complex",
    "fast_matvec",
    "checked_maxiter",
    "nonempty",
    "PRODUCT_EXPONENT",
    "checked_product",
]

_EPS = float(np.finfo(np.float64).eps)

# The Krylov solvers keep the numbers their recurrences form within [2^-512, 2^512], far
# inside float64's normal range [2^-1022, 2^1024): a problem whose data lie further from one
# is solved scaled by powers of two, under which CG and Steihaug are exactly equivariant.
# CG forms squares of its data (r^T r), so it rescales data beyond 2^(512 / 2); Steihaug's
# boundary quadratic forms products of squares (b^2 - 4ac), so it rescales beyond 2^(512 / 4).
PRODUCT_EXPONENT = 512
# below this the sum of squares in ``np.linalg.norm`` has left the normal range (2^-1022)
_NORM_FLOOR = 2.0**-511


def _is_complex(x) -> bool:
    """Whether ``x`` holds complex numbers (an array, a sparse matrix, an operator or a list)."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        try:
            return np.dtype(dtype).kind == "c"
        except TypeError:
            return False
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x).dtype.kind == "c"
        except (TypeError, ValueError):
            return False
    return isinstance(x, complex)


def reject_complex(x, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` if ``x`` holds complex numbers."""
    if _is_complex(x):
        raise ValueError(
            f"{name} must be real; got complex values (pass the real part if the imaginary part "
            "is zero, or split the problem into real and imaginary parts)"
        )


def scalar_option(value):
    """``value`` with a 0-d numpy array unwrapped to its numpy scalar (as scipy accepts them)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def as_vector(
    x, name: str, *, n: int | None = None, copy: bool = True, against: str = "the operator"
) -> np.ndarray:
    """Return ``x`` as a finite 1-D float64 array, or raise ``ValueError`` naming ``name``.

    Lists, integer and float32 arrays are converted (``copy=False`` converts only when it
    must); complex input is refused. ``against`` names what ``n`` comes from.
    """
    reject_complex(x, name)
    try:
        if copy:
            arr = np.array(x, dtype=np.float64, copy=True)
        else:
            arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of real numbers; got "
                         f"{type(x).__name__}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector; got an array of shape {arr.shape} (use "
                         f".ravel())")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have length {n} to match {against}; got length "
                         f"{arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return arr


def positive_scalar(value, name: str) -> float:
    """Return ``value`` as a finite float > 0, or raise ``ValueError`` naming ``name``."""
    value = scalar_option(value)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a positive real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be finite and > 0; got {value!r}")
    return value


def nonnegative_scalar(value, name: str) -> float:
    """Return ``value`` as a finite float >= 0, or raise ``ValueError`` naming ``name``."""
    value = scalar_option(value)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a non-negative real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return value


def real_scalar_output(value, name: str) -> float:
    """``value`` returned by the caller's ``name`` (a number or a size-1 array) as a float.

    NaN and inf pass through; arrays of another size and complex values are refused.
    """
    arr = np.asarray(value)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must return a real scalar; got the complex value {value!r}")
    if arr.dtype.kind not in "biuf":  # None, strings and other objects are not numbers
        raise ValueError(f"{name} must return a real scalar; got {type(value).__name__} "
                         f"{value!r}"[:200])
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size != 1:
        raise ValueError(f"{name} must return a scalar; got an array of shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def check_callable(fn, name: str, signature: str) -> None:
    """Raise ``ValueError`` unless ``fn`` is callable; ``signature`` shows how it is called."""
    if not callable(fn):
        raise ValueError(f"{name} must be a callable {signature}; got {type(fn).__name__}")


def check_symmetric(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``max |A - A^T| > sqrt(eps) max |A|`` for a dense square ``arr``."""
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    asymmetry = float(np.max(np.abs(arr - arr.T))) if arr.size else 0.0
    if asymmetry > np.sqrt(_EPS) * scale:
        raise ValueError(
            f"{name} must be symmetric; got max |{name} - {name}^T| = {asymmetry:.3g} for "
            f"max |{name}| = {scale:.3g} (pass ({name} + {name}.T) / 2)"
        )


_PROBE_ABOVE = 128  # larger dense matrices are checked for symmetry by random probes


def check_symmetric_probe(arr: np.ndarray, name: str) -> None:
    """Symmetry check of a dense square ``arr`` that costs two matrix-vector products.

    Up to ``_PROBE_ABOVE`` rows this is :func:`check_symmetric`. Above, forming
    ``A - A^T`` would cost as much as dozens of products with ``A`` (the transpose is
    read across the rows), more than a short CG run: instead, for two fixed pseudo-random
    vectors ``u, v``, ``|v^T A u - u^T A v| <= sqrt(eps) (||A u|| ||v|| + ||A v|| ||u||)``
    is required. A symmetric ``A`` passes with any rounding of its products; a matrix
    whose asymmetry is not negligible fails, except on a set of ``(u, v)`` of measure
    zero.
    """
    n = arr.shape[0]
    if n <= _PROBE_ABOVE:
        check_symmetric(arr, name)
        return
    u, v = np.random.default_rng(0x5EED).standard_normal((2, n))
    with np.errstate(all="ignore"):  # a matrix with inf or NaN is reported elsewhere
        Au, Av = arr @ u, arr @ v
        gap = abs(float(v @ Au) - float(u @ Av))
        norm = np.linalg.norm
        scale = float(norm(Au) * norm(v) + norm(Av) * norm(u))
    if gap > np.sqrt(_EPS) * scale:
        raise ValueError(
            f"{name} must be symmetric; for random u, v, v^T {name} u - u^T {name} v = "
            f"{gap:.3g} against a scale of {scale:.3g} (pass ({name} + {name}.T) / 2)"
        )


def norm2(v: np.ndarray) -> float:
    """Euclidean norm of a float64 vector: :func:`numpy.linalg.norm` unless it under/overflows.

    ``np.linalg.norm`` squares the entries, so the result is recomputed by BLAS
    ``dnrm2`` (which scales) only when it came out as ``inf`` or below ``2^-511`` for
    finite, nonzero ``v``; in the normal range it is returned unchanged.
    """
    with np.errstate(over="ignore", under="ignore"):
        nrm = float(np.linalg.norm(v))
    if _NORM_FLOOR <= nrm < math.inf:
        return nrm
    if not np.all(np.isfinite(v)) or not v.any():
        return nrm
    return float(dnrm2(np.ascontiguousarray(v, dtype=np.float64)))


def autograd_error(subject: str, instead: str) -> ValueError:
    """The error for a function autograd could not trace."""
    return ValueError(
        f"autograd could not differentiate {subject}; write it with autograd.numpy (import "
        f"autograd.numpy as np), or {instead}"
    )


def as_dense_matrix(H, name: str, *, n: int | None = None) -> np.ndarray:
    """Return ``H`` as a finite square float64 2-D array (dense reference solvers only)."""
    reject_complex(H, name)
    if sp.issparse(H):
        H = H.toarray()
    elif isinstance(H, LinearOperator):
        H = H @ np.eye(H.shape[1])
        reject_complex(H, name)
    try:
        arr = np.array(H, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a square matrix of real numbers; got "
                         f"{type(H).__name__}") from exc
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square 2-D matrix; got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has shape {arr.shape} but the vector has length {n}; shapes "
                         f"must agree")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return arr


def checked_product(y, name: str, n: int, whose: str = "it") -> np.ndarray:
    """``y``, what ``name`` returned for a vector of length ``n``, as an array; a
    ``ValueError`` naming ``name`` (and saying what ``whose``, "it" or "its matvec", must do)
    if it holds complex values or has not ``n`` entries.

    The one check of a product's output: callables (:func:`as_operator`), operators
    (:func:`fast_matvec`) and :func:`trustregion.minimize`'s ``hessp`` go through it.
    """
    y = np.asarray(y)
    if y.dtype.kind == "c":
        raise ValueError(f"{name} returned complex values; {whose} must map real vectors to real "
                         "vectors (return the real part if the imaginary part is rounding "
                         "noise)")
    if y.size != n:
        raise ValueError(f"{name} returned an array of shape {y.shape} for a vector of length "
                         f"{n}; {whose} must return a vector of length {n}, shape ({n},)")
    return y


def as_operator(A, name: str, *, n: int | None = None, symmetric: bool = False) -> LinearOperator:
    """Wrap ``A`` as a square float64 ``LinearOperator`` of size ``n``.

    ``A`` may be a dense array, a scipy sparse matrix, a ``LinearOperator`` or a
    callable ``v -> A v`` (then ``n`` is required). Complex input is refused. Dense
    and sparse inputs are checked for finiteness, and dense ones for symmetry when
    ``symmetric``; operators and callables cannot be checked up front, and a callable
    returning the wrong size or complex values is reported at its first product.
    """
    reject_complex(A, name)
    if isinstance(A, LinearOperator):
        op = A
    elif sp.issparse(A):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"{name} must be square; got a sparse matrix of shape {A.shape}")
        if not np.all(np.isfinite(A.data)):
            raise ValueError(f"{name} contains NaN or inf; pass finite values")
        op = LinearOperator(A.shape, matvec=A.dot, rmatvec=A.T.dot, dtype=np.float64)
    elif isinstance(A, np.ndarray) or isinstance(A, (list, tuple)):
        try:
            arr = np.asarray(A, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a square matrix of real numbers; got "
                             f"{type(A).__name__}") from exc
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(f"{name} must be a square 2-D matrix; got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf; pass finite values")
        if symmetric:
            check_symmetric_probe(arr, name)
        op = LinearOperator(arr.shape, matvec=arr.dot, rmatvec=arr.T.dot, matmat=arr.dot,
                            dtype=np.float64)
    elif callable(A):
        if n is None:
            raise ValueError(f"{name} is a callable, so its size cannot be inferred; pass a "
                             f"LinearOperator instead")
        size = n
        op = LinearOperator((n, n), dtype=np.float64, matvec=lambda v: np.asarray(
            checked_product(A(v), name, size), dtype=np.float64).reshape(-1))
    else:
        raise ValueError(
            f"{name} must be an ndarray, a scipy sparse matrix, a LinearOperator or a callable v "
            f"-> A v; "
            f"got {type(A).__name__}"
        )
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"{name} must be square; got shape {op.shape}")
    if n is not None and op.shape[0] != n:
        raise ValueError(f"{name} has shape {op.shape} but the vector has length {n}; shapes "
                         f"must agree")
    return op


def fast_matvec(A, op, name: str = "A") -> Callable[[np.ndarray], np.ndarray]:
    """The cheapest correct ``v -> A v`` for an input already validated by ``as_operator``.

    A ``LinearOperator`` whose product has the wrong size or is complex (a declared real
    operator can still compute in complex arithmetic) is reported by ``name``.
    """
    if sp.issparse(A):
        return A.dot
    if isinstance(A, (np.ndarray, list, tuple)):
        return np.asarray(A, dtype=np.float64).dot
    matvec = op.matvec
    if not isinstance(A, LinearOperator):
        return matvec  # a callable: as_operator checks its products
    n = op.shape[0]

    def checked_matvec(v):
        try:
            y = matvec(v)
        except ValueError as exc:
            if "reshape" not in str(exc):
                raise
            raise ValueError(
                f"{name} returned an array of the wrong size for a vector of length {n} "
                f"({exc}); its matvec must return a vector of length {n}"
            ) from exc
        return checked_product(y, name, n, "its matvec")

    return checked_matvec


def checked_maxiter(maxiter, n: int) -> int:
    """``maxiter`` as an int >= 0, with ``None`` meaning ``10 * n`` (scipy's default)."""
    if maxiter is None:
        return 10 * n
    maxiter = scalar_option(maxiter)
    if not isinstance(maxiter, numbers.Integral) or isinstance(maxiter, bool) or maxiter < 0:
        raise ValueError(f"maxiter must be a non-negative integer or None; got {maxiter!r}")
    return int(maxiter)


def nonempty(v: np.ndarray, name: str) -> None:
    """Refuse an empty vector ``v`` by name."""
    if v.shape[0] == 0:
        raise ValueError(f"{name} must have at least one entry; got an empty vector")
