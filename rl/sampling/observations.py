"""How a sampler stores the observations of one observation space.

A sampler keeps observations in preallocated arrays with leading axes ``(T, N)`` (a batch)
or ``(N,)`` (the current step), whatever the space:

==================  ===============================================  =====================
space               stored as                                        finiteness checked
==================  ===============================================  =====================
``Discrete``        int64 states, shape ``(*lead,)``                 no
1-D ``Box``         float64 vectors, ``(*lead, d)``                  yes
rank-3 ``Box``      images in the space's dtype, ``(*lead, *shape)``  float images
                    (``uint8`` frames stay ``uint8``)
``Dict``/``Tuple``  the space's structure with one array per leaf,   float leaves
                    ``(*lead, *leaf.shape)`` in the leaf's dtype
                    (:meth:`rl.spaces.ObservationLayout.empty`)
==================  ===============================================  =====================

so a batch never holds a Python object per step, and an image batch takes one byte per
pixel. :class:`ObservationStorage` writes, reads and checks such arrays with the same calls
for every kind; for the first two kinds these are the plain array operations the samplers
always made (``store[t] = obs``), so their batches are unchanged.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from rl.spaces import ObservationLayout, all_finite, leaf_arrays, map_leaves

__all__ = ["ObservationStorage"]


class ObservationStorage:
    """The storage of one observation space's batches (see the module notes).

    Parameters
    ----------
    space : gymnasium.spaces.Space
        A single environment's observation space, already accepted by
        :func:`rl.envs.check_spaces`.

    Attributes
    ----------
    structured : bool
        Observations are dicts / tuples of arrays (a ``Dict`` or ``Tuple`` space).
    layout : rl.spaces.ObservationLayout or None
        The leaves of a structured or image space (None for states and vectors).
    shape, dtype
        Shape of one observation and the storage dtype (plain arrays only).
    checks_finite : bool
        Whether some stored entries are floats, whose finiteness the samplers check.

    Examples
    --------
    >>> from gymnasium import spaces
    >>> store = ObservationStorage(spaces.Dict({"image": spaces.Box(0, 255, (4, 4, 3), np.uint8),
    ...                                         "key": spaces.Discrete(2)}))
    >>> batch = store.empty(5, 2)
    >>> batch["image"].dtype, batch["image"].shape, batch["key"].shape
    (dtype('uint8'), (5, 2, 4, 4, 3), (5, 2))
    """

    def __init__(self, space):
        self.space = space
        self.structured = isinstance(space, (spaces.Dict, spaces.Tuple))
        self.layout = None
        if isinstance(space, spaces.Discrete):
            self.shape, self.dtype, self.checks_finite = (), np.dtype(np.int64), False
        elif isinstance(space, spaces.Box) and len(space.shape) == 1:
            self.shape, self.dtype, self.checks_finite = tuple(space.shape), np.dtype(
                np.float64), True
        else:
            self.layout = ObservationLayout.from_space(space)
            if self.structured:
                self.shape = self.dtype = None
                self._leaves = _with_leaves(self.layout.empty(0), self.layout)
                self.checks_finite = any(leaf.dtype.kind == "f" for leaf in self.layout.leaves)
            else:  # an image
                self.shape, self.dtype = tuple(space.shape), np.dtype(space.dtype)
                self.checks_finite = self.dtype.kind == "f"

    def __repr__(self) -> str:
        what = self.layout if self.structured else f"shape={self.shape}, dtype={self.dtype}"
        return f"ObservationStorage({what})"

    # -- arrays ---------------------------------------------------------------------------
    def empty(self, *lead):
        """Uninitialised storage with leading axes ``lead`` (e.g. ``T, N``)."""
        if self.structured:
            return self.layout.empty(tuple(lead))
        return np.empty((*lead, *self.shape), dtype=self.dtype)

    def convert(self, obs):
        """A copy of a batch as stored (dtype converted; the vector env's arrays are reused
        by its next step)."""
        if self.structured:
            return map_leaves(lambda x, leaf: np.array(x, dtype=leaf.dtype), obs, self._leaves)
        return np.array(obs, dtype=self.dtype)

    def set(self, store, index, obs) -> None:
        """``store[index] = obs`` (leaf by leaf for a structured space)."""
        if self.structured:
            self.layout.assign(store, index, obs)
        else:
            store[index] = obs

    def get(self, store, index):
        """``store[index]``: views of the rows (leaf by leaf for a structured space)."""
        if self.structured:
            return map_leaves(lambda x: x[index], store)
        return store[index]

    # -- checks ---------------------------------------------------------------------------
    def finite_sum(self, obs) -> float:
        """The sum of the float entries of ``obs`` (0 when none are floats): finite exactly
        when they all are, unless it overflows (then :meth:`bad_rows` finds none)."""
        if not self.checks_finite:
            return 0.0
        if not self.structured:
            return obs.sum()
        return sum(float(x.sum()) for x in leaf_arrays(obs) if x.dtype.kind == "f")

    def finite(self, obs) -> bool:
        """Whether every float entry of ``obs`` is finite."""
        return not self.checks_finite or all_finite(obs)

    def bad_rows(self, obs) -> np.ndarray:
        """Boolean mask of the rows (first axis) of ``obs`` with a non-finite float entry."""
        arrays = [x for x in leaf_arrays(obs) if x.dtype.kind == "f"] if self.checks_finite \
            else []
        n = int(np.shape(leaf_arrays(obs)[0])[0])
        bad = np.zeros(n, dtype=bool)
        for x in arrays:
            bad |= ~np.isfinite(x).reshape(n, -1).all(axis=1)
        return bad

    def checked(self, obs, num_envs: int, where: str):
        """Saved current observations (``num_envs`` rows) as stored, after checking their
        shapes, finiteness and (states, one-hot leaves) ranges; ValueError naming ``where``."""
        space = self.space
        if self.structured:
            try:
                out = self.convert(obs)
                for leaf in self.layout.leaves:
                    self.layout.leaf_batch(out, leaf, num_envs)
                self.layout.encode(out)  # Discrete / MultiDiscrete values in range
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                raise ValueError(f"{where} must hold {num_envs} observations of {space!r} (one "
                                 f"row per environment): {exc}") from None
            if not self.finite(out):
                raise ValueError(f"{where} must hold finite observations of {space!r}")
            return out
        shape = (num_envs, *self.shape)
        try:
            out = np.array(obs, dtype=self.dtype)
        except (TypeError, ValueError):
            out = None
        if out is None or out.shape != shape:
            raise ValueError(
                f"{where} must have shape {shape} (one observation of {space!r} per "
                f"environment), or be None; got shape {np.shape(obs)}"
            )
        if isinstance(space, spaces.Discrete):
            bad = np.asarray(obs).dtype.kind not in "iu" or np.any(out < 0) or np.any(
                out >= space.n)
        else:
            bad = not self.finite(out)
        if bad:
            raise ValueError(f"{where} must hold finite observations of {space!r}; got {obs!r}")
        return out


def _with_leaves(tree, layout):
    """``tree`` (the layout's structure) with every leaf replaced by its ObservationLeaf."""
    def build(sub, keys):
        if isinstance(sub, dict):
            return {k: build(v, (*keys, k)) for k, v in sub.items()}
        if isinstance(sub, tuple):
            return tuple(build(v, (*keys, i)) for i, v in enumerate(sub))
        return next(leaf for leaf in layout.leaves if leaf.keys == keys)

    return build(tree, ())
