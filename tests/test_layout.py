"""The project's modules import one another in one direction only."""
import ast

from tests.services import ROOT

MODULES = {path.stem: path for path in ROOT.glob("*.py")}


def project_imports(path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & MODULES.keys()


def test_imports_between_project_modules_form_no_cycle():
    graph = {name: project_imports(path, top_level_only=False) for name, path in MODULES.items()}
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


def test_no_module_imports_a_project_module_inside_a_function():
    for name, path in MODULES.items():
        assert project_imports(path, top_level_only=False) == project_imports(
            path, top_level_only=True
        ), f"{name}.py imports a project module inside a function"


def test_nothing_imports_wsgi():
    assert not [name for name, path in MODULES.items() if "wsgi" in project_imports(path, False)]
