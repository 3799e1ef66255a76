"""Existing instruction datasets as a source: the shapes people have (Alpaca, ShareGPT, OpenAI messages, mapped
columns, `datasets` folders), rows that do not fit counted and named, data search, the `import` generator in a
curation run, and the LLaMA-Factory export's pre-flight."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sftforge.errors import SourceError
from sftforge.sources.datasets import Layout, RowProblem, to_example


def example(row: dict, shape: str | None = None, columns: dict | None = None) -> list[dict]:
    return to_example(row, Layout(shape, columns or {}), "line 1").messages  # type: ignore[arg-type]


def test_alpaca_row_with_input_system_and_history():
    row = {
        "instruction": "Translate to French.",
        "input": "Good morning",
        "output": "Bonjour",
        "system": "You translate.",
        "history": [["Hi", "Hello! How can I help?"]],
    }
    assert example(row) == [
        {"role": "system", "content": "You translate."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Translate to French.\nGood morning"},
        {"role": "assistant", "content": "Bonjour"},
    ]


def test_sharegpt_with_a_system_turn_and_openai_messages_with_text_parts():
    share = {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "2+2?"},
            {"from": "gpt", "value": "4"},
        ]
    }
    assert [m["role"] for m in example(share)] == ["system", "user", "assistant"]
    messages = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Name a "}, {"type": "text", "text": "colour."}]},
            {"role": "assistant", "content": "Teal."},
        ]
    }
    assert example(messages)[0]["content"] == "Name a colour."


def test_mapped_columns_read_any_question_answer_table():
    row = {"question": "What is the capital of Peru?", "answer": "Lima", "qid": 17}
    layout = Layout(None, {"instruction": "question", "output": "answer", "id": "qid"})
    got = to_example(row, layout, "line 1")
    assert got.messages[-1]["content"] == "Lima" and got.original_id == "17"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"instruction": ["a", "list"], "output": "x"}, "'instruction' is a list, expected a string"),
        ({"instruction": "Say hi", "output": None}, "'output' is a null, expected a string"),
        ({"instruction": "Say hi", "output": "  "}, "turn 2 (assistant) is empty"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
            "turn 2 is user, expected assistant",
        ),
        ({"messages": [{"role": "user", "content": "a"}]}, "ends with a user turn"),
        (
            {"conversations": [{"from": "human", "value": "a"}, {"from": "function_call", "value": "{}"}]},
            "tool turn",
        ),
        ({"text": "just text"}, "fits no shape"),
    ],
)
def test_rows_that_do_not_fit_say_why(row, reason):
    with pytest.raises(RowProblem, match=re.escape(reason)):
        example(row)


def test_a_row_of_another_shape_in_a_file_is_named_not_guessed():
    layout = Layout("alpaca", {})
    share = {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}
    with pytest.raises(RowProblem, match="a row shaped as sharegpt in a file of alpaca rows"):
        to_example(share, layout, "data.jsonl, line 1")


def test_a_folder_yields_its_data_files_and_datasets_folders_not_their_insides(tmp_path: Path):
    import datasets

    from sftforge.sources.datasets import dataset_files

    (tmp_path / "data" / "more").mkdir(parents=True)
    _write_jsonl(tmp_path / "data" / "a.jsonl", [{"instruction": "x", "output": "y"}])
    _write_jsonl(tmp_path / "data" / "more" / "b.jsonl", [{"instruction": "x", "output": "y"}])
    (tmp_path / "data" / "notes.txt").write_text("not data")
    rows = {"instruction": ["x"], "output": ["y"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "data" / "hf"))
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "data" / "dd"))
    found = [str(p.relative_to(tmp_path / "data")) for p in dataset_files("data", tmp_path)]
    assert found == ["dd", "hf", "a.jsonl", "more/b.jsonl"]


# -- the sources stage and the import generator ------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def _recipe(tmp_path: Path, datasets: list[dict], search: dict, target: int, extra: str = "") -> Path:
    import yaml

    data = {
        "name": "curate",
        "task": {
            "type": "instruction",
            "description": "Questions about cooking pasta and rice",
            "target_count": target,
        },
        "sources": {"datasets": datasets, "search": search},
        "generators": [{"name": "import"}],
        "cleaning": {"filters": [{"name": "format"}], "dedup": [{"name": "exact_dedup", "scope": "user"}]},
        "output": {"formats": ["openai", "alpaca", "llamafactory"]},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data) + extra, encoding="utf-8")
    return path


def _corpus(tmp_path: Path) -> None:
    """Four files of three shapes; eight good rows, four bad ones (two of them in the JSONL)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _write_jsonl(
        tmp_path / "alpaca.jsonl",
        [
            {"id": "a1", "instruction": "How long do I boil dried pasta?", "input": "", "output": "About 10 minutes."},
            {"id": "a2", "instruction": "Name a prime number.", "output": "7"},
            "{not json",
            {"id": "a3", "instruction": ["not", "a string"], "output": "x"},
            {"id": "a4", "instruction": "Should I rinse rice before cooking it?", "output": "Yes, until clear."},
        ],
    )
    _write_jsonl(
        tmp_path / "chats.jsonl",
        [
            {"conversations": [{"from": "human", "value": "What is 3 times 4?"}, {"from": "gpt", "value": "12"}]},
            {"instruction": "Salt the pasta water?", "output": "Yes."},  # another shape: named
            {
                "conversations": [
                    {"from": "human", "value": "How much water for rice?"},
                    {"from": "gpt", "value": "2:1"},
                ]
            },
        ],
    )
    pq.write_table(
        pa.table(
            {
                "question": ["Capital of Chile?", "How do I keep pasta from sticking?"],
                "answer": ["Santiago", "Stir it."],
            }
        ),
        tmp_path / "qa.parquet",
    )
    import datasets

    datasets.Dataset.from_dict(
        {
            "messages": [
                [{"role": "user", "content": "Best rice for risotto?"}, {"role": "assistant", "content": "Arborio."}]
            ]
        }
    ).save_to_disk(str(tmp_path / "hf"))
    _write_jsonl(tmp_path / "broken.jsonl", [{"messages": [{"role": "user", "content": "unanswered"}]}])


def _run(recipe: Path, out: Path):
    from conftest import run_recipe

    return run_recipe(recipe, out)


def test_curation_run_imports_searches_cleans_and_exports(tmp_path: Path, browser):
    from sftforge.figures import SourcesFigures, read_figures
    from sftforge.recipe import load_recipe
    from sftforge.report.render import write_report

    from conftest import open_page

    _corpus(tmp_path)
    datasets = [
        {"path": "alpaca.jsonl"},
        {"path": "chats.jsonl"},
        {"path": "qa.parquet", "columns": {"instruction": "question", "output": "answer"}},
        {"path": "hf"},
        {"path": "broken.jsonl"},
    ]
    run = _run(_recipe(tmp_path, datasets, {"method": "hybrid"}, target=4), tmp_path / "run")
    counts = run.stage_info("sources").counts
    assert counts["imported"] == 8 and counts["rows_skipped"] == 4
    figures = read_figures(run, SourcesFigures)
    reasons = " | ".join(f"{r.where}: {r.reason}" for r in figures.datasets.skipped_rows)
    assert "alpaca.jsonl, line 3: not valid JSON" in reasons
    assert "alpaca.jsonl, line 4: 'instruction' is a list, expected a string" in reasons
    assert "chats.jsonl, line 2: a row shaped as alpaca in a file of sharegpt rows" in reasons
    assert "broken.jsonl, line 1: ends with a user turn" in reasons
    # data search: the four cooking examples outrank the arithmetic and the capitals
    records = run.read_records("generate")
    assert len(records) == 4
    assert all(any(w in r.text_of("user").lower() for w in ("pasta", "rice")) for r in records)
    ref = next(r for r in records if "boil" in r.text_of("user")).source[0]
    assert (ref.kind, ref.id, ref.doc_id, ref.row) == ("row", "a1", "alpaca.jsonl", 1)
    # exported for LLaMA-Factory and TRL
    folder = run.stage_dir("export") / "llamafactory"
    info = json.loads((folder / "dataset_info.json").read_text())
    assert set(info) == {"curate_alpaca", "curate_sharegpt"}
    rows = [json.loads(x) for x in (folder / "sharegpt.jsonl").read_text().splitlines()]
    assert len(rows) == len(run.read_records("clean")) == 4 and rows[0]["conversations"][0]["from"] == "human"
    # the report names what was not used
    page, errors = open_page(browser, write_report(run, load_recipe(tmp_path / "recipe.yaml")[0]).as_uri())
    text = page.inner_text("#overview-body")
    assert "Inputs not used" in text and "alpaca.jsonl, line 4" in text and "ends with a user turn" in text
    assert not errors
    page.close()


def test_a_mapping_naming_a_missing_column_stops_early_with_a_suggestion(tmp_path: Path):
    _corpus(tmp_path)
    mapping = [{"path": "qa.parquet", "columns": {"instruction": "questions", "output": "answer"}}]
    recipe = _recipe(tmp_path, mapping, {}, 2)
    with pytest.raises(SourceError, match=r"datasets\[0\].columns.instruction: field 'questions'.*mean 'question'"):
        _run(recipe, tmp_path / "run")


def test_a_file_with_no_usable_row_stops_with_the_first_reason(tmp_path: Path):
    _corpus(tmp_path)
    with pytest.raises(SourceError, match="no row could be imported.*ends with a user turn"):
        _run(_recipe(tmp_path, [{"path": "broken.jsonl"}], {"method": "bm25"}, 2), tmp_path / "run")


def test_llamafactory_preflight_leaves_out_what_its_converter_drops(tmp_path: Path):
    from sftforge.export.formats import write_all
    from sftforge.sample import Record

    good = Record("g", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "qa", "en")
    multi = Record(
        "m",
        [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "1?"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "2?"},
            {"role": "assistant", "content": "two"},
        ],
        "dialogue",
        "en",
    )
    bad = Record("b", [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"}], "qa", "en")
    files = write_all([good, multi, bad], tmp_path, ["llamafactory"], "demo")
    assert files["llamafactory"]["records"] == 2 and files["llamafactory"]["left_out"] == 1
    alpaca = [json.loads(x) for x in (tmp_path / "llamafactory" / "alpaca.jsonl").read_text().splitlines()]
    assert alpaca[1] == {"instruction": "2?", "input": "", "output": "two", "system": "S", "history": [["1?", "one"]]}


# -- the example recipes, as shipped ----------------------------------------------------------------------------


def test_the_shipped_example_data_is_what_its_scripts_build(tmp_path: Path):
    """The Alpaca slice is rebuilt byte for byte; the PDF too (the DOCX embeds its build time, so its text is
    compared)."""
    import runpy
    import shutil

    from conftest import EXAMPLES

    shutil.copytree(EXAMPLES / "data" / "seeds", tmp_path / "seeds")
    for folder in ("instruction_slice", "home_manuals"):
        shutil.copytree(EXAMPLES / "data" / folder, tmp_path / folder)
        runpy.run_path(str(tmp_path / folder / "build.py"), run_name="__main__")
    shipped = EXAMPLES / "data"
    for name in ("instruction_slice/self_instruct_alpaca.jsonl", "home_manuals/ventilator_manual.pdf"):
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name
    import docx

    def text(p: Path) -> list[str]:
        return [para.text for para in docx.Document(str(p)).paragraphs]

    assert text(tmp_path / "home_manuals/ventilator_service.docx") == text(
        shipped / "home_manuals/ventilator_service.docx"
    )


@pytest.mark.slow
def test_curation_example_runs_to_a_fine_tuned_model_and_trainer_ready_files(tmp_path: Path):
    """examples/recipes/curate_instructions.yaml as shipped: import, search, clean, select, train (LoRA on the
    bundled model), evaluate, export; no LLM generation at all."""
    from conftest import EXAMPLES

    run = _run(EXAMPLES / "recipes" / "curate_instructions.yaml", tmp_path / "run")
    assert run.stage_info("generate").counts["records"] == 60
    assert run.stage_info("train").counts["steps"] == 8
    folder = run.stage_dir("export")
    info = json.loads((folder / "llamafactory" / "dataset_info.json").read_text())
    assert info["curate_instructions_alpaca"]["file_name"] == "alpaca.jsonl"
    # the data search put writing tasks first: 50 of the 175 rows (29%) name one of these; most kept ones do
    users = [
        json.loads(x)["messages"][0]["content"].lower() for x in (folder / "openai.jsonl").read_text().splitlines()
    ]
    writing = ("write", "rewrite", "email", "story", "summar", "translat", "correct")
    assert sum(any(w in u for w in writing) for u in users) > 0.5 * len(users)


@pytest.mark.slow
def test_documents_example_cites_pdf_pages_and_docx_text(tmp_path: Path):
    """examples/recipes/manuals_qa.yaml as shipped, on the bundled model: records from both files, PDF records
    citing their page."""
    from conftest import EXAMPLES

    run = _run(EXAMPLES / "recipes" / "manuals_qa.yaml", tmp_path / "run")
    records = run.read_records("clean")
    docs = {r.source[0].doc_id for r in records}
    assert docs == {"ventilator_manual.pdf", "ventilator_service.docx"}
    pdf = [r for r in records if r.source[0].doc_id == "ventilator_manual.pdf"]
    assert pdf and all(r.source[0].page in (1, 2, 3) for r in pdf)


def test_exported_messages_train_with_trl_and_llamafactory_files_load(tiny_dir: Path, tmp_path: Path):
    """The `openai` file is what TRL reads: `datasets.load_dataset("json")`, then TRL's SFTTrainer tokenises it
    with the chat template and takes two training steps. The LLaMA-Factory files load as the
    `json` datasets its `dataset_info.json` names."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    from sftforge.export.formats import write_all
    from sftforge.sample import Record

    records = [
        Record(
            f"r{i}",
            [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"{2 * i}."},
            ],
            "qa",
            "en",
        )
        for i in range(8)
    ]
    write_all(records, tmp_path, ["openai", "llamafactory"], "sums")
    data = datasets.load_dataset("json", data_files=str(tmp_path / "openai.jsonl"), split="train")
    assert data.column_names == ["messages"] and len(data) == 8
    config = SFTConfig(
        output_dir=str(tmp_path / "trl"),
        max_steps=2,
        per_device_train_batch_size=4,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        max_length=128,
    )
    trainer = SFTTrainer(model=str(tiny_dir), args=config, train_dataset=data)
    result = trainer.train()
    assert result.global_step == 2 and result.training_loss > 0
    info = json.loads((tmp_path / "llamafactory" / "dataset_info.json").read_text())
    for entry in info.values():
        rows = datasets.load_dataset(
            "json", data_files=str(tmp_path / "llamafactory" / entry["file_name"]), split="train"
        )
        assert set(entry["columns"].values()) <= set(rows.column_names) and len(rows) == 8


# -- augmenting what was found ---------------------------------------------------------------------------------


def test_paraphrase_keeps_rewordings_that_keep_the_meaning_and_names_the_parent():
    """The driver on scripted rewordings (the real MiniLM judges them): a faithful one becomes a record with the
    member's answer and the member as parent; a copy and a drifted one are rejected with their figure."""
    from sftforge.config import Sampling
    from sftforge.generate.base import Answer
    from sftforge.generate.generators.paraphrase import ParaphraseConfig, ParaphraseDriver
    from sftforge.generate.records import InstructionRecords
    from sftforge.llm.base import ChatRequest, Completion, SamplingParams
    from sftforge.sources.seeds import SeedTask

    pool = [
        SeedTask("r1", "How long should I boil dried spaghetti?", (("", "About ten minutes."),), False, "record"),
        SeedTask("r2", "Name three rivers in France.", (("", "Seine, Loire, Rhone."),), False, "record"),
        SeedTask("r3", "Explain what a prime number is.", (("", "A number with two divisors."),), False, "record"),
    ]
    rewordings = {
        "r1": "For how many minutes do you cook dry spaghetti in boiling water?",
        "r2": "Name three rivers in France, please.",
        "r3": "Write a poem about autumn leaves.",
    }

    def ask(step, items):
        req = ChatRequest.of("x", [{"role": "user", "content": "x"}], SamplingParams())
        return [Answer(it, 0, Completion(req, "raw", "stop", 1, 1), rewordings[it.payload.id]) for it in items]

    records = InstructionRecords("paraphrase", "instruction", "en", "scripted", None, Sampling())
    driver = ParaphraseDriver(ParaphraseConfig(), pool, "en", records)
    waves = list(driver.run(ask, count=3, seed=0))
    made = [r for w in waves for r in w.records]
    rejected = {r.record.lineage.parents[0]: r.reason for w in waves for r in w.rejected}
    assert [r.lineage.parents for r in made] == [["r1"]]
    assert made[0].messages[-1]["content"] == "About ten minutes." and made[0].source[0].kind == "record"
    assert rejected["r2"].startswith("hardly reworded: ROUGE-L")
    assert rejected["r3"].startswith("the meaning drifted: MiniLM cosine")


@pytest.mark.slow
def test_found_examples_feed_paraphrase_and_evol_instruct_with_parents(tmp_path: Path):
    """On the bundled model: import the most relevant examples, reword some and evolve others from the same
    found pool; every generated record names an imported example (or its evolution) as its parent."""
    import yaml

    from conftest import EXAMPLES

    data = {
        "name": "augment",
        "task": {
            "type": "instruction",
            "description": "Writing help: rewrite or correct a sentence.",
            "target_count": 6,
        },
        "sources": {
            "datasets": [{"path": str(EXAMPLES / "data/instruction_slice/self_instruct_alpaca.jsonl")}],
            "search": {"method": "bm25"},
        },
        "generation": {"sampling": {"temperature": 0.7, "max_tokens": 96, "seed": 3}, "max_attempts": 2},
        "generators": [
            {"name": "import", "share": 1},
            {"name": "paraphrase", "share": 1, "pool_size": 12, "min_similarity": 0.6},
            {"name": "evol_instruct", "share": 1, "pool": "datasets", "pool_size": 12, "epochs": 1},
        ],
        "output": {"formats": ["openai"]},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    run = _run(path, tmp_path / "run")
    import pyarrow.parquet as pq

    imported = set(pq.read_table(run.stage_dir("sources") / "datasets" / "imported.parquet").column("id").to_pylist())
    records = run.read_records("generate")
    by = {g: [r for r in records if r.lineage.generator == g] for g in ("import", "paraphrase", "evol_instruct")}
    assert by["import"] and by["paraphrase"], {g: len(v) for g, v in by.items()}
    made = {r.id for r in records}
    for r in by["paraphrase"] + by["evol_instruct"]:
        assert r.lineage.parents and all(p in imported or p in made for p in r.lineage.parents)
        assert r.source[0].kind == "record" and r.source[0].id in imported
