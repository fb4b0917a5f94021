"""The source's shape: imports only go one way (no cycle, ``TYPE_CHECKING`` and function-level imports included),
a function over 60 lines says why it is long, and every module has a test file named after it."""

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("sparse_jax", "agents", "envs")
LONG = 60


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (a package's ``__init__`` counts for its modules)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # A package's __init__ re-exporting its modules is not a dependency of those modules on each other.
    graph = {n: {t for t in ts if not n.startswith(t + ".")} for n, ts in graph.items()}
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = "open"
        for t in sorted(graph[n]):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_a_long_function_says_why():
    """A function over 60 lines (docstring included) carries a comment starting ``# Long:`` that says why."""
    unexplained = []
    for path in _modules().values():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = lines[node.lineno - 1 : node.end_lineno]
                if len(body) > LONG and not any(line.strip().startswith("# Long:") for line in body):
                    unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({len(body)} lines)")
    assert not unexplained, "functions over 60 lines without a '# Long:' comment: " + ", ".join(unexplained)


# agents/ in layers, bottom first: a module imports its own folder and the folders below it, never one above.
LAYERS = ("agents.results", "agents.algorithms", "agents.execution", "agents.experiments", "agents.cli")


def _layer(module: str) -> int | None:
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return i
    return None


def test_every_agents_module_sits_in_a_layer():
    """A new module in agents/ goes into one of the folders (or is the package's own __init__)."""
    loose = [name for name in _modules() if name.startswith("agents.") and _layer(name) is None]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


def test_agents_folders_only_import_downward():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        own = _layer(name)
        if own is None:
            continue
        for target in _imports(name, path, modules):
            theirs = _layer(target)
            if theirs is not None and theirs > own:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports that go up a layer: " + ", ".join(sorted(upward))


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check above is not vacuous: a function-level import of a higher layer is found."""
    path = tmp_path / "stats.py"
    path.write_text("def f():\n    from agents.experiments import sweep\n")
    found = _imports("agents.results.stats", path, _modules())
    assert "agents.experiments.sweep" in found and _layer("agents.experiments.sweep") > _layer("agents.results.stats")


# Test files named after no module: each checks how modules work together, or what surrounds the code.
CROSS_CUTTING = {
    "test_compose.py": "sparse transforms inside optax's masked, multi_transform and chains, and flax nnx",
    "test_docs.py": "the API reference builds from every module's docstrings",
    "test_extending.py": "a new method and a new algorithm reach every layer that asks about them",
    "test_layout.py": "the source's shape: imports, layers, long functions, test files",
    "test_multihost.py": "a sweep over two processes: CLI, sharding, checkpoints and results together",
    "test_notebooks.py": "the notebooks run",
    "test_packaging.py": "what installs and imports with which extras",
    "test_readme.py": "the README's examples run",
}


def _has_content(init: Path) -> bool:
    """Whether a package's ``__init__.py`` holds more than a docstring."""
    body = ast.parse(init.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return bool(body)


def _test_file_problems(modules: list[str], packages: list[str], test_files: list[str]) -> list[str]:
    """What breaks the rule: a module without ``tests/test_<module>.py``, a test file named after no module or
    package (nor listed in :data:`CROSS_CUTTING`), a listed file that is gone, and a module name used twice."""
    problems = [f"module name {name!r} is used twice" for name in sorted({m for m in modules if modules.count(m) > 1})]
    problems += [f"no tests/test_{name}.py" for name in sorted(set(modules)) if f"test_{name}.py" not in test_files]
    named = {f"test_{name}.py" for name in (*modules, *packages)}
    problems += [
        f"tests/{f} is named after no module (nor listed in CROSS_CUTTING)"
        for f in sorted(test_files)
        if f not in named | set(CROSS_CUTTING)
    ]
    problems += [f"CROSS_CUTTING lists {f}, which is gone" for f in sorted(set(CROSS_CUTTING) - set(test_files))]
    return problems


def test_every_module_has_a_test_file_named_after_it():
    """One test file per module (its basename); package ``__init__`` files with code may have one too."""
    modules, packages = [], []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name != "__init__.py":
                modules.append(path.stem)
            elif _has_content(path):
                packages.append(path.parent.name)
    test_files = [p.name for p in sorted((ROOT / "tests").glob("test_*.py"))]
    assert "results" in packages and "envs" in packages and "sweep" in modules
    problems = _test_file_problems(modules, packages, test_files)
    assert not problems, "; ".join(problems)


def test_the_test_file_check_sees_a_missing_and_a_stray_file():
    """The check above is not vacuous: a module without its file, and a file named after a concept, are found."""
    found = _test_file_problems(
        ["stats", "grid", "stats"],
        ["results"],
        ["test_stats.py", "test_results.py", "test_batching.py", *CROSS_CUTTING],
    )
    assert found == [
        "module name 'stats' is used twice",
        "no tests/test_grid.py",
        "tests/test_batching.py is named after no module (nor listed in CROSS_CUTTING)",
    ]
    assert _test_file_problems([], [], []) == [f"CROSS_CUTTING lists {f}, which is gone" for f in sorted(CROSS_CUTTING)]
