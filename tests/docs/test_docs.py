"""The documentation builds cleanly, its examples run, and every test it names exists.

The theory pages tie each derivation to the tests that verify it ("Verified by" sections and
the table on ``docs/verification.rst``). These tests keep that promise honest: a renamed or
deleted test, a page that names a test nobody wrote, a labelled equation with no row in the
table, an API name missing from the reference, or a Sphinx warning fails the suite.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
THEORY = DOCS / "theory"

# ``tests/rl/test_mdp.py::test_name`` (optionally ``::TestClass::test_name``) as an RST literal
TEST_REF = re.compile(r"``(tests/[\w/]+\.py)::(\w+(?:::\w+)?)``")
# ``   :label: name`` under a ``.. math::`` directive, and an ``:eq:`name``` reference to it
LABEL = re.compile(r"^\s+:label:\s*(\S+)\s*$", re.M)
EQ_REF = re.compile(r":eq:`([^`]+)`")


def named_tests(path: Path) -> list[tuple[str, str, int]]:
    """``(file, name, line)`` of every test named as ``tests/...py::name`` in an RST file."""
    found = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for m in TEST_REF.finditer(line):
            found.append((m.group(1), m.group(2), lineno))
    return found


def defined_tests(test_file: Path) -> set[str]:
    """Names of the test functions in a test module, ``Class::method`` for methods."""
    tree = ast.parse(test_file.read_text(encoding="utf-8"), filename=str(test_file))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(f"{node.name}::{item.name}")
    return names


def missing_tests(refs, root: Path = ROOT) -> list[str]:
    """Problems with the named tests: files that do not exist or do not import, names absent.

    A module is imported as pytest imports it (``tests.rl.test_mdp``); the function must be a
    callable attribute of it (a method of the named class for ``Class::method``). A module that
    skips itself at import (e.g. an optional dependency is missing) is checked by parsing it.
    """
    problems = []
    for file, name, where in refs:
        path = root / file
        if not path.is_file():
            problems.append(f"{where}: {file}::{name} -- {file} does not exist")
            continue
        module_name = file[: -len(".py")].replace("/", ".")
        try:
            module = importlib.import_module(module_name)
        except pytest.skip.Exception:
            if name not in defined_tests(path):
                problems.append(f"{where}: {file}::{name} -- no such test in {file}")
            continue
        except Exception as exc:  # the module is broken: the named test cannot run
            problems.append(f"{where}: {file}::{name} -- {module_name} does not import: {exc!r}")
            continue
        obj: object = module
        for part in name.split("::"):
            obj = getattr(obj, part, None)
        if not callable(obj) or not name.split("::")[-1].startswith("test"):
            problems.append(f"{where}: {file}::{name} -- no such test in {file}")
    return problems


def _all_refs():
    pages = [DOCS / "verification.rst", *sorted(THEORY.glob("*.rst"))]
    return [
        (file, name, f"{page.relative_to(ROOT)}:{line}")
        for page in pages
        for file, name, line in named_tests(page)
    ]


def test_every_named_test_exists():
    """Every test named in docs/verification.rst and the theory pages' "Verified by" sections
    is a test function in an importable test module."""
    refs = _all_refs()
    assert refs, "the documentation names no tests; the verification table is missing"
    problems = missing_tests(refs)
    assert not problems, "the documentation names tests that do not exist:\n" + "\n".join(problems)


def test_the_existence_check_can_fail(tmp_path):
    """The checker accepts a real test and reports a missing file, a missing function, a
    missing class and a function that is not a test; the pattern finds the RST literals."""
    me = "tests/docs/test_docs.py"
    refs = [
        (me, "test_the_existence_check_can_fail", "real"),
        (me, "test_imaginary", "no-function"),
        ("tests/nowhere/test_x.py", "test_a", "no-file"),
        (me, "TestNothing::test_a", "no-class"),
        (me, "named_tests", "not-a-test"),
    ]
    problems = missing_tests(refs)
    assert [p.split(":", 1)[0] for p in problems] == ["no-function", "no-file", "no-class",
                                                     "not-a-test"]
    assert "does not exist" in problems[1]
    assert "test_the_existence_check_can_fail" in defined_tests(ROOT / me)

    page = tmp_path / "page.rst"
    page.write_text("- ``tests/rl/test_mdp.py::test_a`` and ``tests/x/test_b.py::TestC::test_d``\n")
    assert [(f, n) for f, n, _ in named_tests(page)] == [
        ("tests/rl/test_mdp.py", "test_a"),
        ("tests/x/test_b.py", "TestC::test_d"),
    ]


def test_every_theory_page_has_the_template():
    """Each theory page has key equations, a derivation, an algorithm, "Verified by" naming at
    least one test, and the implementation pulled in by ``literalinclude :pyobject:``."""
    pages = sorted(p for p in THEORY.glob("*.rst") if p.name != "index.rst")
    assert len(pages) == 11
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for heading in ("Key equations", "Derivation", "Verified by", "Implementation"):
            assert re.search(rf"^{heading}\n-+$", text, re.M), f"{page.name}: no '{heading}'"
        assert re.search(r"^Algorithm\b.*\n-+$", text, re.M), f"{page.name}: no algorithm"
        verified = text.split("\nVerified by\n", 1)[1].split("\nImplementation\n", 1)[0]
        assert TEST_REF.search(verified), f"{page.name}: 'Verified by' names no test"
        assert re.search(r"\.\. literalinclude:: \.\./\.\./\S+\.py\n\s+:pyobject:", text), page.name
        assert ".. math::\n   :label:" in text, f"{page.name}: no labelled equation"


def verification_rows(table: Path = DOCS / "verification.rst") -> list[list[str]]:
    """The cells ``[page, identity, equation, tests]`` of each row of the verification
    table's ``list-table``, the header row left out."""
    rows = table.read_text(encoding="utf-8").split("\n   * - ")[2:]
    return [row.split("\n     - ") for row in rows]


def labels_without_rows(theory: Path = THEORY, table: Path = DOCS / "verification.rst"
                        ) -> list[str]:
    """``page: label`` for every ``:label:`` of a theory page that no row of the table cites
    in its Equation cell (a mention in another cell does not count)."""
    cited = {label for cells in verification_rows(table) if len(cells) > 2
             for label in EQ_REF.findall(cells[2])}
    return [
        f"{page.relative_to(theory.parent)}: {label}"
        for page in sorted(theory.glob("*.rst"))
        for label in LABEL.findall(page.read_text(encoding="utf-8"))
        if label not in cited
    ]


def test_verification_table_covers_the_theory_pages():
    """Every test named in a "Verified by" section is also in the verification table, and
    every table row has four cells and cites an equation label in its Equation cell."""
    table = {(f, n) for f, n, _ in named_tests(DOCS / "verification.rst")}
    pages = {(f, n) for p in THEORY.glob("*.rst") for f, n, _ in named_tests(p)}
    assert pages <= table, f"named on theory pages but not in the table: {sorted(pages - table)}"
    rows = verification_rows()
    assert rows
    for cells in rows:
        assert len(cells) == 4, f"a verification row does not have 4 cells: {cells[0][:80]!r}"
        assert EQ_REF.search(cells[2]), f"a verification row cites no equation: {cells[:2]!r}"


CHECKS = re.compile(r"\bChecks\s+((?:``\w+``(?:,\s*|\s+and\s+)?)+)\.")


def _identifiers(node) -> set[str]:
    """Every name and attribute used in ``node`` (``mdp.mean_kl(...)`` gives mdp, mean_kl)."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
    return found


def used_names(test_file: Path, name: str) -> set[str]:
    """The identifiers a test uses: in its own body and in the module-level functions of
    its module it calls, transitively (helpers such as ``cg_trajectory``)."""
    tree = ast.parse(test_file.read_text(encoding="utf-8"), filename=str(test_file))
    functions = {node.name: node for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            functions.update({f"{node.name}::{item.name}": item for item in node.body
                              if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))})
    if name not in functions:
        return set()
    seen, todo, names = set(), [name], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        ids = _identifiers(functions[current])
        names |= ids
        todo += [i for i in ids if i in functions and i not in seen]
    return names


def unchecked_rows(table: Path = DOCS / "verification.rst", root: Path = ROOT) -> list[str]:
    """Rows of the table whose "Checks" names are missing, or not used by any of the row's
    tests: the row then cites a test that does not exercise the labelled quantity."""
    problems = []
    for cells in verification_rows(table):
        label = " ".join(cells[2].split()) if len(cells) > 2 else cells[0]
        tests_cell = cells[3] if len(cells) > 3 else ""
        m = CHECKS.search(tests_cell)
        if m is None:
            problems.append(f"{label}: no 'Checks ``name``.' line in the Test cell")
            continue
        names = re.findall(r"``(\w+)``", m.group(1))
        used = set()
        for file, test in TEST_REF.findall(tests_cell):
            if (root / file).is_file():
                used |= used_names(root / file, test)
        missing = [n for n in names if n not in used]
        if missing:
            problems.append(f"{label}: no test of the row uses {missing}")
    return problems


def test_every_verification_row_names_what_its_tests_check():
    """Each row ends with "Checks ``name``, ..." naming the functions through which its
    tests reach the labelled quantity (``mean_kl``, ``gae``, ``steihaug``), and each name
    is used by one of the row's tests, so a row cannot cite the test of a neighbouring
    identity (as a test of sum_a pi A = 0 once stood for E[grad log pi b(s)] = 0)."""
    problems = unchecked_rows()
    assert not problems, "verification rows whose tests do not exercise what they name:\n" + (
        "\n".join(problems))


def test_the_checks_check_can_fail(tmp_path):
    """A row without a Checks line, and one naming a function its test does not use, are
    reported; a name used only through a helper of the test module counts."""
    me = "tests/docs/test_docs.py"
    table = tmp_path / "verification.rst"
    row = ("   * - p\n     - identity\n     - :eq:`{eq}`\n"
           "     - ``" + me + "::{test}``\n{checks}")
    table.write_text(
        ".. list-table::\n   :header-rows: 1\n\n"
        "   * - Page\n     - Theorem or identity\n     - Equation\n     - Test\n"
        + row.format(eq="a", test="test_the_checks_check_can_fail", checks="")
        + row.format(eq="b", test="test_the_checks_check_can_fail",
                     checks="\n       Checks ``write_text``, ``steihaug``.\n")
        + row.format(eq="c", test="test_every_verification_row_names_what_its_tests_check",
                     checks="\n       Checks ``verification_rows``.\n")
    )
    problems = unchecked_rows(table)
    assert len(problems) == 2
    assert problems[0].startswith(":eq:`a`: no 'Checks")
    assert problems[1] == ":eq:`b`: no test of the row uses ['steihaug']"


def test_every_labelled_equation_has_a_verification_row():
    """Every ``:label:`` of a theory page is cited in the Equation cell of a row of
    docs/verification.rst, so that index.rst's "every labelled identity is checked
    numerically by a named test" holds for every equation, new ones included."""
    labels = [label for page in THEORY.glob("*.rst")
              for label in LABEL.findall(page.read_text(encoding="utf-8"))]
    assert labels, "the theory pages define no equation labels"
    missing = labels_without_rows()
    assert not missing, (
        "labelled equations with no row in the verification table; add a row to "
        "docs/verification.rst citing each in the Equation cell (:eq:`label`) and naming the "
        "test that checks it numerically:\n" + "\n".join(missing)
    )


def test_the_label_check_can_fail(tmp_path):
    """A label cited only outside the Equation cell, or not at all, is reported; a label
    cited in the Equation cell is not."""
    theory = tmp_path / "theory"
    theory.mkdir()
    (theory / "page.rst").write_text(
        ".. math::\n   :label: cited\n\n   x\n\n.. math::\n   :label: in-prose\n\n   y\n\n"
        ".. math::\n   :label: absent\n\n   z\n"
    )
    table = tmp_path / "verification.rst"
    table.write_text(
        ".. list-table::\n   :header-rows: 1\n\n"
        "   * - Page\n     - Theorem or identity\n     - Equation\n     - Test\n"
        "   * - :doc:`page <theory/page>`\n     - see :eq:`in-prose`\n     - :eq:`cited`\n"
        "     - ``tests/rl/test_mdp.py::test_a``\n"
    )
    assert [cells[2] for cells in verification_rows(table)] == [":eq:`cited`"]
    assert labels_without_rows(theory, table) == ["theory/page.rst: in-prose",
                                                  "theory/page.rst: absent"]


def _public_names(module) -> set[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n for n in dir(module)
            if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType)
        ]
    return set(names)


def api_sections() -> dict[str, set[str]]:
    """``{module: names}`` listed under each ``.. currentmodule::`` of docs/api.rst."""
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    sections = {}
    for chunk in text.split(".. currentmodule:: ")[1:]:
        module, body = chunk.split("\n", 1)
        sections[module.strip()] = set(re.findall(r"^   (\w+)$", body, re.M)) | set(
            re.findall(r"^\.\. data:: (\w+)$", body, re.M)
        )
    return sections


@pytest.mark.parametrize("module_name", ["trustregion", "rl", "rl.algorithms", "rl.checkpoint",
                                         "rl.settings", "rl.progress", "rl.plotting",
                                         "rl.tensorboard", "rl.validation",
                                         "rl.reward_scaling", "rl.presets"])
def test_api_reference_lists_every_public_name(module_name):
    """docs/api.rst lists every public name of the package (autosummary generates its page),
    under its own module or, for a re-export, under the module that defines it."""
    module = importlib.import_module(module_name)
    sections = api_sections()
    documented = {
        id(getattr(importlib.import_module(m), n, None)) for m, names in sections.items()
        for n in names
    }
    missing = sorted(
        n for n in _public_names(module)
        if n not in sections.get(module_name, set()) and id(getattr(module, n)) not in documented
    )
    assert not missing, f"{module_name}: public names missing from docs/api.rst: {missing}"


TRAINING = DOCS / "tutorials" / "training.rst"


def code_blocks(path: Path, language: str) -> list[str]:
    """The bodies of the ``.. code-block:: <language>`` directives of an RST file."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f".. code-block:: {language}":
            indent = len(lines[i]) - len(lines[i].lstrip()) + 3
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" " * indent)):
                body.append(lines[i][indent:])
                i += 1
            blocks.append("\n".join(body).strip("\n"))
        else:
            i += 1
    return blocks


def _resolve(node, namespace):
    """The object a call's ``func`` names, if it is a dotted name into rl or trustregion."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in namespace:
        return None
    obj = namespace[node.id]
    root = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    if not str(root).startswith(("rl", "trustregion")):
        return None
    for part in reversed(parts):
        obj = getattr(obj, part)
    return obj


def check_python_block(code: str) -> list[str]:
    """Compile a tutorial block and bind every call into rl/trustregion to its signature."""
    tree = ast.parse(code)
    namespace, problems = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                namespace[alias.asname or top] = importlib.import_module(alias.asname and
                                                                         alias.name or top)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    problems.append(f"from {node.module} import {alias.name}: no such name")
                else:
                    namespace[alias.asname or alias.name] = getattr(module, alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        try:
            func = _resolve(node.func, namespace)
        except AttributeError as exc:
            problems.append(f"{ast.unparse(node.func)}: {exc}")
            continue
        if func is None:
            continue
        if not callable(func):
            problems.append(f"{ast.unparse(node.func)} is not callable")
            continue
        args = [None for a in node.args if not isinstance(a, ast.Starred)]
        kwargs = {k.arg: None for k in node.keywords if k.arg is not None}
        try:
            inspect.signature(func).bind(*args, **kwargs)
        except TypeError as exc:
            problems.append(f"{ast.unparse(node)[:80]}: {exc}")
            continue
        if ast.unparse(node.func) == "rl.train":  # the settings must be valid ones
            try:
                literal = [ast.literal_eval(a) for a in node.args[:2]]
                config = {k.arg: ast.literal_eval(k.value) for k in node.keywords
                          if k.arg == "config"}.get("config", {})
            except ValueError:
                continue
            runner = importlib.import_module("rl.train")
            try:
                runner.resolve_config(*literal, overrides=config)
            except ValueError as exc:
                problems.append(f"{ast.unparse(node)[:80]}: {exc}")
    return problems


def check_command_line(line: str) -> list[str]:
    """Parse a ``python -m rl ...`` line with the real parser; validate ``train`` settings."""
    argv = shlex.split(line)[3:]
    main = importlib.import_module("rl.__main__")
    try:
        args = main._parser().parse_args(argv)
    except SystemExit:
        return [f"{line}: rejected by the argument parser"]
    if args.command == "train" and args.resume is None:
        runner = importlib.import_module("rl.train")
        overrides = dict(item.split("=", 1) for item in args.set)
        try:
            runner.resolve_config(args.algo, args.env, steps=args.steps, seed=args.seed,
                                  overrides=overrides)
        except ValueError as exc:
            return [f"{line}: {exc}"]
    return []


def test_training_tutorial_matches_the_library():
    """The training tutorial is not run at build time (it trains for minutes), so its code is
    checked here: every Python block compiles and its calls into rl bind to the real signatures
    with valid settings; every ``python -m rl`` line parses and its settings resolve."""
    pytest.importorskip("gymnasium")
    python = code_blocks(TRAINING, "python")
    bash = [line for block in code_blocks(TRAINING, "bash") for line in block.splitlines()
            if line.startswith("python -m rl ")]
    assert len(python) >= 5 and len(bash) >= 6
    problems = [p for block in python for p in check_python_block(block)]
    problems += [p for line in bash for p in check_command_line(line)]
    assert not problems, "tutorials/training.rst is out of date:\n" + "\n".join(problems)


def test_the_tutorial_check_can_fail():
    """A wrong keyword, an unknown setting and an unknown flag are all reported."""
    pytest.importorskip("gymnasium")
    assert check_python_block("import trustregion as tr\ntr.cg(1, 2, rtoll=3)")
    assert check_python_block("from rl.algorithms import TRPOConfig, Nonexistent")
    assert check_command_line("python -m rl train --env CartPole-v1 --set max_kll=0.1")
    assert check_command_line("python -m rl train --no-such-flag")
    assert not check_command_line("python -m rl train --set max_kl=0.02")


FIRST_RUN = DOCS / "tutorials" / "first_run.rst"


def shrunk(argv: list[str]) -> list[str]:
    """A tutorial command with a hundredth of its step budget and small batches, so that the
    whole page runs in seconds; resumed runs keep their own settings."""
    argv = list(argv)
    if argv[0] == "train" and "--steps" in argv:
        i = argv.index("--steps") + 1
        argv[i] = str(int(argv[i]) // 100)
    if argv[0] == "train" and "--resume" not in argv and "--help" not in argv:
        argv += ["--set", "num_envs=2", "--set", "steps_per_env=64", "--set", "eval_episodes=2",
                 "--set", "value_iterations=2", "--no-progress"]
        if argv[argv.index("--algo") + 1] == "ppo":
            argv += ["--set", "epochs=1"]
    if argv[0] == "evaluate" and "--episodes" in argv:
        argv[argv.index("--episodes") + 1] = "2"
    return argv


def test_first_run_tutorial_runs_end_to_end(tmp_path, monkeypatch, capsys):
    """Every ``python -m rl`` command of "Your first run, end to end" runs, in the page's
    order, with a hundredth of its step budget: training, TensorBoard, evaluation, seeds,
    plots, resume and the comparison all succeed and leave what the page says; its Python
    block runs on the runs made; the --help excerpt it shows is the real help."""
    pytest.importorskip("gymnasium")
    pytest.importorskip("tensorboardX")
    main = importlib.import_module("rl.__main__").main
    monkeypatch.chdir(tmp_path)
    lines = [line for block in code_blocks(FIRST_RUN, "bash") for line in block.splitlines()
             if line.startswith("python -m rl ")]
    assert len(lines) >= 12
    outputs = {}
    for line in lines:
        argv = shrunk(shlex.split(line)[3:])
        try:
            status = main(argv)
        except SystemExit as exc:  # --help
            status = exc.code
        captured = capsys.readouterr()
        assert status == 0, f"{line}\n{captured.err}"
        outputs[line] = captured.out
    first = Path("runs/first")
    rows = {run.name: len((run / "metrics.csv").read_text().splitlines()) - 1
            for run in first.iterdir()}
    assert rows["trpo-0"] > rows["trpo-1"] == rows["ppo-2"] > 0  # trpo-0 was resumed
    assert list((first / "trpo-tb" / "tensorboard").glob("events.out.tfevents.*"))
    assert Path("trpo-seeds.png").stat().st_size > 0 and Path("trpo-vs-ppo.png").exists()
    # the --help excerpt shown on the page is the program's own
    shown = code_blocks(FIRST_RUN, "text")[0].splitlines()
    help_text = outputs["python -m rl train --help"]
    missing = [s for s in shown if s.strip() != "..." and s not in help_text.splitlines()]
    assert not missing, f"the page's --help excerpt differs from the program's: {missing}"
    python = code_blocks(FIRST_RUN, "python")
    assert len(python) == 1
    exec(compile(python[0], str(FIRST_RUN), "exec"), {})  # noqa: S102 - the page's own code
    assert "TRPO, lam=0.97 [" in capsys.readouterr().out
    assert Path("trpo-vs-ppo.svg").exists()


def _sphinx(builder: str, out: Path, doctrees: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
           "-d", str(doctrees), str(DOCS), str(out / builder)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_docs_build_without_warnings_and_their_examples_run(tmp_path):
    """``sphinx-build -W`` succeeds (warnings are errors), then the pages' examples pass
    under the doctest builder, reusing the parsed pages."""
    for module in ("sphinx", "furo", "numpydoc", "matplotlib"):
        pytest.importorskip(module, reason=f"the docs build needs {module}: pip install -e .[docs]")
    doctrees = tmp_path / "doctrees"
    html = _sphinx("html", tmp_path, doctrees)
    assert html.returncode == 0, f"sphinx-build -b html failed:\n{html.stdout}\n{html.stderr}"
    assert (tmp_path / "html" / "index.html").is_file()
    assert (tmp_path / "html" / "theory" / "trpo.html").is_file()
    doctest = _sphinx("doctest", tmp_path, doctrees)
    assert doctest.returncode == 0, (
        f"sphinx-build -b doctest failed:\n{doctest.stdout}\n{doctest.stderr}"
    )
