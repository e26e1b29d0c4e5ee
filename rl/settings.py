"""The settings of a run, described from the config dataclasses themselves.

Every ``--set`` key is a field of :class:`rl.train.TrainConfig` (the runner) or of an
algorithm's config (:class:`rl.algorithms.TRPOConfig` ...). Its type and default come from
the field, its meaning from the ``Attributes`` section of the class docstring, and its
allowed range or choices from the checks the class's ``__post_init__`` runs — read from
that method's source, so the help cannot promise a range the validation does not enforce
(``tests/rl/test_settings.py`` checks every stated bound against the validation).

>>> from rl.algorithms import TRPOConfig
>>> doc = setting_docs(TRPOConfig)["max_kl"]
>>> doc.type, doc.default, doc.allowed
('float', 0.01, '(0, inf)')
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import typing
from dataclasses import dataclass

__all__ = ["SettingDoc", "setting_docs", "settings_help", "resolved_settings",
           "format_settings"]

# settings that are command-line options of their own rather than --set keys
_OPTIONS = {"algo": "--algo", "env": "--env", "steps": "--steps", "seed": "--seed"}


@dataclass(frozen=True)
class SettingDoc:
    """One setting: what the help shows about it.

    Attributes
    ----------
    name : str
        The ``--set`` key.
    type : str
        The accepted type, as a user types it (``"int"``, ``"float or none"`` ...).
    default : object
        The class default.
    allowed : str
        The range checked by ``__post_init__`` in interval notation (``"(0, inf)"``), the
        choices (``"mlp | linear | constant | none"``), or ``""`` if no check applies.
    meaning : str
        The first sentence of the field's docstring entry, as plain text.
    """

    name: str
    type: str
    default: object
    allowed: str
    meaning: str


# ------------------------------------------------------------------------- docstrings
_GREEK = {"delta": "δ", "gamma": "γ", "lambda": "λ", "epsilon": "ε", "beta": "β", "eta": "η",
          "theta": "θ", "pi": "π", "sigma": "σ", "alpha": "α", "leftarrow": "←"}


def _plain(text: str) -> str:
    """RST and LaTeX markup of a docstring sentence as plain text."""
    text = re.sub(r":math:`([^`]*)`", lambda m: m.group(1), text)
    text = re.sub(r"\\+sqrt\{((?:[^{}]|\{[^{}]*\})*)\}", r"sqrt(\1)", text)
    text = re.sub(r":(\w+):`~?([^`<]*?)(?:\s*<[^>]*>)?`",  # a module keeps its dotted name
                  lambda m: m.group(2) if m.group(1) == "mod" else m.group(2).split(".")[-1],
                  text)
    text = text.replace("``", "")
    text = re.sub(r"\\+([A-Za-z]+)", lambda m: _GREEK.get(m.group(1), m.group(1)), text)
    text = re.sub(r"_\{([^}]*)\}", r"_\1", text).replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", text).strip()


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not one inside parentheses)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "." and depth <= 0 and (i + 1 == len(text) or text[i + 1] == " "):
            return text[:i + 1]
    return text


def _attribute_docs(cls) -> dict:
    """``{field: meaning}`` from the numpydoc ``Attributes`` sections of ``cls`` and its bases
    (a subclass's entry replaces its base's)."""
    docs = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.cleandoc(klass.__dict__.get("__doc__") or "")
        match = re.search(r"^Attributes\n-+\n(.*?)(?:^\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
        if not match:
            continue
        names, lines = [], []
        for line in match.group(1).splitlines() + ["END : end"]:
            if line and not line.startswith(" ") and " : " in line:
                for name in names:
                    docs[name] = _first_sentence(_plain(" ".join(lines)))
                names = [n.strip() for n in line.split(" : ")[0].split(",")]
                lines = []
            else:
                lines.append(line.strip())
    return docs


# --------------------------------------------------------------------- checked ranges
def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _interval(args, keywords) -> str:
    low = _literal(args[0]) if len(args) > 0 else None
    high = _literal(args[1]) if len(args) > 1 else None
    kw = {k.arg: _literal(k.value) for k in keywords}
    low, high = kw.get("low", low), kw.get("high", high)
    lb = "(" if kw.get("low_open") or low is None else "["
    hb = ")" if kw.get("high_open") or high is None else "]"
    return (f"{lb}{'-inf' if low is None else format(low, 'g')}, "
            f"{'inf' if high is None else format(high, 'g')}{hb}")


def _choices(node, names):
    """A tuple of literals, where ``*NAME`` entries unpack a module-level constant of
    ``names`` (``("auto", "none", *PRESETS)``); None for anything else."""
    if not isinstance(node, ast.Tuple):
        return _literal(node)
    out = []
    for elt in node.elts:
        if isinstance(elt, ast.Starred) and isinstance(elt.value, ast.Name) \
                and elt.value.id in names:
            out.extend(names[elt.value.id])
        elif (value := _literal(elt)) is not None:
            out.append(value)
        else:
            return None
    return tuple(out)


def _field_of(node, loop_names):
    """The field a check's value argument names: ``self.x``, or ``getattr(self, name)``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.value.id == "self":
        return [node.attr]
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" \
            and isinstance(node.args[1], ast.Name):
        return loop_names.get(node.args[1].id, [])
    return []


def _strings(node) -> list:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def _checked_ranges(cls) -> dict:
    """``{field: allowed}`` from the checks in ``__post_init__`` of ``cls`` and its bases.

    Recognised: ``check_range("x", self.x, low, high, ...)``, also in a loop over names
    (``for name in names: check_range(name, getattr(self, name), ...)``); ``if self.x not
    in (choices)``, also in a loop over ``(name, choices)`` pairs; and a string the method
    assigns to a field (``self.x = "all"``), which is then accepted besides the range.
    """
    allowed, extra = {}, {}

    def visit(node, assigned, loops, pairs):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                assigned[target.id] = _strings(node.value)
            elif (isinstance(target, ast.Attribute) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, str)):
                extra.setdefault(target.attr, []).append(node.value.value)
        elif isinstance(node, ast.For):
            loops, pairs = dict(loops), dict(pairs)  # the loop's bindings, for its body only
            if isinstance(node.target, ast.Name):
                loops[node.target.id] = (assigned.get(node.iter.id, [])
                                         if isinstance(node.iter, ast.Name)
                                         else _strings(node.iter))
            elif isinstance(node.target, ast.Tuple) and len(node.target.elts) == 2:
                name_var, choices_var = (e.id for e in node.target.elts)
                table = _literal(node.iter) or ()
                loops[name_var] = [row[0] for row in table]
                pairs[choices_var] = {row[0]: tuple(row[1]) for row in table}
            for child in node.body:
                visit(child, assigned, loops, pairs)
            return
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check_range":
            for name in _field_of(node.args[1], loops):
                allowed[name] = _interval(node.args[2:], node.keywords)
        elif (isinstance(node, ast.Compare) and len(node.ops) == 1
              and isinstance(node.ops[0], ast.NotIn)):
            comparator = node.comparators[0]
            if isinstance(comparator, ast.Name) and comparator.id in pairs:
                for name, choices in pairs[comparator.id].items():
                    allowed[name] = " | ".join(choices)
            else:
                choices = _choices(comparator, module_names)
                if isinstance(choices, (tuple, list)):
                    for name in _field_of(node.left, loops):
                        allowed[name] = " | ".join(map(str, choices))
        for child in ast.iter_child_nodes(node):
            visit(child, assigned, loops, pairs)

    for klass in reversed(cls.__mro__):
        method = klass.__dict__.get("__post_init__")
        if method is not None:
            module_names = vars(inspect.getmodule(method))
            visit(ast.parse(textwrap.dedent(inspect.getsource(method))), {}, {}, {})
    for name, words in extra.items():
        if name in allowed:
            allowed[name] += "".join(f" or {w}" for w in dict.fromkeys(words))
    return allowed


# ---------------------------------------------------------------------------- types
def _type_text(annotation) -> str:
    args = typing.get_args(annotation)
    if args:
        parts = [_type_text(a) for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(parts))
        return text + " or none" if type(None) in args else text
    if annotation is tuple:
        return "ints, comma separated"
    if annotation is bool:
        return "bool"
    return getattr(annotation, "__name__", str(annotation))


def setting_docs(config_class) -> dict:
    """``{name: SettingDoc}`` for every field of a config dataclass, in field order."""
    hints = typing.get_type_hints(config_class)
    meanings = _attribute_docs(config_class)
    ranges = _checked_ranges(config_class)
    out = {}
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out[f.name] = SettingDoc(f.name, _type_text(hints[f.name]), default,
                                 ranges.get(f.name, ""), meanings.get(f.name, ""))
    return out


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _entry(doc: SettingDoc, width: int) -> str:
    head = f"  {doc.name} : {doc.type}"
    if doc.allowed:
        head += f" in {doc.allowed}"
    head += f"; default {_show(doc.default)}"
    body = textwrap.fill(doc.meaning, width, initial_indent=" " * 6,
                         subsequent_indent=" " * 6) if doc.meaning else ""
    return head + ("\n" + body if body else "")


def settings_help(width: int = 92) -> str:
    """The ``--set`` keys of every scope, for ``python -m rl train --help``.

    Runner settings (:class:`rl.train.TrainConfig`) first, then those every algorithm
    shares, then each algorithm's own (with a shared one again where its default differs).
    """
    from rl.algorithms import ALGORITHMS, AlgorithmConfig
    from rl.train import TrainConfig

    lines = ["settings (--set KEY=VALUE; KEY, algo.KEY or train.KEY):", "",
             "runner (train.KEY):"]
    lines += [_entry(d, width) for n, d in setting_docs(TrainConfig).items()
              if n not in _OPTIONS]
    shared = setting_docs(AlgorithmConfig)
    lines += ["", "every algorithm (algo.KEY):"] + [_entry(d, width) for d in shared.values()]
    for name, cls in ALGORITHMS.items():
        docs = setting_docs(cls.config_class)
        own = [d for n, d in docs.items() if n not in shared or d.default != shared[n].default]
        lines += ["", f"{name} only (algo.KEY, with --algo {name}):"]
        lines += [_entry(d, width) for d in own]
    return "\n".join(lines)


# ------------------------------------------------------------------ resolved settings
def resolved_settings(algo="trpo", env="CartPole-v1", *, steps=None, seed=0, overrides=None):
    """The settings a run would use, each with where its value comes from.

    Returns a list of ``(scope, name, value, source)``: ``scope`` is ``"runner"`` or the
    algorithm's name; ``source`` is ``"--set"`` for an override, the option (``"--steps"``
    ...) for a value given as one, ``"default"`` for the class default, and ``"preset"``
    for a value the runner chose otherwise (a per-environment preset). Raises
    :class:`rl.train.ConfigError` as :func:`rl.train.resolve_config` does.
    """
    from rl.train import TrainConfig, resolve_config

    overrides = dict(overrides or {})
    train_cfg, algo_cfg = resolve_config(algo, env, steps=steps, seed=seed, overrides=overrides)
    algo_fields = {f.name for f in dataclasses.fields(type(algo_cfg))}
    routed = set()  # (scope, name) of every override, routed as resolve_config routes it
    for key in overrides:
        prefix, _, bare = key.rpartition(".")
        in_algo = prefix == "algo" or (prefix == "" and bare in algo_fields)
        routed.add(("algo" if in_algo else "runner", bare))
    rows = []
    for scope, cfg, cls in (("runner", train_cfg, TrainConfig),
                            (algo, algo_cfg, type(algo_cfg))):
        for name, doc in setting_docs(cls).items():
            value = getattr(cfg, name)
            if ("runner" if scope == "runner" else "algo", name) in routed:
                source = "--set"
            elif scope == "runner" and name in _OPTIONS and value != doc.default:
                source = _OPTIONS[name]
            elif value == doc.default:
                source = "default"
            else:
                source = "preset"
            rows.append((scope, name, value, source))
    return rows


def format_settings(rows) -> str:
    """:func:`resolved_settings` as an aligned table."""
    width = max(len(name) for _, name, _, _ in rows)
    vwidth = max(len(_show(value)) for _, _, value, _ in rows)
    lines, scope_now = [], None
    for scope, name, value, source in rows:
        if scope != scope_now:
            lines += ([""] if lines else []) + [f"{scope}:" if scope == "runner"
                                                else f"algorithm {scope}:"]
            scope_now = scope
        lines.append(f"  {name:<{width}}  {_show(value):<{vwidth}}  {source}")
    lines += ["", "source: default = the config's default (its documentation cites where it "
              "comes from);", "--set, --algo, --env, --steps, --seed = given; preset = chosen "
              "for the environment by the runner"]
    return "\n".join(lines)
