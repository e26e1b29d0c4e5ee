"""Input validation shared by the solvers: clear errors raised before any work."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

__all__ = ["as_vector", "as_operator", "as_dense_matrix", "positive_scalar", "nonnegative_scalar"]


def as_vector(x, name: str, *, n: int | None = None, copy: bool = True) -> np.ndarray:
    """Return ``x`` as a finite 1-D float64 array, or raise ``ValueError`` naming ``name``."""
    try:
        arr = np.array(x, dtype=np.float64, copy=copy)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of real numbers; got "
                         f"{type(x).__name__}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector; got an array of shape {arr.shape} (use "
                         f".ravel())")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have length {n} to match the operator; got length "
                         f"{arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; pass finite values")
    return arr


def positive_scalar(value, name: str) -> float:
    """Return ``value`` as a finite float > 0, or raise ``ValueError`` naming ``name``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a positive real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be finite and > 0; got {value!r}")
    return value


def nonnegative_scalar(value, name: str) -> float:
    """Return ``value`` as a finite float >= 0, or raise ``ValueError`` naming ``name``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a non-negative real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return value


def as_dense_matrix(H, name: str, *, n: int | None = None) -> np.ndarray:
    """Return ``H`` as a finite square float64 2-D array (dense reference solvers only)."""
    if sp.issparse(H):
        H = H.toarray()
    elif isinstance(H, LinearOperator):
        H = H @ np.eye(H.shape[1])
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


def as_operator(A, name: str, *, n: int | None = None) -> LinearOperator:
    """Wrap ``A`` as a square float64 ``LinearOperator`` of size ``n``.

    ``A`` may be a dense array, a scipy sparse matrix, a ``LinearOperator`` or a
    callable ``v -> A v`` (then ``n`` is required). Dense and sparse inputs are
    checked for finiteness; operators and callables cannot be checked up front.
    """
    if isinstance(A, LinearOperator):
        op = A
    elif sp.issparse(A):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"{name} must be square; got a sparse matrix of shape {A.shape}")
        if not np.all(np.isfinite(A.data)):
            raise ValueError(f"{name} contains NaN or inf; pass finite values")
        op = LinearOperator(A.shape, matvec=A.dot, rmatvec=A.T.dot, dtype=np.float64)
    elif isinstance(A, np.ndarray) or isinstance(A, (list, tuple)):
        arr = np.asarray(A, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(f"{name} must be a square 2-D matrix; got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf; pass finite values")
        op = LinearOperator(arr.shape, matvec=arr.dot, rmatvec=arr.T.dot, matmat=arr.dot,
                            dtype=np.float64)
    elif callable(A):
        if n is None:
            raise ValueError(f"{name} is a callable, so its size cannot be inferred; pass a "
                             f"LinearOperator instead")
        op = LinearOperator((n, n), dtype=np.float64,
                            matvec=lambda v: np.asarray(A(v), dtype=np.float64).reshape(-1))
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
