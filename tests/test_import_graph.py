"""The package's imports run one way: no module imports itself back through others (an import circle), and nothing
below `cli/` imports `cli` (the command line is the top; a library module that needs it is in the wrong place). The
`__main__.py` of a package (`python -m transformers_qwen_audio.convert`) is an entry point that runs a command: it
stands above `cli`, and nothing imports it.

The graph is read from the source (no import runs): every `import` and `from ... import` of a module, at module level,
inside a function or in its `__main__` block, relative ones resolved, `from package import name` counted as an import
of the submodule `package.name` when there is one.
"""

import ast
import sys
from pathlib import Path

import pytest


PACKAGE = "transformers_qwen_audio"
PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE
CLI = f"{PACKAGE}.cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _statements(tree: ast.Module):
    """Every statement of the module, in functions, classes and blocks too."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module `name` (at `path`) imports."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            # `from base import x`: the submodule base.x where there is one, else a name of base itself.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in modules and target != name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as `[a, b, ..., a]`, or None."""
    state = {}  # module -> "open" while on the current path, "done" once all it reaches is explored
    path = []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def is_cli(module: str) -> bool:
    return module == CLI or module.startswith(CLI + ".")


def test_nothing_below_cli_imports_it():
    graph = import_graph()
    offenders = sorted(
        f"{module} imports {', '.join(sorted(filter(is_cli, targets)))}"
        for module, targets in graph.items()
        if not is_cli(module) and not module.endswith(".__main__") and any(map(is_cli, targets))
    )
    assert not offenders, "; ".join(offenders)
    importers = [module for module, targets in graph.items() if any(target.endswith(".__main__") for target in targets)]
    assert not importers, f"{importers} import a __main__ module"


def test_every_command_has_its_module():
    graph = import_graph()
    commands = {"chat", "transcribe", "convert", "merge_lora", "pretrain", "sft", "evaluate", "serve", "web", "demo"}
    assert {f"{CLI}.{command}" for command in commands | {"common"}} <= graph[CLI]


# The walker itself, on a small made-up package: a circle through a function-level relative import is found, and
# an import of cli from below it, wherever it stands.
@pytest.fixture
def tiny_package(tmp_path, monkeypatch):
    root = tmp_path / "src" / PACKAGE
    (root / "cli").mkdir(parents=True)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_ROOT", root)

    def write(relative, text):
        (root / relative).write_text(text)

    write("__init__.py", "")
    write("cli/__init__.py", "from . import serve\n")
    write("cli/serve.py", "from ..serving import app\n")
    (root / "serving").mkdir()
    write("serving/__init__.py", "")
    write("serving/app.py", "def run():\n    from ..batching import Batcher\n")
    write("batching.py", "Batcher = object\n")
    return write


def test_the_walker_finds_a_circle_through_a_function_level_import(tiny_package):
    assert find_cycle(import_graph()) is None
    tiny_package("batching.py", "def helper():\n    from .serving.app import run\n")
    cycle = find_cycle(import_graph())
    assert cycle is not None and set(cycle) == {f"{PACKAGE}.batching", f"{PACKAGE}.serving.app"}


def test_the_walker_reads_imports_of_cli_in_functions_and_main_blocks(tiny_package):
    tiny_package("batching.py", "def main():\n    from .cli.serve import run\n")
    assert import_graph()[f"{PACKAGE}.batching"] == {f"{CLI}.serve"}
    tiny_package("batching.py", 'if __name__ == "__main__":\n    from .cli import main\n    main()\n')
    assert import_graph()[f"{PACKAGE}.batching"] == {CLI}
