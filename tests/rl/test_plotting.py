"""Learning-curve plots: seed groups, bands, labels, formats, and bad input in one line."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from rl.__main__ import main
from rl.plotting import group_runs, metric_label, plot_runs, read_metrics, seed_band


def _run(path, *, seed, algo="trpo", max_kl=0.01, returns=(10.0, 20.0, 30.0), steps=None,
         columns=None):
    """A run folder with config.json and metrics.csv, as ``train`` writes them."""
    path.mkdir(parents=True)
    config = {"train": {"algo": algo, "env": "CartPole-v1", "seed": seed, "steps": 3000,
                        "num_envs": 8},
              "algo": {"max_kl": max_kl, "gamma": 0.99}}
    (path / "config.json").write_text(json.dumps(config))
    steps = steps or [1000 * (i + 1) for i in range(len(returns))]
    columns = columns or {"trpo/kl": [0.009] * len(returns)}
    header = ["iteration", "steps", "episode/return_mean", *columns]
    lines = [",".join(header)]
    for i, (s, r) in enumerate(zip(steps, returns, strict=True)):
        lines.append(",".join(map(str, [i + 1, s, r, *(c[i] for c in columns.values())])))
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def svg_text():
    """Render SVG text as text, so that a test can read the figure's words."""
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        yield lambda path: path.read_text()


def test_seeds_of_one_configuration_are_one_line_with_a_band(tmp_path, svg_text):
    runs = [_run(tmp_path / f"s{s}", seed=s, returns=(10.0 + s, 20.0 + 2 * s, 30.0 - s))
            for s in range(3)]
    other = _run(tmp_path / "delta02", seed=0, max_kl=0.02)
    groups = group_runs(runs + [other])
    assert [label for label, _ in groups] == ["TRPO, max_kl=0.01", "TRPO, max_kl=0.02"]
    assert groups[0][1] == runs and groups[1][1] == [other]
    out = plot_runs(runs + [other], tmp_path / "curves.svg")
    text = svg_text(out)
    assert "TRPO on CartPole-v1, seeds 0–2" in text
    assert "TRPO, max_kl=0.01 (mean of 3 seeds, band: min–max)" in text
    assert "TRPO, max_kl=0.02 (seed 0)" in text
    assert "train return (stochastic)" in text and "environment steps" in text


def test_a_single_run_has_a_title_and_a_legend(tmp_path, svg_text):
    run = _run(tmp_path / "one", seed=7)
    text = svg_text(plot_runs([run], tmp_path / "one.svg"))
    assert "TRPO on CartPole-v1, seed 7" in text and "TRPO (seed 7)" in text


def test_seed_band_is_the_mean_min_and_max_over_runs_on_the_common_steps():
    rng = np.random.default_rng(0)
    steps = np.arange(1, 11) * 100.0
    values = rng.standard_normal((4, 10))
    grid, mean, low, high = seed_band([(steps, v) for v in values])
    np.testing.assert_array_equal(grid, steps)
    np.testing.assert_allclose(mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(low, values.min(axis=0))
    np.testing.assert_array_equal(high, values.max(axis=0))
    # runs of different lengths: only the steps every run reached
    grid, *_ = seed_band([(steps, values[0]), (steps[:6], values[1, :6])])
    np.testing.assert_array_equal(grid, steps[:6])


def test_several_metrics_give_one_panel_each(tmp_path, svg_text):
    run = _run(tmp_path / "r", seed=0, columns={"trpo/kl": [0.01, 0.009, 0.008],
                                                 "policy/entropy": [0.69, 0.6, 0.5]})
    one = svg_text(plot_runs([run], tmp_path / "a.svg", metric="trpo/kl,policy/entropy"))
    two = svg_text(plot_runs([run], tmp_path / "b.svg", metric=["trpo/kl", "policy/entropy"]))
    for text in (one, two):
        assert text.count('id="axes_') == 2
        assert "TRPO: mean KL of the step" in text and "policy entropy (nats)" in text


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"),
                                           (".svg", b"<?xml")])
def test_the_format_follows_the_extension(tmp_path, suffix, magic):
    run = _run(tmp_path / "r", seed=0)
    assert plot_runs([run], tmp_path / f"c{suffix}").read_bytes().startswith(magic)


def test_an_unknown_extension_is_refused_in_one_line(tmp_path, capsys):
    run = _run(tmp_path / "r", seed=0)
    with pytest.raises(ValueError, match=r"\.png, \.pdf, \.svg"):
        plot_runs([run], tmp_path / "x.txt")
    assert main(["plot", str(run), "--output", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'.txt'" in err and ".png" in err
    assert not (tmp_path / "x.txt").exists()
    assert not list(tmp_path.glob(".x*"))  # no temporary file left either


def test_a_header_only_metrics_file_is_refused_with_the_reason(tmp_path, capsys):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "metrics.csv").write_text("iteration,steps,episode/return_mean\n")
    assert {k: v.size for k, v in read_metrics(run).items()} == {
        "iteration": 0, "steps": 0, "episode/return_mean": 0}
    assert main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no rows yet" in err and "columns: []" not in err and err.count("\n") == 1


def test_old_metric_names_are_read_under_their_new_names(tmp_path):
    """A run folder of an earlier version has trpo/max_kl; it reads as trpo/kl_max_state,
    and asking for either name plots it."""
    run = _run(tmp_path / "old", seed=0, columns={"trpo/max_kl": [0.02, 0.03, 0.01]})
    cols = read_metrics(run)
    assert "trpo/max_kl" not in cols
    np.testing.assert_array_equal(cols["trpo/kl_max_state"], [0.02, 0.03, 0.01])
    mixed = _run(tmp_path / "resumed", seed=0, columns={
        "trpo/max_kl": [0.02, 0.03, ""], "trpo/kl_max_state": ["", "", 0.01]})
    np.testing.assert_array_equal(read_metrics(mixed)["trpo/kl_max_state"], [0.02, 0.03, 0.01])
    plot_runs([run], tmp_path / "a.png", metric="trpo/max_kl")
    plot_runs([run], tmp_path / "b.png", metric="trpo/kl_max_state")
    assert metric_label("trpo/max_kl") == metric_label("trpo/kl_max_state")


def test_cli_metric_is_repeatable_and_unknown_columns_are_named(tmp_path, capsys):
    run = _run(tmp_path / "r", seed=0)
    assert main(["plot", str(run), "--metric", "trpo/kl", "--metric", "episode/return_mean",
                 "--output", str(tmp_path / "p.png")]) == 0
    assert main(["plot", str(run), "--metric", "trpo/kll"]) == 2
    err = capsys.readouterr().err
    assert "'trpo/kll'" in err and "trpo/kl" in err


def test_labels_group_runs_that_share_one(tmp_path):
    a, b, c = (_run(tmp_path / n, seed=i) for i, n in enumerate("abc"))
    assert group_runs([a, b, c], labels=["x", "y", "x"]) == [("x", [a, c]), ("y", [b])]
    with pytest.raises(ValueError, match="labels"):
        plot_runs([a, b], tmp_path / "p.png", labels=["x"])
