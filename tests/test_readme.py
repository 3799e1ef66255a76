"""The README stays true: its recipe example validates, and its reference names every recipe field."""

from __future__ import annotations

import glob
import re

import pytest
import yaml

from sftforge.recipe import json_schema, load_recipe_text

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_recipe_examples_are_valid():
    """Whole recipes validate as they are; fragments (a model block) validate inside the first whole one."""
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", README, re.DOTALL)]
    assert len(blocks) >= 2 and "name" in blocks[0]
    for block in blocks:
        data = block if "name" in block else {**blocks[0], **block}
        recipe = load_recipe_text(yaml.safe_dump(data), source="README.md")
        assert recipe.name


def leaf_fields(schema: dict, node: dict, prefix: str = "") -> list[str]:
    out = []
    for name, prop in node.get("properties", {}).items():
        ref = prop.get("$ref") or next((a["$ref"] for a in prop.get("anyOf", []) if "$ref" in a), None)
        if ref and "Config" not in ref:
            out += leaf_fields(schema, schema["$defs"][ref.split("/")[-1]], f"{prefix}{name}.")
        elif prop.get("type") == "array" and "$ref" in prop.get("items", {}) and name == "documents":
            out += leaf_fields(schema, schema["$defs"][prop["items"]["$ref"].split("/")[-1]], f"{prefix}{name}[].")
        else:
            out.append(prefix + name)
    return out


def test_recipe_reference_mentions_every_field():
    schema = json_schema()
    reference = README.split("## Recipe reference", 1)[1].split("\n## ", 1)[0]
    missing = []
    for field in leaf_fields(schema, schema):
        parent, _, last = field.rpartition(".")
        shorthand = f"`{last}`" in reference or f"`.{last}`" in reference  # `a.b` / `.c`: siblings in one row
        if f"`{field}`" not in reference and not (parent and f"`{parent}." in reference and shorthand):
            missing.append(field)
    assert not missing, f"README recipe reference lacks: {missing}"


def test_readme_shows_the_two_commands():
    assert "make demo" in README and "make test" in README


def test_operator_reference_names_every_operator_and_field():
    from sftforge.ops import OPERATORS

    section = README.split("### Operators", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`"): line for line in section.splitlines() if line.startswith("| `")}
    missing = []
    for name, cls in OPERATORS.items():
        if name not in rows:
            missing.append(name)
            continue
        for field in cls.Config.model_fields:
            if field not in ("name", "min", "max") and f"`{field}`" not in rows[name]:
                missing.append(f"{name}.{field}")
    assert not missing, f"README operator reference lacks: {missing}"


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "examples" / "recipes").glob("*.yaml")) + sorted((REPO / "benchmarks" / "recipes").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_every_shipped_recipe_is_valid(path):
    from sftforge.recipe import load_recipe

    recipe, _ = load_recipe(path)
    for doc in recipe.sources.documents:
        assert glob.glob(str(recipe.resolve(doc.path))), f"{path.name}: {doc.path} matches nothing"
