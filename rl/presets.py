"""Per-environment presets: the settings ``python -m rl train --env ENV`` uses with no flags.

A preset is a set of ``--set`` values chosen for one task, applied by
:func:`rl.train.resolve_config` beneath the user's own settings (a ``--set`` always wins)
and recorded in the run's ``config.json`` as the ``preset`` setting. ``preset=auto`` (the
default) picks the environment's preset if there is one; ``preset=none`` turns presets
off; ``preset=<name>`` applies a named preset to any environment (for example
``Hopper-v5``'s settings on a custom locomotion task).

The MuJoCo presets start from what the reference TRPO implementations run on these tasks
(rl-baselines3-zoo's tuned ``trpo.yml``: observation and reward normalisation, 2
environments x 1024 steps, GAE λ 0.95; Swimmer with γ = 0.9999, HalfCheetah with a KL
bound of 0.04). The measurements that support them, over seeds, are in
``benchmarks/results/learning.md`` and the docs page "Reproducing the TRPO paper".

>>> sorted(PRESETS)[:2]
['Ant-v5', 'HalfCheetah-v5']
>>> preset_settings("Swimmer-v5", "trpo")["gamma"]
0.9999
"""

from __future__ import annotations

__all__ = ["PRESETS", "Preset", "preset_settings", "resolve_preset"]

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """One environment's settings.

    Attributes
    ----------
    settings : dict
        ``--set`` values for every algorithm (runner settings and the algorithm settings
        every algorithm has, such as ``gamma`` and ``lam``).
    per_algorithm : dict
        Extra values for one algorithm, by its registered name (``{"trpo": {"max_kl":
        0.04}}``); a key the algorithm does not have is skipped.
    source : str
        Where the values come from.
    """

    settings: dict
    per_algorithm: dict = field(default_factory=dict)
    source: str = ""


# presets: begin
#: Shared by the five MuJoCo locomotion tasks (rl-baselines3-zoo ``trpo.yml``,
#: ``mujoco-defaults``: ``normalize: true`` (observations and rewards, VecNormalize's
#: clip 10 on both), ``n_envs: 2``, ``n_steps: 1024``, ``gae_lambda: 0.95``,
#: ``gamma: 0.99``).
_MUJOCO = {"obs_normalization": True, "obs_clip": 10.0, "reward_scaling": True,
           "reward_clip": 10.0, "num_envs": 2, "steps_per_env": 1024, "lam": 0.95,
           "gamma": 0.99}
_ZOO = "rl-baselines3-zoo hyperparams/trpo.yml (mujoco-defaults"

PRESETS: dict[str, Preset] = {
    "Hopper-v5": Preset(dict(_MUJOCO), source=_ZOO + ")"),
    "Walker2d-v5": Preset(dict(_MUJOCO), source=_ZOO + ")"),
    "Ant-v5": Preset(dict(_MUJOCO), source=_ZOO + ")"),
    "HalfCheetah-v5": Preset(dict(_MUJOCO), per_algorithm={"trpo": {"max_kl": 0.04}},
                             source=_ZOO + "; HalfCheetah: target_kl 0.04)"),
    "Swimmer-v5": Preset(dict(_MUJOCO, gamma=0.9999, reward_scaling=False),
                         source=_ZOO + "; Swimmer: gamma 0.9999); without reward scaling, "
                         "the setting measured over five seeds"),
}
# presets: end


def resolve_preset(name: str, env: str) -> str:
    """The preset a run uses: ``name`` (``"auto"``, ``"none"`` or a preset's name) for the
    environment id ``env``; ``"none"`` where ``auto`` finds no preset."""
    if name == "auto":
        return env if env in PRESETS else "none"
    if name != "none" and name not in PRESETS:
        raise ValueError(f"preset must be 'auto', 'none' or one of {sorted(PRESETS)}; got "
                         f"{name!r}")
    return name


def preset_settings(name: str, algo: str) -> dict:
    """The ``--set`` values of preset ``name`` for algorithm ``algo`` (empty for
    ``"none"``)."""
    if name == "none":
        return {}
    preset = PRESETS[resolve_preset(name, name)]
    return {**preset.settings, **preset.per_algorithm.get(algo, {})}
