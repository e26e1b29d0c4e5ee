"""Progress of training and evaluation: a bar on a terminal, labelled plain lines in a log."""

from __future__ import annotations

import io
import re

import pytest

from rl.__main__ import main
from rl.algorithms import ALGORITHMS
from rl.progress import EVAL_RETURN, TRAIN_RETURN, EvaluationProgress, TrainingProgress
from rl.train import train

SMALL = {"num_envs": 2, "steps_per_env": 128, "eval_episodes": 2, "checkpoint_every": 1,
         "value_iterations": 5}


class Terminal(io.StringIO):
    def isatty(self):
        return True


ROW = {"iteration": 3, "episode/return_mean": 21.5, "trpo/kl": 0.0093}


def test_a_log_gets_one_plain_line_per_update_with_elapsed_eta_rate_and_labels():
    log = io.StringIO()
    bar = TrainingProgress(1000, stream=log, headline={"KL": "trpo/kl"},
                           description="training trpo on CartPole-v1")
    bar.update(250, ROW)
    bar.update(500, dict(ROW, iteration=4, **{"episode/return_mean": float("nan")}))
    bar.close()
    lines = log.getvalue().splitlines()
    assert lines[0] == "training trpo on CartPole-v1: 1000 steps"
    assert len(lines) == 3 and "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    first = lines[1]
    for part in ("iteration 3", "250/1000 steps", "25%", "elapsed ", "ETA ", "steps/s",
                 f"{TRAIN_RETURN} 21.5", "KL 0.0093"):
        assert part in first, (part, first)
    assert re.search(r"elapsed \d\d:\d\d", first) and re.search(r"ETA (\d\d:\d\d|n/a)", first)
    assert f"{TRAIN_RETURN} n/a" in lines[2]  # no episode finished in that batch


def test_the_last_batch_passing_the_budget_shows_100_percent_and_no_time_left():
    log = io.StringIO()
    bar = TrainingProgress(1000, stream=log)
    bar.update(1024, ROW)
    line = log.getvalue().splitlines()[-1]
    assert "1024/1000 steps  100%" in line and "ETA 00:00" in line and "-" not in line


def test_a_terminal_gets_a_tqdm_bar_with_the_same_fields():
    term = Terminal()
    bar = TrainingProgress(1000, stream=term, headline={"KL": "trpo/kl"})
    bar.update(500, ROW)
    bar.close()
    out = term.getvalue()
    assert "\r" in out and "%|" in out  # tqdm's bar, redrawn in place
    assert "500/1" in out and "step/s" in out and f"{TRAIN_RETURN} 21.5" in out
    assert "KL 0.0093" in out and "<" in out  # tqdm's elapsed<remaining


def test_disabled_progress_writes_nothing():
    log = io.StringIO()
    bar = TrainingProgress(10, enabled=False, stream=log, description="x")
    bar.update(5, ROW)
    bar.close()
    ev = EvaluationProgress(3, enabled=False, stream=log)
    ev.update([1.0])
    assert log.getvalue() == ""


def test_evaluation_lines_are_labelled_deterministic_and_the_last_is_always_written():
    log = io.StringIO()
    ev = EvaluationProgress(3, stream=log, description="evaluating")
    for returns in ([10.0], [10.0, 20.0], [10.0, 20.0, 30.0]):
        ev.update(returns)
    lines = log.getvalue().splitlines()
    assert lines[0] == "evaluating: 3 episodes"
    assert lines[-1].startswith("evaluation  3/3 episodes  100%")
    assert f"{EVAL_RETURN} 20" in lines[-1]


def test_the_runner_shows_what_the_algorithm_declares(tmp_path, capsys, monkeypatch):
    """The runner reads the displayed diagnostics from the algorithm's headline_metrics,
    not from a list of keys of its own: changing the declaration changes the display."""
    cls = ALGORITHMS["trpo"]
    monkeypatch.setattr(cls, "headline_metrics", {"CG its": "cg/nit", "grad": "trpo/grad_norm"})
    train("trpo", "CartPole-v1", steps=256, seed=0, out=tmp_path / "run", config=SMALL,
          progress=True, plot=False)
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("iteration 1"))
    assert "CG its " in line and "grad " in line and " KL " not in line
    assert f"{TRAIN_RETURN} " in line
    assert f"{EVAL_RETURN} " in err  # the final evaluation shows its progress too


@pytest.mark.parametrize("algo", sorted(n for n, a in ALGORITHMS.items() if not a.exact_only))
def test_every_algorithm_shows_its_kl(tmp_path, capsys, algo):
    config = dict(SMALL, eval_episodes=0, **({"epochs": 1} if algo == "ppo" else {}))
    train(algo, "CartPole-v1", steps=256, seed=0, out=tmp_path / "run", config=config,
          progress=True, plot=False)
    line = next(line for line in capsys.readouterr().err.splitlines()
                if line.startswith("iteration 1"))
    assert re.search(r"KL \d", line), line


def test_cli_evaluate_shows_progress_and_labels_the_return(tmp_path, capsys):
    train("trpo", "CartPole-v1", steps=256, seed=0, out=tmp_path / "run",
          config=dict(SMALL, eval_episodes=0), progress=False, plot=False)
    assert main(["evaluate", str(tmp_path / "run"), "--episodes", "3"]) == 0
    captured = capsys.readouterr()
    assert "evaluation  3/3 episodes  100%" in captured.err
    assert EVAL_RETURN in captured.err
    assert '"eval/episodes": 3' in captured.out  # stdout stays the JSON alone
    assert main(["evaluate", str(tmp_path / "run"), "--episodes", "2", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_train_labels_the_final_evaluation(tmp_path, capsys):
    assert main(["train", "--steps", "256", "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", "num_envs=2", "--set", "steps_per_env=128",
                 "--set", "eval_episodes=2"]) == 0
    assert f"{EVAL_RETURN}: " in capsys.readouterr().out
