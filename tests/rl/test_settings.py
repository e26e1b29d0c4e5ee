"""The settings' documentation (``train --help``, ``settings``) against the configs' validation."""

from __future__ import annotations

import dataclasses
import re
import sys
import typing

import pytest

from rl.__main__ import main
from rl.algorithms import ALGORITHMS, AlgorithmConfig
from rl.settings import resolved_settings, setting_docs, settings_help
from rl.train import ConfigError, TrainConfig, coerce_setting, resolve_config

OPTIONS = {"algo", "env", "steps", "seed"}  # command-line options, not --set keys
CONFIGS = [("train", TrainConfig)] + [(name, cls.config_class) for name, cls in ALGORITHMS.items()]


def _value_text(value, integer):
    return str(int(value)) if integer else repr(float(value))


def _check(scope, name, text):
    """Resolve one --set override; ``None`` if accepted, else the ConfigError message."""
    algo = scope if scope != "train" else "trpo"
    try:
        if ALGORITHMS[algo].exact_only:  # no runner settings: the config checks itself
            cls = ALGORITHMS[algo].config_class
            hint = typing.get_type_hints(cls)[name]
            cls(**{name: coerce_setting(name, text, hint)})
        else:
            resolve_config(algo, overrides={
                f"{'train' if scope == 'train' else 'algo'}.{name}": text})
    except (ConfigError, ValueError) as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("scope, cls", CONFIGS, ids=[s for s, _ in CONFIGS])
def test_every_stated_range_is_the_range_the_validation_enforces(scope, cls):
    """For each field whose help states an interval, a value just outside each finite end
    is refused and the end itself (closed) or a value just inside (open) is accepted; each
    stated choice is accepted and a made-up one refused. So the help cannot promise a range
    the config does not check, nor miss one it does."""
    checked = 0
    for name, doc in setting_docs(cls).items():
        if name in OPTIONS or not doc.allowed:
            continue
        integer = doc.type.startswith("int")
        interval = re.match(r"([\[(])(\S+), (\S+)([\])])", doc.allowed)
        if interval:
            lb, lo, hi, hb = interval.groups()
            step = 1.0 if integer else 1e-6
            for bound, closed, outward in ((lo, lb == "[", -1), (hi, hb == "]", +1)):
                if bound in ("inf", "-inf"):
                    continue
                b = float(bound)
                outside = b if not closed else b + outward * step
                inside = b if closed else b - outward * step
                assert _check(scope, name, _value_text(outside, integer)) is not None, \
                    (name, outside)
                assert _check(scope, name, _value_text(inside, integer)) is None, (name, inside)
            checked += 1
        else:
            for choice in doc.allowed.split(" | "):
                assert _check(scope, name, choice) is None, (name, choice)
            assert _check(scope, name, "no-such-choice") is not None, name
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("scope, cls", CONFIGS, ids=[s for s, _ in CONFIGS])
def test_every_setting_has_a_meaning_and_a_range_unless_it_is_free(scope, cls):
    """Every field has a one-line meaning from the docstring; every field that is not a
    bool, a name or the layer sizes states its allowed values."""
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    for name, doc in setting_docs(cls).items():
        assert doc.meaning.endswith("."), (name, doc.meaning)
        assert "``" not in doc.meaning and ":math:" not in doc.meaning, doc.meaning
        free = doc.type == "bool" or name in ("algo", "env", "hidden_sizes", "ray_address")
        assert free or doc.allowed, f"{scope}.{name} ({hints[name]}) states no range"


def test_train_help_lists_every_set_key_with_type_default_and_range(capsys):
    """``python -m rl train --help`` names every --set key of every scope, with its type,
    default and the range the validation enforces."""
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "runner (train.KEY):" in text and "every algorithm (algo.KEY):" in text
    for _, cls in CONFIGS:
        for name, doc in setting_docs(cls).items():
            if name in OPTIONS:
                continue
            assert f"  {name} : {doc.type}" in text, name
    assert "  max_kl : float in (0, inf); default 0.01" in text
    assert "  num_envs : int in [1, inf); default 8" in text
    assert "  baseline : str in mlp | linear | constant | none; default mlp" in text
    assert "vine_actions_per_state : int or str in [1, inf) or all; default 4" in text
    # PPO's own GAE lambda is listed under ppo, the shared one under every algorithm
    assert re.search(r"ppo only.*\n  lam : float in \[0, 1\]; default 0\.95", text, re.S)
    assert "GAE parameter λ" in text


def test_help_lists_the_shared_settings_once():
    shared = setting_docs(AlgorithmConfig)
    text = settings_help()
    for name in shared:
        assert text.count(f"\n  {name} :") == 1 + sum(
            setting_docs(cls.config_class)[name].default != shared[name].default
            for cls in ALGORITHMS.values())


def test_settings_command_shows_each_value_and_its_source(capsys):
    assert main(["settings", "--algo", "ppo", "--seed", "4", "--set", "clip=0.3",
                 "--set", "train.num_envs=2"]) == 0
    lines = {tuple(line.split()[:1]): line.split() for line in capsys.readouterr().out
             .splitlines() if line.startswith("  ")}
    assert lines[("clip",)][1:] == ["0.3", "--set"]
    assert lines[("num_envs",)][1:] == ["2", "--set"]
    assert lines[("seed",)][1:] == ["4", "--seed"]
    assert lines[("algo",)][1:] == ["ppo", "--algo"]
    assert lines[("lam",)][1:] == ["0.95", "default"]
    assert lines[("steps",)][1:] == ["100000", "default"]


def test_resolved_settings_match_resolve_config():
    """The values printed are those of the configs a run is built from."""
    overrides = {"max_kl": "0.02", "hidden_sizes": "32,32"}
    rows = resolved_settings("trpo", "CartPole-v1", steps=5000, seed=1, overrides=overrides)
    train_cfg, algo_cfg = resolve_config("trpo", "CartPole-v1", steps=5000, seed=1,
                                         overrides=overrides)
    expected = {("runner", k): v for k, v in dataclasses.asdict(train_cfg).items()}
    expected.update({("trpo", k): v for k, v in algo_cfg.to_dict().items()})
    assert {(s, n): v for s, n, v, _ in rows} == expected
    sources = {n: src for _, n, _, src in rows}
    assert sources["max_kl"] == sources["hidden_sizes"] == "--set"
    assert sources["steps"] == "--steps" and sources["damping"] == "default"


def test_settings_command_rejects_an_unknown_key_in_one_line(capsys):
    assert main(["settings", "--set", "max_kll=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "max_kl" in err and "\n" not in err


def test_the_console_script_names_itself(monkeypatch, capsys):
    """Started as ``trpokit`` the usage line says ``trpokit``; as ``python -m rl`` it says
    that."""
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/trpokit", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert capsys.readouterr().out.startswith("usage: trpokit ")
    monkeypatch.setattr(sys, "argv", ["/x/rl/__main__.py", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert capsys.readouterr().out.startswith("usage: python -m rl ")


def test_every_argument_of_every_command_has_help():
    """No option or positional argument of any command is left without a help text."""
    import argparse
    import importlib

    parser = importlib.import_module("rl.__main__")._parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"train", "evaluate", "plot", "settings", "convert"}
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
