"""The package's modules import one another without a circle, counting the
imports inside functions (a lazy import hides a circle, it does not remove
it)."""

import ast

import pytest
from helpers import ROOT

pytestmark = pytest.mark.backend_independent  # see conftest.py


def _modules():
    """{dotted name: path} of every module of the package."""
    modules = {}
    for path in (ROOT / "keras_pixelcnn").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph():
    """{module: the package's modules it imports anywhere in its code}."""
    modules = _modules()

    def owner(name):  # a name imported from a module: that module
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {owner(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets |= {owner(f"{node.module}.{a.name}") for a in node.names}
        graph[name] = {t for t in targets if t.startswith("keras_pixelcnn")} - {name}
    return graph


def find_cycle(graph):
    """One import circle as a list of modules, or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_the_finder_sees_a_circle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    tree = import_graph()
    assert "keras_pixelcnn.training.distribution" in tree["keras_pixelcnn.training.config"]


def test_no_module_of_the_package_imports_itself_back():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)
