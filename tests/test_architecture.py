"""The house plan, checked by reading the code: layers only point down, pure libraries stay pure, engines know
operators only through the operator contract, and every kind of part is found through its registry.

Imports are read from the source text (module-level and inside functions alike, since an import hidden in a function
is still a dependency); imports under `if TYPE_CHECKING:` are type annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "sftforge"

# Lowest first. A module may import modules of its own layer and of the layers below, never above. The longest
# matching prefix decides a module's layer (so `sftforge.engine.base` sits below `sftforge.engine`).
LAYERS: list[list[str]] = [
    ["sftforge", "sftforge.errors", "sftforge.lib", "sftforge.sample", "sftforge.progress"],
    ["sftforge.config", "sftforge.rows", "sftforge.run", "sftforge.llm", "sftforge.kg", "sftforge.gazetteer"],
    [
        "sftforge.sources",
        "sftforge.storage",
        "sftforge.figures",
        "sftforge.engine.base",
        "sftforge.engine.local",
        "sftforge.engine.ray_engine",
    ],
    ["sftforge.sources.kinds", "sftforge.ops", "sftforge.generate", "sftforge.select", "sftforge.train"],
    ["sftforge.recipe"],
    ["sftforge.engine", "sftforge.export", "sftforge.review.decisions", "sftforge.rounds", "sftforge.summary"],
    ["sftforge.stages"],
    ["sftforge.report", "sftforge.review"],
    ["sftforge.cli"],
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, layer = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), i
    if layer < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return layer


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported sftforge module, line) for every import outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            typing_only.update(n.lineno for n in ast.walk(node) if hasattr(n, "lineno"))
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("sftforge")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sftforge"):
            for a in node.names:  # `from sftforge.x import y` imports the submodule y when there is one
                sub = f"{node.module}.{a.name}"
                is_module = (SRC.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    SRC.parent / Path(*sub.split(".")) / "__init__.py"
                ).exists()
                out.append((sub if is_module else node.module, node.lineno))
    return out


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    path, own = MODULES[module], layer_of(module)
    upward = [(target, line) for target, line in imports(path) if layer_of(target) > own]
    assert not upward, "\n".join(
        f"{path}:{line}: {module} (layer {own}) imports {target} (layer {layer_of(target)})" for target, line in upward
    )


def test_pure_libraries_import_only_libraries():
    for module, path in MODULES.items():
        if module.startswith("sftforge.lib"):
            others = [(t, line) for t, line in imports(path) if not t.startswith(("sftforge.lib", "sftforge.errors"))]
            assert not others, f"{path}: a pure library imports {others}"


def test_engines_know_operators_only_through_the_contract():
    contract = ("sftforge.ops", "sftforge.ops.base", "sftforge.ops.registry")
    for module, path in MODULES.items():
        if module.startswith("sftforge.engine"):
            concrete = [(t, line) for t, line in imports(path) if t.startswith("sftforge.ops") and t not in contract]
            assert not concrete, f"{path}: an engine names operator modules {concrete}"


def test_no_stage_switches_on_a_task_type_or_generator_name():
    for module, path in MODULES.items():
        if module.startswith("sftforge.stages"):
            text = path.read_text(encoding="utf-8")
            for name in ("task.type ==", "task.type in", '"kg_qa"', '"instruction"', '"self_instruct"', '"grounded"'):
                assert name not in text, f"{path}: the stage names {name}; ask the registry instead"


def test_the_registries_find_every_part():
    from sftforge.generate.base import GENERATORS
    from sftforge.ops.base import OPERATORS
    from sftforge.recipe import TASK_TYPES
    from sftforge.sources.kinds.base import SOURCES

    generator_files = {p.stem for p in (SRC / "generate" / "generators").glob("*.py") if p.stem != "__init__"}
    assert generator_files == {cls.__module__.rsplit(".", 1)[1] for cls in GENERATORS.values()}
    assert set(TASK_TYPES) == {t for cls in GENERATORS.values() for t in cls.tasks}
    assert set(SOURCES) == {p.stem for p in (SRC / "sources" / "kinds").glob("*.py")} - {"__init__", "base"}
    operator_files = {p.stem for p in (SRC / "ops").glob("*.py")} - {"__init__", "base", "registry", "presets"}
    assert operator_files == {cls.__module__.rsplit(".", 1)[1] for cls in OPERATORS.values()}


def test_the_typed_view_of_sources_matches_the_registry():
    """recipe.py spells out `Sources` for type checkers; the run-time model is built from the source kinds."""
    from sftforge.recipe import Sources

    tree = ast.parse((SRC / "recipe.py").read_text(encoding="utf-8"))
    stub = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "Sources")
    spelled = [n.target.id for n in stub.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    assert spelled == list(Sources.model_fields)
