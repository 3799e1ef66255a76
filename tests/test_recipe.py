"""Recipe validation: every mistake names the field, its line and what is allowed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sftforge.errors import RecipeError
from sftforge.recipe import load_recipe, load_recipe_text

from conftest import EXAMPLES, write

GOOD = """\
name: demo
task:
  type: qa
  description: questions about style
sources:
  documents:
    - path: docs
"""


def test_example_recipes_are_valid():
    for path in sorted((EXAMPLES / "recipes").glob("*.yaml")):
        recipe, _ = load_recipe(path)
        assert recipe.name == path.stem
        for doc in recipe.sources.documents:
            assert recipe.resolve(doc.path.split("*")[0]).exists(), f"{path}: {doc.path} does not exist"


def test_defaults_fill_in():
    r = load_recipe_text(GOOD)
    assert r.task.language == "en"
    assert r.task.qa_mode == "extractive"
    assert r.generation.model.path == "bundled"
    assert r.cleaning.preset == "auto" and r.cleaning.filters == []
    assert [d.name for d in r.cleaning.dedup] == ["exact_dedup"]
    assert r.task.include_context is True


def test_unknown_field_names_line_allowed_fields_and_suggestion():
    text = GOOD.replace(
        "  description: questions about style\n", "  description: questions about style\n  langauge: en\n"
    )
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    msg = str(err.value)
    assert "r.yaml, line 5" in msg
    assert "task.langauge" in msg
    assert "did you mean 'language'" in msg
    assert "allowed fields:" in msg and "target_count" in msg


def test_bad_literal_lists_allowed_values_with_line():
    text = GOOD.replace("type: qa", "type: quiz")
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    msg = str(err.value)
    assert "r.yaml, line 3: task.type" in msg
    listed = msg.split("Input should be ")[1]
    for kind in ("qa", "summarization", "exercise", "kg_qa", "multi_doc_qa", "instruction", "dialogue"):
        assert f"'{kind}'" in listed
    assert "quiz" in msg


def test_several_problems_in_one_error():
    text = GOOD.replace("type: qa", "type: quiz") + "generation:\n  sampling:\n    temperature: 5\n"
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    msg = str(err.value)
    assert "2 problems" in msg
    assert "line 10: generation.sampling.temperature" in msg
    assert "less than or equal to 2" in msg


def test_unknown_operator_lists_registered_ones():
    text = GOOD + "cleaning:\n  filters:\n    - name: lenght\n      min: 3\n"
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    msg = str(err.value)
    assert "line 10" in msg
    assert "unknown operator 'lenght'" in msg
    assert "length" in msg and "format" in msg


def test_operator_field_error_points_into_the_operator():
    text = GOOD + "cleaning:\n  filters:\n    - name: length\n      role: bot\n"
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    msg = str(err.value)
    assert "line 11: cleaning.filters.0.role" in msg
    assert "'user', 'assistant', 'system' or 'all'" in msg


def test_a_field_named_like_an_operator_is_still_named_in_the_error():
    """`format` is an operator's name and a dataset entry's field: in the entry, the error names the field; in
    the filters list, the operator's tag is left out of the path."""
    text = GOOD.replace("sources:\n", "sources:\n  datasets: [{path: d.jsonl, format: alpacca}]\n", 1)
    text += "cleaning:\n  filters:\n    - name: format\n      role: bot\n"
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    msg = str(err.value)
    assert "sources.datasets.0.format: Input should be 'auto', 'alpaca', 'sharegpt' or 'messages'" in msg
    assert "cleaning.filters.0.role" in msg


def test_missing_required_field():
    text = GOOD.replace("  description: questions about style\n", "")
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    assert "task.description: required field is missing" in str(err.value)


def test_cross_field_check():
    text = GOOD + "  chunking:\n    max_tokens: 64\n    overlap_tokens: 64\n"
    with pytest.raises(RecipeError) as err:
        load_recipe_text(text, source="r.yaml")
    assert "overlap_tokens (64) must be less than max_tokens (64)" in str(err.value)


def test_the_end_of_turn_gate_needs_the_feature_it_reads():
    """A gate on a feature the run never computes would pass every record without a word: it is an error."""
    gated = GOOD + "selection:\n  strategy: deita\n  max_end_loss: 8\n"
    with pytest.raises(RecipeError) as err:
        load_recipe_text(gated, source="r.yaml")
    assert "add `- name: end_loss` to `features`" in str(err.value)
    assert load_recipe_text(gated + "features:\n  - name: end_loss\n").selection.max_end_loss == 8
    as_filter = gated + "cleaning:\n  filters:\n    - name: end_loss\n      max: 20\n"
    assert load_recipe_text(as_filter).selection.max_end_loss == 8


def test_malformed_yaml_names_line():
    with pytest.raises(RecipeError) as err:
        load_recipe_text("name: x\ntask: [unclosed\nsources: {}\n", source="r.yaml")
    assert "r.yaml, line" in str(err.value) and "malformed YAML" in str(err.value)


def test_not_a_mapping():
    with pytest.raises(RecipeError, match="a recipe is a YAML mapping"):
        load_recipe_text("- just\n- a list\n")


def test_missing_file(tmp_path: Path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_relative_paths_resolve_from_the_recipe_folder(tmp_path: Path):
    path = write(tmp_path / "sub" / "r.yaml", GOOD)
    recipe, _ = load_recipe(path)
    assert recipe.resolve("docs") == (tmp_path / "sub" / "docs").resolve()


def test_cli_reports_recipe_errors_without_traceback(tmp_path: Path):
    path = write(tmp_path / "bad.yaml", GOOD.replace("type: qa", "type: quiz"))
    proc = subprocess.run([sys.executable, "-m", "sftforge.cli", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "task.type" in proc.stderr and "line 3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_schema_command_prints_json_schema():
    proc = subprocess.run([sys.executable, "-m", "sftforge.cli", "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(proc.stdout)
    assert schema["title"] == "sftforge recipe"
    assert {"name", "task", "sources", "generation", "cleaning", "output"} <= set(schema["properties"])
    assert "base_dir" not in json.dumps(schema)
    task = schema["$defs"]["Task"]["properties"]
    assert set(task["type"]["enum"]) == {
        "qa",
        "summarization",
        "exercise",
        "kg_qa",
        "multi_doc_qa",
        "instruction",
        "dialogue",
    }
    # every registered generator is a choice of `generators`, with its own fields
    entries = {ref["$ref"].split("/")[-1] for ref in schema["properties"]["generators"]["items"]["oneOf"]}
    assert {"GroundedConfig", "KGWalkConfig", "SelfInstructConfig", "DialogueConfig"} <= entries
    assert "in_context" in schema["$defs"]["SelfInstructConfig"]["properties"]
