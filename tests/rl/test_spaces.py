"""Spaces read once: the observation layout encodes a batch exactly as gymnasium flattens each
observation, stores batches leaf by leaf without changing their dtypes, and refuses what no
encoder handles with a one-line message naming the leaf; the action spec names the
distribution of every supported action space.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array
from hypothesis import given
from hypothesis import strategies as st

from rl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from rl.spaces import MAX_DEPTH, ObservationLayout, action_spec


@st.composite
def leaf_spaces(draw):
    """A Box (rank 1-2, float/int/bool), Discrete (with a start), MultiDiscrete (with
    starts) or MultiBinary leaf."""
    kind = draw(st.sampled_from(["box", "box2", "discrete", "multidiscrete", "multibinary"]))
    if kind == "box":
        dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.uint8]))
        return spaces.Box(0, 9, (draw(st.integers(1, 3)),), dtype)
    if kind == "box2":
        return spaces.Box(-1.0, 1.0, (2, draw(st.integers(1, 2))))
    if kind == "discrete":
        return spaces.Discrete(draw(st.integers(1, 4)), start=draw(st.integers(-2, 2)))
    if kind == "multidiscrete":
        k = draw(st.integers(1, 3))
        return spaces.MultiDiscrete(draw(st.lists(st.integers(1, 4), min_size=k, max_size=k)),
                                    start=draw(st.lists(st.integers(-1, 1), min_size=k,
                                                        max_size=k)))
    return spaces.MultiBinary(draw(st.integers(1, 3)))


@st.composite
def structured_spaces(draw):
    """A Dict or Tuple of 1-3 leaves, one of which may itself be a Dict/Tuple of leaves
    (depth 2, the deepest the layout takes)."""
    def container(children):
        if draw(st.booleans()):
            return spaces.Dict({f"k{i}": c for i, c in enumerate(children)})
        return spaces.Tuple(children)

    children = draw(st.lists(leaf_spaces(), min_size=1, max_size=3))
    if draw(st.booleans()):
        children.append(container(draw(st.lists(leaf_spaces(), min_size=1, max_size=2))))
    return container(children)


def vector_batch(space, seed: int, n: int):
    """``n`` samples of ``space`` batched as a gymnasium vector env returns them."""
    space.seed(seed)
    items = [space.sample() for _ in range(n)]
    return items, concatenate(space, items, create_empty_array(space, n))


@given(structured_spaces(), st.integers(0, 2**16), st.integers(1, 5))
def test_encode_equals_gymnasium_flatten_row_by_row(space, seed, n):
    """Row i of ``encode(batch)`` is ``gymnasium.spaces.flatten(space, sample_i)``: identity for
    Box and MultiBinary leaves, one-hot of ``x − start`` for Discrete and MultiDiscrete, the
    leaves in the space's order — computed on the whole batch at once."""
    layout = ObservationLayout.from_space(space)
    items, batch = vector_batch(space, seed, n)
    x = layout.encode(batch)
    assert x.shape == (n, layout.flat_dim) == (n, spaces.flatdim(space))
    expected = np.stack([spaces.flatten(space, item).astype(np.float64) for item in items])
    assert np.array_equal(x, expected)
    out = np.full_like(x, np.nan)
    assert layout.encode(batch, out=out) is out and np.array_equal(out, expected)


@given(structured_spaces(), st.integers(0, 2**16))
def test_box_columns_are_the_box_leaves(space, seed):
    """box_columns picks exactly the encoded values of the Box leaves (what the normaliser
    applies to), in order; one-hot and bit columns are not among them."""
    layout = ObservationLayout.from_space(space)
    _, batch = vector_batch(space, seed, 3)
    x = layout.encode(batch)
    boxes = [layout.leaf_batch(batch, leaf).reshape(3, -1) for leaf in layout.leaves
             if leaf.kind == "box"]
    expected = np.concatenate(boxes, axis=1) if boxes else np.zeros((3, 0))
    assert np.array_equal(x[:, layout.box_columns], expected.astype(np.float64))


@given(structured_spaces(), st.integers(0, 2**16))
def test_storage_keeps_dtypes_and_round_trips(space, seed):
    """empty(n) allocates one array per leaf in the leaf's dtype; assign writes a batch into
    rows of it and take reads rows back, equal to the batch leaf for leaf."""
    layout = ObservationLayout.from_space(space)
    _, batch = vector_batch(space, seed, 4)
    store = layout.empty(10)
    layout.assign(store, slice(3, 7), batch)
    back = layout.take(store, np.arange(3, 7))
    for leaf in layout.leaves:
        stored = layout.leaf_batch(store, leaf)
        assert stored.dtype == leaf.dtype and stored.shape == (10, *leaf.shape)
        assert np.array_equal(layout.leaf_batch(back, leaf), layout.leaf_batch(batch, leaf))
    assert np.array_equal(layout.encode(back), layout.encode(batch))


def test_images_are_a_leaf_of_their_own():
    """A rank-3 Box is the image leaf (no flat columns), its layout read from the shape:
    channels last unless the first axis is the shortest; uint8 images are stored as uint8."""
    frame = spaces.Box(0, 255, (84, 84, 4), np.uint8)
    assert ObservationLayout.from_space(frame).image_layout == "HWC"
    assert ObservationLayout.from_space(spaces.Box(0.0, 1.0, (4, 84, 84))).image_layout == "CHW"
    assert ObservationLayout.from_space(spaces.Box(0, 1, (10, 10, 4), bool)).image_layout == "HWC"
    assert ObservationLayout.from_space(frame, image_layout="CHW").image_layout == "CHW"
    minigrid = spaces.Dict({"image": spaces.Box(0, 255, (7, 7, 3), np.uint8),
                            "direction": spaces.Discrete(4)})
    layout = ObservationLayout.from_space(minigrid)
    assert layout.image.path == "observation['image']" and layout.flat_dim == 4
    store = layout.empty(2)
    assert store["image"].dtype == np.uint8 and store["image"].shape == (2, 7, 7, 3)
    _, batch = vector_batch(minigrid, 0, 2)
    np.testing.assert_array_equal(layout.encode(batch), np.eye(4)[batch["direction"]])


@pytest.mark.parametrize("space, match", [
    (spaces.Dict({"image": spaces.Box(0, 255, (7, 7, 3), np.uint8), "mission": spaces.Text(8)}),
     r"^observation\['mission'\]: Text spaces have no fixed-size encoding; drop it with "
     r"gymnasium.wrappers.FilterObservation"),
    (spaces.Tuple((spaces.Discrete(2), spaces.Sequence(spaces.Discrete(3)))),
     r"^observation\[1\]: Sequence spaces"),
    (spaces.Dict({"g": spaces.Graph(spaces.Box(0.0, 1.0, (2,)), None)}),
     r"^observation\['g'\]: Graph spaces"),
    (spaces.OneOf((spaces.Discrete(2), spaces.Discrete(3))), r"^observation: OneOf spaces"),
    (spaces.Dict({"a": spaces.Tuple((spaces.Dict({"b": spaces.Discrete(2)}),))}),
     rf"^observation\['a'\]\[0\]: Dict/Tuple spaces nested deeper than {MAX_DEPTH} levels"),
    (spaces.Dict({"x": spaces.Box(0.0, 1.0, (2, 2, 2, 2))}),
     r"^observation\['x'\]: Box observations must be a 1-D Box"),
    (spaces.Box(0.0, 1.0, (4, 4)), r"^observation: Box observations must be a 1-D Box"),
    (spaces.Dict({"m": spaces.MultiDiscrete([[2, 2], [3, 3]])}),
     r"^observation\['m'\]: MultiDiscrete leaves must be 1-D"),
    (spaces.Dict({"img": spaces.Box(0, 9, (5, 5, 1), np.int16)}),
     r"^observation\['img'\]: images must be uint8, bool or float"),
    (spaces.Tuple((spaces.Box(0, 1, (5, 5, 1)), spaces.Box(0, 1, (5, 5, 1)))),
     r"^observation\[1\]: a second image leaf"),
    (spaces.Dict({}), r"^observation: an empty Dict space"),
])
def test_unsupported_spaces_name_the_leaf_and_the_fix(space, match):
    """Text, Sequence, Graph and OneOf leaves, nesting past MAX_DEPTH, boxes of rank 2 at the
    top or rank 4, 2-D MultiDiscrete leaves, integer images, a second image and an empty
    container: one-line ValueErrors starting with the leaf's path."""
    with pytest.raises(ValueError, match=match) as info:
        ObservationLayout.from_space(space)
    assert "\n" not in str(info.value)


def test_bad_batches_name_the_leaf():
    """A missing leaf, a leaf with the wrong shape and a Discrete value outside the space (it
    would set another leaf's column) are ValueErrors naming the leaf."""
    space = spaces.Dict({"d": spaces.Discrete(3, start=1), "v": spaces.Box(-1.0, 1.0, (2,))})
    layout = ObservationLayout.from_space(space)
    good = {"d": np.array([1, 3]), "v": np.zeros((2, 2))}
    assert layout.encode(good).shape == (2, 5)
    with pytest.raises(ValueError, match=r"obs has no observation\['v'\]"):
        layout.encode({"d": good["d"]})
    with pytest.raises(ValueError, match=r"observation\['v'\] must have shape \(2, 2\)"):
        layout.encode({"d": good["d"], "v": np.zeros((2, 3))})
    for bad in (np.array([0, 1]), np.array([1, 4])):
        with pytest.raises(ValueError, match=r"observation\['d'\] holds a value outside its "
                                             r"space Discrete\(3, start=1\)"):
            layout.encode({"d": bad, "v": good["v"]})
    with pytest.raises(ValueError, match="image_layout must be"):
        ObservationLayout.from_space(space, image_layout="NCHW")


@pytest.mark.parametrize("space, kind, shape, dist", [
    (spaces.Discrete(4), "discrete", (), Categorical),
    (spaces.Box(-np.inf, np.inf, (3,)), "box", (3,), DiagGaussian),  # Gaussian draws: unbounded
    (spaces.MultiDiscrete([3, 2, 5]), "multidiscrete", (3,), MultiCategorical),
    (spaces.MultiBinary(6), "multibinary", (6,), Bernoulli),
])
def test_action_spec_names_the_distribution(space, kind, shape, dist):
    """Each supported action space maps to its distribution; the distribution's samples
    are actions of the space, stored in the spec's dtype."""
    spec = action_spec(space)
    assert spec.kind == kind and spec.shape == shape and issubclass(spec.distribution_class, dist)
    width = {"discrete": 4, "box": 6, "multidiscrete": 10, "multibinary": 6}[kind]
    a = spec.distribution_class(np.zeros((5, width))).sample(np.random.default_rng(0))
    assert a.shape == (5, *shape) and a.dtype == spec.dtype
    assert all(space.contains(row.astype(space.dtype)) for row in a)


@pytest.mark.parametrize("space, match", [
    (spaces.Discrete(3, start=1), r"Discrete spaces must start at 0 \(got start=1\)"),
    (spaces.MultiDiscrete([2, 2], start=[0, 1]), "MultiDiscrete action spaces must start at 0"),
    (spaces.MultiDiscrete([[2, 2], [2, 2]]), "MultiDiscrete action spaces must be 1-D"),
    (spaces.MultiBinary([2, 2]), "MultiBinary action spaces must be 1-D"),
    (spaces.Box(0, 3, (2,), np.int64), "Box action spaces must have a float dtype"),
    (spaces.Box(-1.0, 1.0, (2, 2)), "Box action spaces must be 1-D"),
    (spaces.Tuple((spaces.Discrete(2),)), "Tuple action spaces are not supported"),
])
def test_action_spec_refuses_with_the_fix(space, match):
    """Unsupported action spaces are one-line ValueErrors naming the space and the fix."""
    with pytest.raises(ValueError, match=match) as info:
        action_spec(space)
    assert "\n" not in str(info.value) and "action_space" in str(info.value)
