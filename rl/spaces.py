"""Gymnasium spaces read once: the action distribution and the observation layout.

An environment's spaces are turned, once, into two descriptions that the policy and the
sampler share:

* :func:`action_spec` — which distribution samples the actions (``Discrete`` →
  :class:`~rl.distributions.Categorical`, ``Box`` → :class:`~rl.distributions.DiagGaussian`,
  ``MultiDiscrete`` → :class:`~rl.distributions.MultiCategorical`, ``MultiBinary`` →
  :class:`~rl.distributions.Bernoulli`), the shape of one action and the dtype to store it in;
* :class:`ObservationLayout` — the leaves of a ``Box``, ``Dict`` or ``Tuple`` observation
  space, each with its encoder (identity for vectors and bits, one-hot for ``Discrete`` and
  ``MultiDiscrete``, the convolutional torso of :mod:`rl.conv` for images), and the columns
  each non-image leaf occupies in the torso's input vector.

:meth:`ObservationLayout.encode` turns a batch of structured observations — a dict (or
tuple) of arrays with one row per environment, as gymnasium's vector environments return
them — into that input vector by whole-array writes: no Python object per step or per row.
:meth:`ObservationLayout.empty`, :meth:`~ObservationLayout.assign` and
:meth:`~ObservationLayout.take` store such batches leaf by leaf in preallocated arrays of
the leaves' own dtypes (``uint8`` images stay ``uint8``).

Batches of structured observations are dicts (or tuples) of arrays whose first axes index
the rows; :func:`map_leaves`, :func:`leaf_arrays`, :func:`count_rows` and
:func:`all_finite` work on them and on plain arrays alike, so the code that moves batches
around (samplers, advantage estimation) needs no case of its own for them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["ActionSpec", "ObservationLeaf", "ObservationLayout", "action_spec", "all_finite",
           "count_rows", "leaf_arrays", "map_leaves"]

#: Deepest nesting of Dict/Tuple spaces the layout flattens (a Dict of Dicts of leaves).
MAX_DEPTH = 2

_DROP_HINT = (
    "drop it with gymnasium.wrappers.FilterObservation (Dict keys) or a "
    "gymnasium.wrappers.TransformObservation that removes or encodes it as a Box"
)


# --------------------------------------------------------------------------------------
# Batches: plain arrays, or dicts / tuples of arrays
# --------------------------------------------------------------------------------------


def map_leaves(fn, obs, *others):
    """``fn`` applied to every array of a batch, keeping its structure.

    Parameters
    ----------
    fn : callable
        Called as ``fn(leaf, *other_leaves)`` on each array.
    obs : ndarray, dict or tuple
        A plain array (its own leaf), or a dict / tuple of such, nested.
    *others
        Batches of the same structure, whose leaves are passed beside ``obs``'s.

    Returns
    -------
    The structure of ``obs`` with ``fn``'s results as leaves (a plain dict for a dict).

    Examples
    --------
    >>> batch = {"pos": np.zeros((4, 2)), "door": (np.arange(4), np.ones(4))}
    >>> shapes = map_leaves(lambda x: x[1:3].shape, batch)
    >>> shapes
    {'pos': (2, 2), 'door': ((2,), (2,))}
    >>> map_leaves(lambda x: x.reshape(2, 2, 2)[0, 1].tolist(), np.arange(8))
    [2, 3]
    """
    if isinstance(obs, dict):
        return {k: map_leaves(fn, v, *(o[k] for o in others)) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(map_leaves(fn, v, *(o[i] for o in others)) for i, v in enumerate(obs))
    return fn(obs, *others)


def leaf_arrays(obs) -> list:
    """The arrays of a batch, depth first (``[obs]`` for a plain array)."""
    if isinstance(obs, dict):
        return [x for v in obs.values() for x in leaf_arrays(v)]
    if isinstance(obs, tuple):
        return [x for v in obs for x in leaf_arrays(v)]
    return [obs]


def count_rows(obs) -> int:
    """The length of the first axis of a batch (of its first leaf for a dict / tuple)."""
    return int(np.shape(leaf_arrays(obs)[0])[0])


def all_finite(obs) -> bool:
    """Whether every float entry of a batch (plain array, dict or tuple) is finite.

    Examples
    --------
    >>> all_finite({"image": np.zeros((1, 2, 2, 1), np.uint8), "pos": np.array([[np.nan]])})
    False
    """
    for x in leaf_arrays(obs):
        x = np.asarray(x)
        if x.dtype.kind in "fc" and not np.isfinite(x).all():
            return False
    return True


# --------------------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """How the actions of one action space are sampled and stored.

    Attributes
    ----------
    kind : {"discrete", "box", "multidiscrete", "multibinary"}
    shape : tuple of int
        Shape of one action: ``()`` (Discrete), ``(d,)`` (Box), ``(K,)`` (MultiDiscrete),
        ``(d,)`` (MultiBinary).
    dtype : numpy.dtype
        Storage dtype of a batch of actions: int64, or float64 for Box.
    size : int
        ``n`` (Discrete), ``d`` (Box), ``K`` (MultiDiscrete) or the number of bits.
    nvec : tuple of int or None
        The numbers of choices of a MultiDiscrete space.
    distribution_class : type
        The :mod:`rl.distributions` class whose parameters a policy outputs.
    """

    kind: str
    shape: tuple
    dtype: np.dtype
    size: int
    nvec: tuple | None
    distribution_class: type


def action_spec(action_space) -> ActionSpec:
    """Read an action space once: its distribution, action shape and storage dtype.

    Parameters
    ----------
    action_space : gymnasium.spaces.Space
        ``Discrete(n)`` starting at 0, a 1-D float ``Box``, a 1-D ``MultiDiscrete``
        starting at 0, or a 1-D ``MultiBinary``.

    Returns
    -------
    ActionSpec

    Raises
    ------
    ValueError
        One line naming the space, what is wrong and the fix.

    Examples
    --------
    >>> from gymnasium import spaces
    >>> spec = action_spec(spaces.MultiDiscrete([3, 2]))
    >>> spec.kind, spec.shape, spec.distribution_class(np.zeros((1, 5)))
    ('multidiscrete', (2,), MultiCategorical(N=1, nvec=(3, 2)))
    >>> action_spec(spaces.MultiBinary(4)).distribution_class.__name__
    'Bernoulli'
    """
    from gymnasium import spaces

    from rl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical

    where = f"action_space {_one_line(action_space)}"
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError(f"{where}: Discrete spaces must start at 0 (got start="
                             f"{int(action_space.start)}); shift the actions with a "
                             "gymnasium.ActionWrapper")
        n = int(action_space.n)
        return ActionSpec("discrete", (), np.dtype(np.int64), n, None, Categorical)
    if isinstance(action_space, spaces.MultiDiscrete):
        nvec = np.asarray(action_space.nvec)
        if nvec.ndim != 1:
            raise ValueError(f"{where}: MultiDiscrete action spaces must be 1-D (got nvec of "
                             f"shape {nvec.shape}); flatten it with a gymnasium.ActionWrapper")
        if np.any(np.asarray(action_space.start) != 0):
            raise ValueError(f"{where}: MultiDiscrete action spaces must start at 0 (got start="
                             f"{np.asarray(action_space.start).tolist()}); shift the actions "
                             "with a gymnasium.ActionWrapper")
        dist = MultiCategorical.for_nvec(nvec.tolist())
        return ActionSpec("multidiscrete", (len(dist.nvec),), np.dtype(np.int64), len(dist.nvec),
                          dist.nvec, dist)
    if isinstance(action_space, spaces.MultiBinary):
        shape = tuple(action_space.shape)
        if len(shape) != 1:
            raise ValueError(f"{where}: MultiBinary action spaces must be 1-D (got shape "
                             f"{shape}); flatten it with a gymnasium.ActionWrapper")
        return ActionSpec("multibinary", shape, np.dtype(np.int64), shape[0], None, Bernoulli)
    if isinstance(action_space, spaces.Box):
        if not np.issubdtype(action_space.dtype, np.floating):
            raise ValueError(f"{where}: Box action spaces must have a float dtype (got "
                             f"{action_space.dtype}); the Gaussian policy samples real values")
        if len(action_space.shape) != 1:
            raise ValueError(f"{where}: Box action spaces must be 1-D (got shape "
                             f"{action_space.shape}); flatten it with a gymnasium.ActionWrapper")
        d = int(action_space.shape[0])
        return ActionSpec("box", (d,), np.dtype(np.float64), d, None, DiagGaussian)
    raise ValueError(f"{where}: {type(action_space).__name__} action spaces are not supported; "
                     "supported are Discrete, 1-D Box, MultiDiscrete and MultiBinary")


# --------------------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ObservationLeaf:
    """One leaf of an observation space and its encoder.

    Attributes
    ----------
    path : str
        Where the leaf sits, as it is indexed: ``"observation['image']"``,
        ``"observation[0]"``, or ``"observation"`` for a space that is a leaf itself.
    keys : tuple
        The dict keys / tuple indices from the root to the leaf.
    kind : {"box", "discrete", "multidiscrete", "multibinary", "image"}
        The encoder: identity (box, multibinary), one-hot (discrete, multidiscrete), or
        the convolutional torso (image).
    shape : tuple of int
        Shape of one observation of the leaf.
    dtype : numpy.dtype
        The space's dtype (storage keeps it).
    columns : slice
        The leaf's columns in :meth:`ObservationLayout.encode`'s output (empty for images).
    offsets : ndarray of int or None
        One-hot leaves: the first column of each sub-space; value ``x_k`` sets column
        ``offsets[k] + x_k − start[k]``.
    start : ndarray of int or None
        One-hot leaves: the smallest value of each sub-space.
    high : ndarray of int or None
        One-hot leaves: the number of values of each sub-space.
    """

    path: str
    keys: tuple
    kind: str
    shape: tuple
    dtype: np.dtype
    columns: slice
    offsets: np.ndarray | None = None
    start: np.ndarray | None = None
    high: np.ndarray | None = None


def _one_line(space) -> str:
    """``repr(space)`` on one line (numpy prints a 2-D nvec over several)."""
    return " ".join(repr(space).split())


def _path(keys) -> str:
    return "observation" + "".join(f"[{k!r}]" for k in keys)


class ObservationLayout:
    """The leaves of an observation space, their encoders and the torso input they make.

    Build it with :meth:`from_space`.

    Attributes
    ----------
    space : gymnasium.spaces.Space
    leaves : tuple of ObservationLeaf
        Depth-first, in the space's own order (Dict keys as the space orders them).
    flat_dim : int
        Width of :meth:`encode`'s output: the encoded non-image leaves side by side.
    image : ObservationLeaf or None
        The image leaf (rank-3 ``Box``), encoded by the convolutional torso; at most one.
    image_layout : {"HWC", "CHW"} or None
        Axis order of the image leaf.
    box_columns : ndarray of int
        The columns of ``encode``'s output that come from non-image ``Box`` leaves: the
        ones an observation normaliser applies to (one-hot and bit columns, and images,
        are left as they are).

    Notes
    -----
    Encoders, per leaf (sb3's ``preprocess_obs`` does the same for its
    ``MultiInputPolicy`` [1]_):

    * ``Box`` of rank 1 or 2: its values, flattened (identity);
    * ``Box`` of rank 3: an image for the convolutional torso (:mod:`rl.conv`); ``uint8``
      pixels are scaled by 1/255 there, chunk by chunk;
    * ``Discrete(n, start)``: the one-hot vector of ``x − start`` (``n`` columns);
    * ``MultiDiscrete(nvec, start)`` (1-D): one one-hot block per entry (``Σ nvec``
      columns);
    * ``MultiBinary``: its bits as 0.0 / 1.0, flattened.

    ``Text``, ``Graph``, ``Sequence`` and ``OneOf`` leaves, a second image, and Dict/Tuple
    nesting deeper than :data:`MAX_DEPTH` are refused with a one-line ValueError naming
    the leaf's path and the fix.

    References
    ----------
    .. [1] A. Raffin et al., "Stable-Baselines3: Reliable reinforcement learning
       implementations", JMLR 22(268), 2021 (``stable_baselines3/common/preprocessing.py``).

    Examples
    --------
    >>> from gymnasium import spaces
    >>> space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "door": spaces.Discrete(3)})
    >>> layout = ObservationLayout.from_space(space)
    >>> layout.flat_dim, [leaf.path for leaf in layout.leaves]
    (5, ["observation['door']", "observation['pos']"])
    >>> layout.encode({"pos": np.array([[0.5, -0.5]]), "door": np.array([2])})
    array([[ 0. ,  0. ,  1. ,  0.5, -0.5]])
    """

    def __init__(self, space, leaves, flat_dim, image, image_layout):
        self.space = space
        self.leaves = tuple(leaves)
        self.flat_dim = int(flat_dim)
        self.image = image
        self.image_layout = image_layout
        self._flat_leaves = tuple(leaf for leaf in self.leaves if leaf.kind != "image")
        self._by_keys = {leaf.keys: leaf for leaf in self.leaves}
        box = [np.arange(leaf.columns.start, leaf.columns.stop) for leaf in self.leaves
               if leaf.kind == "box"]
        self.box_columns = np.concatenate(box) if box else np.zeros(0, dtype=np.intp)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{leaf.path}: {leaf.kind}{leaf.shape}" for leaf in self.leaves)
        return f"ObservationLayout({kinds}; flat_dim={self.flat_dim})"

    @property
    def structured(self) -> bool:
        """Whether observations are dicts/tuples (a Dict or Tuple space) or plain arrays."""
        return bool(self.leaves) and self.leaves[0].keys != ()

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_space(cls, space, *, image_layout: str = "auto") -> ObservationLayout:
        """Read an observation space into its layout, refusing what no encoder handles.

        Parameters
        ----------
        space : gymnasium.spaces.Space
            A ``Box`` (rank 1, or rank 3 for an image), or a ``Dict`` / ``Tuple`` (nested at
            most :data:`MAX_DEPTH` deep) whose leaves are ``Box`` (rank 1 to 3),
            ``Discrete``, ``MultiDiscrete`` (1-D) or ``MultiBinary``.
        image_layout : {"auto", "HWC", "CHW"}, default "auto"
            Axis order of a rank-3 ``Box``. ``"auto"`` takes channels first (CHW) when the
            first axis is shorter than the last (``(4, 84, 84)``), else channels last
            (``(84, 84, 4)``, ``(10, 10, 4)``: gymnasium's Atari and MinAtar layout).

        Returns
        -------
        ObservationLayout

        Raises
        ------
        ValueError
            One line naming the leaf's path (``observation['mission']``) and the fix.
        """
        from gymnasium import spaces

        if image_layout not in ("auto", "HWC", "CHW"):
            raise ValueError(f"image_layout must be 'auto', 'HWC' or 'CHW'; got {image_layout!r}")
        leaves: list[ObservationLeaf] = []
        state = {"width": 0}

        def visit(sub, keys, depth):
            where = _path(keys)
            if isinstance(sub, (spaces.Dict, spaces.Tuple)):
                if depth >= MAX_DEPTH:
                    raise ValueError(
                        f"{where}: Dict/Tuple spaces nested deeper than {MAX_DEPTH} levels are "
                        "not supported; flatten the inner part with "
                        "gymnasium.wrappers.FlattenObservation or a TransformObservation")
                items = sub.spaces.items() if isinstance(sub, spaces.Dict) else enumerate(
                    sub.spaces)
                if not len(sub.spaces):
                    raise ValueError(f"{where}: an empty {type(sub).__name__} space has nothing "
                                     "to observe; remove it")
                for k, child in items:
                    visit(child, (*keys, k), depth + 1)
                return
            leaves.append(cls._leaf(sub, keys, where, state, image_layout, top=not keys))

        visit(space, (), 0)
        images = [leaf for leaf in leaves if leaf.kind == "image"]
        if len(images) > 1:
            raise ValueError(
                f"{images[1].path}: a second image leaf (after {images[0].path}) is not "
                "supported; stack the images into one Box with a TransformObservation")
        image = images[0] if images else None
        layout = None
        if image is not None:
            layout = image_layout if image_layout != "auto" else (
                "CHW" if image.shape[0] < image.shape[2] else "HWC")
        return cls(space, leaves, state["width"], image, layout)

    @staticmethod
    def _leaf(sub, keys, where, state, image_layout, top):
        from gymnasium import spaces

        def columns(width):
            start = state["width"]
            state["width"] += width
            return slice(start, start + width)

        if isinstance(sub, spaces.Discrete):
            n = int(sub.n)
            cols = columns(n)
            return ObservationLeaf(where, keys, "discrete", (), np.dtype(sub.dtype), cols,
                                   np.array([cols.start]), np.array([int(sub.start)]),
                                   np.array([n]))
        if isinstance(sub, spaces.MultiDiscrete):
            nvec = np.asarray(sub.nvec)
            if nvec.ndim != 1:
                raise ValueError(f"{where}: MultiDiscrete leaves must be 1-D (got nvec of shape "
                                 f"{nvec.shape}); flatten it with a TransformObservation")
            cols = columns(int(nvec.sum()))
            first = cols.start + np.concatenate([[0], np.cumsum(nvec)[:-1]])
            return ObservationLeaf(where, keys, "multidiscrete", (len(nvec),),
                                   np.dtype(sub.dtype), cols, first.astype(np.int64),
                                   np.asarray(sub.start).astype(np.int64).reshape(-1),
                                   nvec.astype(np.int64))
        if isinstance(sub, spaces.MultiBinary):
            shape = tuple(sub.shape)
            return ObservationLeaf(where, keys, "multibinary", shape, np.dtype(sub.dtype),
                                   columns(int(np.prod(shape))))
        if isinstance(sub, spaces.Box):
            dtype = np.dtype(sub.dtype)
            if not (np.issubdtype(dtype, np.number) or dtype == np.bool_) or np.issubdtype(
                    dtype, np.complexfloating):
                raise ValueError(f"{where}: Box leaves must have a real, integer or bool dtype "
                                 f"(got {dtype}); cast it with a TransformObservation")
            shape = tuple(sub.shape)
            if len(shape) == 3:
                if not (dtype == np.uint8 or dtype == np.bool_ or
                        np.issubdtype(dtype, np.floating)):
                    raise ValueError(
                        f"{where}: images must be uint8, bool or float (got {dtype}); cast it "
                        "with gymnasium.wrappers.TransformObservation")
                return ObservationLeaf(where, keys, "image", shape, dtype, slice(0, 0))
            if len(shape) == 1 or (len(shape) == 2 and not top):
                return ObservationLeaf(where, keys, "box", shape, dtype,
                                       columns(int(np.prod(shape))))
            raise ValueError(
                f"{where}: Box observations must be a 1-D Box (a vector) or a rank-3 Box (an "
                f"image), got shape {shape}; wrap the env with "
                "gymnasium.wrappers.FlattenObservation, or add a channel axis for an image")
        name = type(sub).__name__
        if name in ("Text", "Graph", "Sequence", "OneOf"):
            raise ValueError(f"{where}: {name} spaces have no fixed-size encoding; {_DROP_HINT}")
        raise ValueError(f"{where}: {name} spaces are not supported; supported leaves are Box, "
                         f"Discrete, MultiDiscrete and MultiBinary; {_DROP_HINT}")

    # -- batches ------------------------------------------------------------------------
    def _get(self, obs, leaf: ObservationLeaf):
        x = obs
        for k in leaf.keys:
            try:
                x = x[k]
            except (KeyError, IndexError, TypeError):
                raise ValueError(
                    f"obs has no {leaf.path}: pass the batch as the vector env returns it (a "
                    f"{type(self.space).__name__} of arrays with one row per environment)"
                ) from None
        return np.asarray(x)

    def leaf_batch(self, obs, leaf: ObservationLeaf, n: int | None = None) -> np.ndarray:
        """The array of one leaf in a batch, checked for its shape (one row per observation).

        Parameters
        ----------
        obs : dict, tuple or ndarray
            A batch as :meth:`encode` takes it.
        leaf : ObservationLeaf
        n : int, optional
            The expected number of rows.
        """
        x = self._get(obs, leaf)
        if x.ndim != len(leaf.shape) + 1 or x.shape[1:] != leaf.shape or (
                n is not None and x.shape[0] != n):
            rows = "N" if n is None else str(n)
            raise ValueError(f"{leaf.path} must have shape ({rows}, "
                             f"{', '.join(map(str, leaf.shape))}) (one row per observation); "
                             f"got shape {x.shape}")
        return x

    def num_rows(self, obs) -> int:
        """Number of observations in a batch (rows of its first leaf)."""
        x = self._get(obs, self.leaves[0])
        if x.ndim < 1:
            raise ValueError(f"{self.leaves[0].path} must have one row per observation; got a "
                             "scalar (use a batch of one)")
        return x.shape[0]

    def encode(self, obs, out: np.ndarray | None = None) -> np.ndarray:
        """The torso input of a batch: the encoded non-image leaves side by side.

        Parameters
        ----------
        obs : dict, tuple or ndarray
            One row per observation in every leaf: ``{"pos": (N, 2), "door": (N,)}`` for a
            Dict space, a tuple of arrays for a Tuple space, an array for a ``Box``.
        out : ndarray of shape (N, flat_dim), optional
            Written in place and returned.

        Returns
        -------
        x : float64 ndarray of shape (N, flat_dim)

        Raises
        ------
        ValueError
            A leaf missing or of the wrong shape, or a Discrete / MultiDiscrete value out
            of its range (it would select another leaf's column), naming the leaf.
        """
        n = self.num_rows(obs)
        if out is None:
            out = np.empty((n, self.flat_dim))
        elif out.shape != (n, self.flat_dim):
            raise ValueError(f"out must have shape ({n}, {self.flat_dim}); got {out.shape}")
        rows = np.arange(n)
        for leaf in self._flat_leaves:
            x = self.leaf_batch(obs, leaf, n)
            cols = leaf.columns
            if leaf.kind in ("box", "multibinary"):
                out[:, cols] = x.reshape(n, -1)
                continue
            out[:, cols] = 0.0  # one-hot: one 1 per sub-space, set by fancy indexing
            value = x.reshape(n, -1).astype(np.int64) - leaf.start  # in [0, high)
            if n and (value.min() < 0 or np.any(value >= leaf.high)):
                raise ValueError(
                    f"{leaf.path} holds a value outside its space "
                    f"{_one_line(self._space_of(leaf))}; "
                    "check the environment's observations")
            out[rows[:, None], value + leaf.offsets] = 1.0
        return out

    def _space_of(self, leaf):
        sub = self.space
        for k in leaf.keys:
            sub = sub[k]
        return sub

    def empty(self, num_rows):
        """Storage for ``num_rows`` observations: the space's structure with one array per
        leaf, of shape ``(num_rows, *leaf.shape)`` and the leaf's dtype (``uint8`` images
        stay ``uint8``); ``num_rows`` may be a tuple of leading axes (``(T, N)``)."""
        lead = tuple(num_rows) if isinstance(num_rows, tuple) else (num_rows,)

        def build(sub, keys):
            leaf = self._by_keys.get(keys)
            if leaf is not None:
                return np.empty((*lead, *leaf.shape), dtype=leaf.dtype)
            if isinstance(sub.spaces, dict):
                return {k: build(child, (*keys, k)) for k, child in sub.spaces.items()}
            return tuple(build(child, (*keys, i)) for i, child in enumerate(sub.spaces))

        return build(self.space, ())

    def assign(self, store, index, obs) -> None:
        """``store[index] = obs`` leaf by leaf (one array copy per leaf, no per-row objects).

        Parameters
        ----------
        store : the structure returned by :meth:`empty`
        index : int, slice or integer array
            The rows of ``store`` to write.
        obs : a batch with matching rows
        """
        for leaf in self.leaves:
            self._get(store, leaf)[index] = self._get(obs, leaf)

    def take(self, store, index):
        """The rows ``index`` of stored observations, in the same structure (for minibatches).
        """
        if not self.structured:
            return store[index]

        def pick(sub, keys):
            leaf = self._by_keys.get(keys)
            if leaf is not None:
                return sub[index]
            if isinstance(sub, dict):
                return {k: pick(v, (*keys, k)) for k, v in sub.items()}
            return tuple(pick(v, (*keys, i)) for i, v in enumerate(sub))

        return pick(store, ())
