"""``tensorboard=true``: every numeric metric of every iteration, read back from the event file."""

from __future__ import annotations

import math
import struct
import sys

import numpy as np
import pytest

from rl.train import train

SMALL = {"num_envs": 2, "steps_per_env": 128, "eval_episodes": 2, "checkpoint_every": 1,
         "value_iterations": 5}


def read_scalars(log_dir):
    """``{tag: [(step, value), ...]}`` from the TFRecord event files in ``log_dir``.

    A TFRecord is ``uint64 length, uint32 crc, data, uint32 crc``; ``data`` is an ``Event``
    protocol buffer (tensorboardX ships its definition).
    """
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


@pytest.mark.parametrize("algo", ["trpo", "ppo"])
def test_every_numeric_metric_of_every_iteration_is_a_scalar(tmp_path, algo):
    pytest.importorskip("tensorboardX")
    config = dict(SMALL, tensorboard=True, **({"epochs": 1} if algo == "ppo" else {}))
    result = train(algo, "CartPole-v1", steps=768, seed=0, out=tmp_path / "run", config=config,
                   progress=False, plot=False)
    scalars = read_scalars(tmp_path / "run" / "tensorboard")
    numeric = {k for row in result.history for k, v in row.items() if not isinstance(v, str)}
    assert numeric <= set(scalars)
    assert not {k for row in result.history for k, v in row.items() if isinstance(v, str)} \
        & set(scalars)  # text columns (statuses) stay in metrics.csv
    for key in numeric:
        logged = scalars[key]
        assert [s for s, _ in logged] == [row["steps"] for row in result.history], key
        for (_, got), row in zip(logged, result.history, strict=True):
            want = np.float32(float(row[key]))  # a TensorBoard scalar is a float32
            assert (math.isnan(got) and math.isnan(want)) or got == want, (key, got, want)
    # the final evaluation, at the last step
    assert scalars["eval/return_mean"] == [(result.history[-1]["steps"], pytest.approx(
        result.evaluation["eval/return_mean"], rel=1e-6))]


def test_a_resumed_run_continues_the_curves(tmp_path):
    pytest.importorskip("tensorboardX")
    config = dict(SMALL, tensorboard=True, eval_episodes=0)
    train("trpo", "CartPole-v1", steps=512, seed=0, out=tmp_path / "run", config=config,
          progress=False, plot=False)
    train(resume=tmp_path / "run", steps=1024, progress=False, plot=False)
    steps = [s for s, _ in read_scalars(tmp_path / "run" / "tensorboard")["trpo/kl"]]
    assert steps == [256, 512, 768, 1024]


def test_without_tensorboardx_the_run_is_refused_with_the_fix(tmp_path, monkeypatch):
    from rl.train import ConfigError

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'trpokit\[tensorboard\]'"):
        train("trpo", "CartPole-v1", steps=256, seed=0, out=tmp_path / "run",
              config=dict(SMALL, tensorboard=True), progress=False, plot=False)
    assert not (tmp_path / "run" / "checkpoint.pkl").exists()


def test_two_writers_in_one_folder_keep_both_event_files(tmp_path):
    """A resumed run opens a second writer in the run's folder, possibly within the same
    second as the first (event files are named by the second): neither replaces the other."""
    pytest.importorskip("tensorboardX")
    from rl.tensorboard import TensorBoardWriter

    for step in (1, 2):
        writer = TensorBoardWriter(tmp_path)
        writer.write({"x": float(step), "flag": True, "status": "ok"}, step)
        writer.close()
    scalars = read_scalars(tmp_path)
    assert scalars["x"] == [(1, 1.0), (2, 2.0)] and scalars["flag"] == [(1, 1.0), (2, 1.0)]
    assert "status" not in scalars
