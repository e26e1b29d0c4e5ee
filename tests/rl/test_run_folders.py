"""Run folders under faults: kill -9 anywhere (inside a checkpoint write too), SIGTERM, a full
disk, truncated, bit-flipped and malicious checkpoint files. Each case ends in a resume that
matches an uninterrupted run bit for bit, or in a one-line error with nothing saved lost."""

from __future__ import annotations

import collections
import csv
import errno
import functools
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rl
from rl import checkpoint as ckpt
from rl.__main__ import main
from rl.train import CheckpointError, ConfigError, ResumeWarning, load_run, train

ROOT = Path(__file__).resolve().parents[2]
TINY = {"num_envs": 2, "steps_per_env": 64, "checkpoint_every": 1, "value_iterations": 2,
        "eval_episodes": 0}
TINY_SETS = [f"{k}={v}" for k, v in TINY.items()]
STEPS = 1280  # 10 iterations


def _numbers(run_dir):
    """metrics.csv without its timing columns, as floats."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: float(v) for k, v in r.items() if "time" not in k and v not in ("", None)
             and not k.endswith("/status")} for r in rows]


def _theta(run_dir):
    return ckpt.read_checkpoint(run_dir)[1]["policy"]["theta"]


def _cli(*args, timeout=120, env=None):
    """Run the command line in a fresh interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "rl", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _train_args(out, steps=STEPS, seed=7):
    sets = sum((["--set", s] for s in TINY_SETS), [])
    return ["train", "--out", str(out), "--steps", str(steps), "--seed", str(seed),
            "--no-progress", *sets]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run (the numbers every interrupted one must reproduce)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    train("trpo", "CartPole-v1", steps=STEPS, seed=7, out=out, config=TINY, progress=False,
          plot=False)
    return out


def _finish(out):
    """Resume ``out`` (in this process) until done, or start it if nothing was committed."""
    if (out / ckpt.MANIFEST).exists():
        train(resume=out, progress=False, plot=False)
    else:
        for leftover in out.iterdir():  # nothing committed: only the config of a new run
            leftover.unlink()
        train("trpo", "CartPole-v1", steps=STEPS, seed=7, out=out, config=TINY,
              progress=False, plot=False)


def _assert_same_run(out, reference):
    np.testing.assert_array_equal(_theta(out), _theta(reference))
    assert _numbers(out) == _numbers(reference)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------ kill -9
@pytest.mark.parametrize("delay", [1.7, 2.3, 2.9])
def test_kill_9_at_a_random_moment_resumes_bit_identically(tmp_path, reference, delay):
    """SIGKILL after ``delay`` seconds (mid-sampling, mid-update or mid-write, wherever it
    lands), then resume: the same numbers as the uninterrupted run."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "rl", *_train_args(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    if out.exists():
        _finish(out)
    else:
        train("trpo", "CartPole-v1", steps=STEPS, seed=7, out=out, config=TINY,
              progress=False, plot=False)
    _assert_same_run(out, reference)


@pytest.mark.parametrize("stage", ["state", "metrics", "manifest", "cleanup"])
def test_kill_inside_a_checkpoint_write_resumes_bit_identically(tmp_path, reference, stage):
    """The process dies (os._exit, as kill -9) between the steps of the third checkpoint
    write: the folder keeps a committed checkpoint, and resuming reproduces the run."""
    out = tmp_path / "run"
    script = (
        "import os, sys\n"
        "import rl.checkpoint as c\n"
        "calls = []\n"
        "def hook(stage):\n"
        f"    if stage == {stage!r}:\n"
        "        calls.append(stage)\n"
        "        if len(calls) == 3:\n"
        "            os._exit(137)\n"
        "c.fault_hook = hook\n"
        "from rl.__main__ import main\n"
        f"sys.exit(main({_train_args(out)!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert done.returncode == 137, done.stderr
    manifest = ckpt.read_manifest(out)
    expected = 3 if stage in ("manifest", "cleanup") else 2
    assert manifest["iteration"] == expected
    with open(out / "metrics.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) >= manifest["metrics_rows"]
    assert ckpt.committed_rows(out) == expected
    # readers see the committed rows only (after "metrics", the file holds one more)
    from rl.plotting import read_metrics

    assert read_metrics(out)["iteration"].tolist() == list(range(1, expected + 1))
    _finish(out)
    _assert_same_run(out, reference)


# ------------------------------------------------------------------------------ signals
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_save_explain_and_exit_128_plus_the_signal(tmp_path, reference,
                                                                       signum):
    out = tmp_path / "run"
    sets = [s for s in TINY_SETS if not s.startswith("checkpoint_every")] + [
        "checkpoint_every=3"]
    proc = subprocess.Popen([sys.executable, "-m", "rl", "train", "--out", str(out), "--steps",
                             str(STEPS), "--seed", "7", "--no-progress",
                             *sum((["--set", s] for s in sets), [])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while ckpt.committed_rows(out) is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signum)  # at iteration 3 or a little after: between checkpoints
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and signal.Signals(signum).name in lines[0]
    assert f"--resume {out}" in lines[0]
    iteration = ckpt.read_manifest(out)["iteration"]
    assert f"iteration {iteration}" in lines[0] and iteration >= 3
    train(resume=out, progress=False, plot=False)
    np.testing.assert_array_equal(_theta(out), _theta(reference))
    assert _numbers(out) == _numbers(reference)


# ---------------------------------------------------------------------------- full disk
def test_a_full_disk_stops_the_run_keeps_the_last_checkpoint_and_resumes(tmp_path, reference,
                                                                          monkeypatch):
    """ENOSPC while writing the fourth checkpoint: a one-line stop status naming the
    checkpoint kept, no temporary file left, and resuming reproduces the run."""
    out = tmp_path / "run"
    writes = collections.Counter()
    real = ckpt.atomic_write_bytes

    def full_disk(path, data):
        writes[Path(path).name.split("-")[0]] += 1
        if Path(path).name.startswith("checkpoint-") and writes["checkpoint"] == 4:
            tmp = Path(path).with_name(f".{Path(path).name}.tmp{os.getpid()}")
            tmp.write_bytes(data[: len(data) // 2])  # half written, then the disk is full
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            finally:
                tmp.unlink()
        return real(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", full_disk)
    result = train("trpo", "CartPole-v1", steps=STEPS, seed=7, out=out, config=TINY,
                   progress=False, plot=False)
    assert result.status.startswith("stopped: cannot write the checkpoint of iteration 4")
    assert "No space left on device" in result.status
    assert "keeps the checkpoint of iteration 3" in result.status
    assert "\n" not in result.status
    assert ckpt.read_manifest(out)["iteration"] == 3
    monkeypatch.setattr(ckpt, "atomic_write_bytes", real)
    _finish(out)
    _assert_same_run(out, reference)


def test_a_full_disk_at_the_command_line_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    real = ckpt.atomic_write_bytes

    def no_space(path, data):  # config.json is written; the disk fills up after it
        if Path(path).name == "config.json":
            return real(path, data)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "atomic_write_bytes", no_space)
    assert main(_train_args(tmp_path / "run", steps=256)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "no checkpoint" in err[0]


# ------------------------------------------------------------------- damaged files
@pytest.fixture()
def small_run(tmp_path):
    out = tmp_path / "run"
    train("trpo", "CartPole-v1", steps=256, seed=0, out=out, config=TINY, progress=False,
          plot=False)
    return out


def _files(run_dir):
    return {p.name: p.read_bytes() for p in run_dir.iterdir()}


def _refused(run_dir, capsys, *words):
    """evaluate and resume both end in one 'error:' line with ``words``, exit 2, and leave
    every file of the folder as it was."""
    before = _files(run_dir)
    for argv in (["evaluate", str(run_dir)], ["train", "--resume", str(run_dir)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:"), err
        for word in words:
            assert word in err[0], err
    assert _files(run_dir) == before


@pytest.mark.parametrize("cut", [0, 10, 100, -1])
def test_a_truncated_checkpoint_is_a_one_line_error(small_run, capsys, cut):
    path = small_run / ckpt.read_manifest(small_run)["state_file"]
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[: len(data) // 2])
    _refused(small_run, capsys, "does not match the hash")


@pytest.mark.parametrize("offset", [0, 37, 500, -30])
def test_a_bit_flipped_checkpoint_is_a_one_line_error(small_run, capsys, offset):
    path = small_run / ckpt.read_manifest(small_run)["state_file"]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    _refused(small_run, capsys, "does not match the hash")


@pytest.mark.parametrize("edit", [
    lambda m: "{not json",
    lambda m: json.dumps({**m, "state_file": "../../outside.npz"}),
    lambda m: json.dumps({**m, "format": "something-else"}),
    lambda m: json.dumps({**m, "version": 99}),
    lambda m: json.dumps({**m, "iteration": -1}),
    lambda m: json.dumps({k: v for k, v in m.items() if k != "state_sha256"}),
])
def test_a_damaged_manifest_is_a_one_line_error(small_run, capsys, edit):
    manifest = ckpt.read_manifest(small_run)
    (small_run / ckpt.MANIFEST).write_text(edit(manifest))
    _refused(small_run, capsys, str(small_run / ckpt.MANIFEST))


class _Marker:
    """Unpickling this object creates a marker file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_malicious_pickle_checkpoint_never_runs(tmp_path, capsys):
    """A crafted checkpoint.pkl (old format) is refused before anything reads it: no marker
    file appears, and the message says why and how to convert a trusted one."""
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "pwned"
    (run / "checkpoint.pkl").write_bytes(pickle.dumps({"version": 1, "x": _Marker(marker)}))
    (run / "config.json").write_text("{}")
    _refused(run, capsys, "pickle", "--trust-pickle")
    assert not marker.exists()
    # conversion without the explicit statement of trust does not unpickle either
    assert main(["convert", str(run)]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not marker.exists()


def test_a_malicious_npz_with_a_pickled_object_array_never_runs(small_run, capsys, tmp_path):
    """A checkpoint file that holds an object array (a pickle inside .npy) under a manifest
    whose hash matches it: numpy refuses it unread (allow_pickle=False); no marker."""
    import io

    marker = tmp_path / "pwned"
    state = ckpt.read_checkpoint(small_run)[1]
    doc, arrays = ckpt.encode(state)
    arrays["a0"] = np.array([_Marker(marker)], dtype=object)
    text = json.dumps(doc).encode()
    buf = io.BytesIO()
    np.savez(buf, __state__=np.frombuffer(text, dtype=np.uint8), **arrays)
    manifest = ckpt.read_manifest(small_run)
    ckpt.write_checkpoint(small_run, buf.getvalue(), iteration=manifest["iteration"],
                          total_steps=manifest["total_steps"],
                          metrics_csv=(small_run / "metrics.csv").read_text(),
                          metrics_rows=manifest["metrics_rows"])
    _refused(small_run, capsys, "cannot be read")
    assert not marker.exists()


def _rewrite(run_dir, state):
    manifest = ckpt.read_manifest(run_dir)
    ckpt.write_checkpoint(run_dir, ckpt.pack(state), iteration=manifest["iteration"],
                          total_steps=manifest["total_steps"],
                          metrics_csv=(run_dir / "metrics.csv").read_text(),
                          metrics_rows=manifest["metrics_rows"])


@pytest.mark.parametrize("tamper, words", [
    (lambda s: s["sampler"].update(envs=[]), "environment states"),
    (lambda s: s["sampler"].update(envs=s["sampler"]["envs"][:1]), "environment states"),
    (lambda s: s["sampler"]["envs"][0]["core"].update(step=1), "data attributes"),
    (lambda s: s["sampler"]["envs"][0].update(kind="mujoco"), "differently built"),
    (lambda s: s["sampler"]["envs"][0]["np_random"].update(bit_generator="Evil"), "np_random"),
    (lambda s: s["policy"].update(theta=s["policy"]["theta"] * np.nan), "non-finite"),
    (lambda s: s["policy"].update(theta=s["policy"]["theta"][:5]), "does not match"),
    (lambda s: s.update(iteration=7), "manifest"),
    (lambda s: s.update(history=[]), "history"),
    (lambda s: s["sampler"].update(observations=np.zeros((3, 4))), "observations"),
])
def test_a_tampered_checkpoint_is_a_one_line_error(small_run, capsys, tamper, words):
    """A crafted checkpoint whose hash matches (as anyone can compute it): every entry is
    still checked before use."""
    state = ckpt.read_checkpoint(small_run)[1]
    tamper(state)
    _rewrite(small_run, state)
    _refused(small_run, capsys, words)


def test_a_checkpoint_holding_the_environments_beside_the_sampler_resumes_exactly(
        tmp_path, reference):
    """Format-2 checkpoints first kept the sub-environments' snapshots in
    ``state['env']['sub_envs']`` (now the sampler's state holds them): such a checkpoint
    still resumes to the uninterrupted run's numbers."""
    out = tmp_path / "run"
    train("trpo", "CartPole-v1", steps=512, seed=7, out=out, config=TINY, progress=False,
          plot=False)
    state = ckpt.read_checkpoint(out)[1]
    state["env"]["sub_envs"] = state["sampler"].pop("envs")
    assert isinstance(state["env"]["sub_envs"], list)
    _rewrite(out, state)
    train(resume=out, steps=STEPS, progress=False, plot=False)
    np.testing.assert_array_equal(_theta(out), _theta(reference))
    assert _numbers(out) == _numbers(reference)


def test_old_pickle_checkpoints_convert_on_request_and_resume(tmp_path, reference):
    """A version-1 checkpoint.pkl (what older trpokit wrote) converts with --trust-pickle;
    the converted run resumes to the uninterrupted run's numbers; the .pkl stays."""
    out = tmp_path / "run"
    train("trpo", "CartPole-v1", steps=512, seed=7, out=out, config=TINY, progress=False,
          plot=False)
    state = ckpt.read_checkpoint(out)[1]
    run = load_run(out)
    try:
        old = {"version": 1, "config": state["config"], "algo_config": state["algo_config"],
               "iteration": state["iteration"], "total_steps": state["total_steps"],
               "policy": state["policy"], "baseline": state["baseline"], "algo": state["algo"],
               "sampler": state["sampler"], "env_states": pickle.dumps(run.venv.envs),
               "env_physics": None, "history": state["history"]}
    finally:
        run.close()
    for name in (ckpt.MANIFEST, ckpt.read_manifest(out)["state_file"]):
        (out / name).unlink()
    (out / "checkpoint.pkl").write_bytes(pickle.dumps(old))
    assert main(["convert", str(out), "--trust-pickle"]) == 0
    assert (out / "checkpoint.pkl").exists()
    train(resume=out, steps=STEPS, progress=False, plot=False)
    np.testing.assert_array_equal(_theta(out), _theta(reference))
    assert _numbers(out) == _numbers(reference)


# ----------------------------------------------------------------- never overwrite
def test_out_into_a_folder_that_is_not_a_run_is_refused_and_left_alone(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text("my own config")
    (folder / "notes.txt").write_text("keep me")
    for name in ("config.json", "notes.txt"):
        target = tmp_path / name.replace(".", "_")
        target.mkdir()
        (target / name).write_text("keep me")
        assert main(_train_args(target, steps=128)) == 2
        err = capsys.readouterr().err
        assert ("already holds a run" if name == "config.json" else "not empty") in err
        assert "--resume" in err
        assert [p.name for p in target.iterdir()] == [name]
        assert (target / name).read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_train_args(empty, steps=128)) == 0


def test_stale_temporary_and_uncommitted_files_are_removed_on_resume(small_run):
    (small_run / f".checkpoint-000009.npz.tmp{os.getpid() + 1}").write_bytes(b"half")
    (small_run / ".metrics.csv.tmp12345").write_text("half")
    (small_run / "checkpoint-000009.npz").write_bytes(b"uncommitted")
    (small_run / "notes.txt").write_text("mine")
    train(resume=small_run, steps=512, progress=False, plot=False)
    names = sorted(p.name for p in small_run.iterdir())
    assert names == sorted(["checkpoint-000004.npz", ckpt.MANIFEST, "config.json",
                            "metrics.csv", "notes.txt"])


# -------------------------------------------------------------------- settings
def test_numpy_integers_and_floats_are_accepted_everywhere(tmp_path):
    result = rl.train(seed=np.int64(3), steps=np.int64(256), out=tmp_path / "run",
                      config={**TINY, "num_envs": np.int64(2), "max_kl": np.float32(0.02)},
                      progress=False, plot=False)
    assert result.status == "completed"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["seed"] == 3 and saved["train"]["num_envs"] == 2
    assert type(saved["train"]["steps"]) is int


@pytest.mark.parametrize("seed, words", [(None, "seed must be an integer"),
                                         (2**70, "seed must lie in [0, 18446744073709551615]"),
                                         (-1, "seed must lie"), (1.5, "seed must be an integer")])
def test_bad_seeds_are_named(tmp_path, seed, words):
    with pytest.raises(ConfigError) as info:
        rl.train(seed=seed, out=tmp_path / "run", config=TINY, progress=False)
    assert words in str(info.value)
    assert not (tmp_path / "run").exists()


def test_a_setting_given_twice_is_refused(tmp_path, capsys):
    for argv in (["--steps", "512", "--set", "steps=1024"], ["--seed", "3", "--set", "seed=4"],
                 ["--seed", "3", "--set", "train.seed=3"]):
        assert main(["train", "--out", str(tmp_path / "x"), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "give it once" in err[0], err
    with pytest.raises(ConfigError, match="given twice"):
        rl.train(steps=512, config={"steps": 1024}, out=tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_resume_with_fewer_steps_than_done_is_refused(small_run, capsys):
    before = _files(small_run)
    assert main(["train", "--resume", str(small_run), "--steps", "100"]) == 2
    err = capsys.readouterr().err
    assert "below the 256 steps" in err
    assert _files(small_run) == before


# --------------------------------------------------------------- custom environments
class _Drift(gym.Env):
    """A small custom environment: the observation drifts with the action, noisily."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, scale=0.1):
        self.scale, self.x, self.t = scale, np.zeros(2), 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = self.np_random.normal(size=2), 0
        return self.x.copy(), {}

    def step(self, action):
        self.t += 1
        self.x = self.x + self.scale * (action - 0.5) + 0.05 * self.np_random.normal(size=2)
        return self.x.copy(), float(-abs(self.x).sum()), bool(abs(self.x).max() > 3), \
            self.t >= 40, {}


def test_runs_on_env_objects_and_factories_resume_and_evaluate_with_the_same_one(tmp_path):
    for env in (_Drift(), functools.partial(_Drift, 0.2)):
        full = train("trpo", env, steps=512, seed=1, out=tmp_path / "full", config=TINY,
                     progress=False, plot=False)
        train("trpo", env, steps=256, seed=1, out=tmp_path / "part", config=TINY,
              progress=False, plot=False)
        with pytest.raises(CheckpointError, match="pass the same environment or factory"):
            train(resume=tmp_path / "part", progress=False)
        with pytest.raises(CheckpointError, match="pass the same environment or factory"):
            rl.evaluate(tmp_path / "part")
        resumed = train(env=env, resume=tmp_path / "part", steps=512, progress=False,
                        plot=False)
        np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)
        assert _numbers(tmp_path / "part") == _numbers(tmp_path / "full")
        ev = rl.evaluate(tmp_path / "part", episodes=2, env=env)
        assert ev["eval/episodes"] == 2
        for name in ("full", "part"):
            for p in sorted((tmp_path / name).iterdir()):
                p.unlink()
            (tmp_path / name).rmdir()


def test_an_env_registered_with_a_lambda_resumes_bit_identically(tmp_path):
    gym.register("trpokit-test/Lambda-v0", entry_point=lambda: _Drift(0.3),
                 max_episode_steps=30)
    try:
        full = train("trpo", "trpokit-test/Lambda-v0", steps=768, seed=2, out=tmp_path / "f",
                     config=TINY, progress=False, plot=False)
        train("trpo", "trpokit-test/Lambda-v0", steps=256, seed=2, out=tmp_path / "p",
              config=TINY, progress=False, plot=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResumeWarning)
            resumed = train(resume=tmp_path / "p", steps=768, progress=False, plot=False)
    finally:
        gym.registry.pop("trpokit-test/Lambda-v0")
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)
    assert _numbers(tmp_path / "p") == _numbers(tmp_path / "f")


class _WithHistory(_Drift):
    """Keeps a deque of past observations: state that is not arrays and plain values."""

    def reset(self, *, seed=None, options=None):
        self.past = collections.deque(maxlen=3)
        return super().reset(seed=seed)


def test_a_run_says_at_start_when_it_cannot_be_resumed_exactly(tmp_path):
    with pytest.warns(ResumeWarning, match=r"_WithHistory\.past.*deque"):
        result = train("trpo", _WithHistory(), steps=256, seed=0, out=tmp_path / "a",
                       config=TINY, progress=False, plot=False)
    assert result.status == "completed"
    state = ckpt.read_checkpoint(tmp_path / "a")[1]
    assert state["env"]["sub_envs"] is None and "deque" in state["env"]["problem"]
    with pytest.warns(ResumeWarning, match="vectorization=async"):
        train("trpo", "CartPole-v1", steps=128, seed=0, out=tmp_path / "b",
              config={**TINY, "vectorization": "async"}, progress=False, plot=False)
    with pytest.warns(ResumeWarning, match="deque"):  # said again when it resumes
        train(resume=tmp_path / "a", env=_WithHistory(), steps=512, progress=False,
              plot=False)


class _Breaks(_Drift):
    """Raises, or changes its observation shape, at the given step."""

    def __init__(self, at=150, how="raise"):
        super().__init__()
        self.at, self.how, self.n = at, how, 0

    def step(self, action):
        self.n += 1
        if self.n == self.at:
            if self.how == "raise":
                raise RuntimeError("simulator exploded\nwith a second line")
            return np.zeros(5), 0.0, False, False, {}
        return super().step(action)


@pytest.mark.parametrize("how, words", [("raise", "RuntimeError: simulator exploded"),
                                        ("shape", "failed at step")])
def test_an_environment_that_fails_mid_run_stops_with_one_line(tmp_path, capsys, how, words):
    result = train("trpo", _Breaks(150, how), steps=2048, seed=0, out=tmp_path / "run",
                   config={**TINY, "num_envs": 1}, progress=False, plot=False)
    assert result.status.startswith("stopped: the environment failed") and words in \
        result.status
    assert "\n" not in result.status
    assert ckpt.read_manifest(tmp_path / "run")["iteration"] == 2  # 2 x 64 good steps
    gym.register("trpokit-test/Breaks-v0", entry_point=functools.partial(_Breaks, 150, how))
    try:
        assert main(_train_args(tmp_path / "cli", steps=2048)[:-2] + [
            "--env", "trpokit-test/Breaks-v0", "--set", "num_envs=1"]) == 1
    finally:
        gym.registry.pop("trpokit-test/Breaks-v0")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the environment failed" in err[0] and "--resume" in err[0]


def test_a_batch_too_large_for_memory_is_refused_before_building(tmp_path):
    with pytest.raises(ConfigError, match="GiB.*lower num_envs or steps_per_env"):
        rl.train(config={"num_envs": 10**6, "steps_per_env": 10**5}, out=tmp_path / "run",
                 progress=False)
    assert not (tmp_path / "run").exists()
