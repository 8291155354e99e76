"""The project's modules import one another in one direction only.

    config -> models -> schemas -> tasks -> background -> web -> wsgi

A module may import only modules to its left (and its own package's modules).
"""
import ast

import pytest

from tests.services import ROOT

LAYERS = ["config", "models", "schemas", "tasks", "background", "web", "wsgi"]
PACKAGES = ("background", "web")
EXERCISE = ("wsgi", "tasks", "config", "models", "schemas")
MODULES = {
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
    for path in [*ROOT.glob("*.py"), *(p for package in PACKAGES for p in (ROOT / package).glob("*.py"))]
}


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def project_imports(path, top_level_only: bool) -> set[str]:
    """Return the project modules that the module at path imports."""
    return imports(path, top_level_only) & MODULES.keys()


def imports(path, top_level_only: bool) -> set[str]:
    """Return the modules (and names from them) that the module at path imports."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_every_project_module_has_a_layer():
    for name in MODULES:
        if name not in ("gunicorn.conf",) and name.split(".")[0] not in LAYERS:
            pytest.fail(f"{name} is in no layer: add it to LAYERS or a package")


def test_imports_point_one_way():
    for name, path in MODULES.items():
        if name.split(".")[0] not in LAYERS:
            continue
        for imported in project_imports(path, top_level_only=False):
            same_package = imported.split(".")[0] == name.split(".")[0]
            assert same_package or layer(imported) < layer(name), f"{name} imports {imported}"


def test_imports_within_a_package_form_no_cycle():
    graph = {name: project_imports(path, top_level_only=False) - {name}
             for name, path in MODULES.items()}
    visiting, done = set(), set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in visiting, f"import cycle: {' -> '.join((*trail, name))}"
        if name in done:
            return
        visiting.add(name)
        for imported in graph[name]:
            visit(imported, (*trail, name))
        visiting.remove(name)
        done.add(name)

    for name in graph:
        visit(name, ())


# The imports inside a function, and why. The integrate task loads NumPy only
# in the worker, which runs it, never in the web process, which queues it
# (about 10 MiB per web process). Only the flask command registers
# Flask-Migrate: its Alembic, Mako and Pygments cost each gunicorn process
# 9 MiB (83 -> 74 MiB), for migrations that only `flask db` runs.
IMPORTED_WHEN_RUN = {"background.tasks": {"background.montecarlo",
                                          "background.montecarlo.estimate_area"},
                     "web.cli": {"flask_migrate", "flask_migrate.Migrate"}}


def test_no_module_imports_inside_a_function_but_those_listed():
    for name, path in MODULES.items():
        inside = imports(path, top_level_only=False) - imports(path, top_level_only=True)
        assert inside <= IMPORTED_WHEN_RUN.get(name, set()), (
            f"{name} imports {inside} inside a function")


@pytest.mark.parametrize("name", EXERCISE[1:])
def test_the_exercise_files_but_wsgi_import_no_package(name):
    imported = project_imports(MODULES[name], top_level_only=False)
    assert not {module for module in imported if module.split(".")[0] in PACKAGES}


def test_the_top_level_holds_the_exercise_and_few_folders():
    folders = {path.name for path in ROOT.iterdir()
               if path.is_dir() and not path.name.startswith((".", "__"))}
    folders -= {"tests", "migrations", "docs", "instance", "test-artifacts"}
    assert len(folders) <= 5, folders
    assert {path.stem for path in ROOT.glob("*.py")} == {*EXERCISE, "gunicorn.conf"}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("path", [*MODULES.values(), *(ROOT / "benchmarks").glob("*.py")],
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_no_code_reads_or_overrides_a_private_name(path):
    """Libraries may change their private names in any release; a template copied and
    upgraded by others must not depend on one, read (obj._name) or overridden (def _name)."""
    tree = ast.parse(path.read_text())
    found = [f"line {node.lineno}: .{node.attr}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and private(node.attr)]
    found += [f"line {method.lineno}: def {method.name}" for node in ast.walk(tree)
              if isinstance(node, ast.ClassDef) for method in node.body
              if isinstance(method, ast.FunctionDef) and private(method.name)]
    assert found == []
