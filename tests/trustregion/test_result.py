"""Result types and statuses: what a user reads off a result, and what its repr shows."""

from __future__ import annotations

import numpy as np

import trustregion as tr
from trustregion.result import CGStatus, SubproblemStatus

A = np.array([[4.0, 1.0], [1.0, 3.0]])
G = np.array([1.0, 2.0])


def test_repr_shows_status_success_and_message_and_summarises_arrays():
    """success and message are properties, so a dataclass repr would hide them; arrays are
    summarised by shape, so a result of a large problem prints in one line."""
    res = tr.cg(np.eye(1000), np.ones(1000))
    text = repr(res)
    assert text.startswith("CGResult(status=CGStatus.CONVERGED, success=True, message=")
    assert ", status=" not in text  # shown once, first, not again among the fields
    assert repr(res.message) in text
    assert "x=<array shape=(1000,) dtype=float64>" in text
    assert "nit=1" in text and "nmatvec=" in text and "residual_norm=" in text
    assert len(text) < 600 and "\n" not in text


def test_repr_of_every_result_type():
    """Every result shows its status, success, message and scalars; nested results briefly."""
    results = [
        tr.steihaug(G, A, 0.1),
        tr.exact(G, A, 0.1),
        tr.backtracking(lambda x: float(x @ x), G, -G),
        tr.natural_step(G, A, 0.01),
    ]
    for res in results:
        text = repr(res)
        assert text.startswith(f"{type(res).__name__}(status={type(res.status).__name__}.")
        assert f"success={res.success}" in text and repr(res.message) in text
        assert ", status=" not in text  # the status leads and is not repeated
        assert "array([" not in text
    step = repr(results[-1])
    assert "beta=" in step and "cg=CGResult(status=CONVERGED, success=True)" in step
    assert "trials=<tuple of length 1>" in repr(results[2])


def test_status_values_are_unchanged():
    """The numeric codes are public (as scipy numbers its statuses) and never renumbered."""
    assert [int(s) for s in CGStatus] == [0, 1, 2, 3, 4]
    assert [int(s) for s in SubproblemStatus] == [0, 1, 2, 3, 4, 5, 6]
    assert CGStatus.CONVERGED.success and not CGStatus.NON_FINITE.success
