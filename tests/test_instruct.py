"""Instruction generators: every filter and rule on hand-made cases, the drivers' logic on a scripted LLM, seed
files, recipe validation, the pre-query template, and the diversity figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftforge.config import Constraints, Sampling
from sftforge.errors import ModelError, RecipeError, SourceError
from sftforge.generate.base import Answer, WorkItem
from sftforge.generate.generators.dialogue import Conversation, UserStep
from sftforge.generate.generators.evol_instruct import elimination
from sftforge.generate.generators.magpie import QueryStep
from sftforge.generate.generators.self_instruct import (
    ClassifyStep,
    InstanceStep,
    SelfInstructConfig,
    SelfInstructDriver,
    instruction_problem,
    parse_task_list,
)
from sftforge.generate.parsing import ParseError
from sftforge.generate.records import AnswerStep, InstructionRecords, answer_problem
from sftforge.lib.diversity import distinct_n, diversity, mean_pairwise_rouge_l
from sftforge.llm.base import ChatRequest, Completion, SamplingParams, render_pre_query
from sftforge.llm.llamacpp import CHATML, ChatTemplate
from sftforge.recipe import load_recipe_text
from sftforge.sources.chunking import Passage
from sftforge.sources.seeds import SeedTask, load_seeds
from sftforge.stages.generate import shares

# -- Self-Instruct filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Sort them.", "too short"),
        ("Describe " + "very " * 150 + "long things.", "too long"),
        ("Draw a picture of a cat on a mat.", "mentions 'draw'"),
        ("Summarise the attached file for the team.", "mentions 'file'"),
        ("Describe the plot of Hamlet in three sentences.", "mentions 'plot'"),
        ("Write a program that sorts a list of numbers.", "write a program"),
        ("- List three fruits that are red.", "punctuation"),
        ("Écris une phrase sur le chat noir.", "non-English"),
    ],
)
def test_self_instruct_filters_reject(text, reason):
    problem = instruction_problem(text, "en", 4, 150)
    assert problem is not None and reason.lower() in problem.lower()


def test_self_instruct_filters_keep_a_good_instruction_and_use_whole_words():
    assert instruction_problem("Explain how a graphics card renders a frame.", "en", 4, 150) is None  # graph-ics
    assert instruction_problem("List three ways to save water at home.", "en", 4, 150) is None


def test_self_instruct_filters_in_chinese_count_characters():
    assert instruction_problem("请解释一下光合作用的过程。", "zh", 4, 150) is None
    assert "too short" in instruction_problem("解释。", "zh", 4, 150)
    assert "图片" in instruction_problem("根据这张图片写一段描述。", "zh", 4, 150)
    assert "not in Chinese" in instruction_problem("Explain photosynthesis to a child.", "zh", 4, 150)


def test_task_list_continuation_is_split_into_tasks():
    out = " Name three rivers in Asia.\nTask 10: Translate the sentence into French.\n\nTask 11:  \nTask 12: Rate this review."
    assert parse_task_list(out) == [
        "Name three rivers in Asia.",
        "Translate the sentence into French.",
        "Rate this review.",
    ]
    assert parse_task_list("改写这句话，使它更正式。\n任务10：给出三个成语。") == [
        "改写这句话，使它更正式。",
        "给出三个成语。",
    ]


def test_classification_answer_is_parsed():
    step = ClassifyStep("en", [])
    item = WorkItem("k", "Is this review positive?")
    assert step.parse(item, " Yes") is True
    assert step.parse(item, "No, it is open-ended.") is False
    assert step.parse(item, "是") is True and step.parse(item, "否") is False
    with pytest.raises(ParseError):
        step.parse(item, "Maybe")


def test_instances_input_first_and_output_first():
    examples = [("Give the capital.", "France", "Paris")]
    step = InstanceStep("en", examples, labels_first=False, max_chars=1500)
    item = WorkItem("k", "Give an antonym of the word.")
    inst = step.parse(item, " happy\nOutput: sad\n\nTask: Next task\nInput: x\nOutput: y")[0]
    assert (inst.input, inst.output) == ("happy", "sad")
    assert step.parse(item, " none\nOutput: Cold is the opposite of hot.")[0].input == ""
    with pytest.raises(ParseError, match="no output"):
        step.parse(item, " happy\n")
    with pytest.raises(ParseError, match="copies an example"):
        step.parse(item, " Germany\nOutput: Paris")
    labels = InstanceStep("en", [("Is it spam?", "Win money now", "Spam")], labels_first=True, max_chars=1500)
    inst = labels.parse(WorkItem("k", "Classify the sentiment."), " Positive\nInput: I loved this film.")[0]
    assert (inst.input, inst.output) == ("I loved this film.", "Positive")
    same_label = labels.parse(WorkItem("k", "Is the message spam?"), " Spam\nInput: Claim your prize today!")[0]
    assert same_label.output == "Spam"  # a label shared with the example is fine: labels come from a small set
    with pytest.raises(ParseError, match="needs an input"):
        labels.parse(WorkItem("k", "Classify the sentiment."), " Positive\nInput: none")


# -- answers, Evol-Instruct elimination, Magpie, dialogue ---------------------------------------------------------


def test_answer_rules():
    assert "empty" in answer_problem("  ...  ", 100)
    assert "stop words" in answer_problem("It is what it is.", 100)
    assert "apology" in answer_problem("Sorry, I cannot help with that.", 100)
    assert answer_problem("Sorry for the wait: " + "here are the steps to follow carefully " * 12, 1000) is None
    assert "longer than" in answer_problem("Paris is the capital. " * 10, 50)
    assert "apology" in answer_problem("抱歉，我无法回答这个问题。", 100)
    assert answer_problem("巴黎是法国的首都。", 100) is None
    with pytest.raises(ParseError):
        AnswerStep("x", "en", 100).parse(WorkItem("k", "q"), "Sorry, I can't.")


def test_evol_elimination_rules():
    parent = "Explain how vaccines work."
    assert "scaffolding" in elimination(parent, "#Rewritten Prompt#: Explain how vaccines work in detail.")
    assert "scaffolding" in elimination(parent, "The given prompt asks about vaccines and immunity.")
    assert "no information gain" in elimination(parent, "Explain how the vaccines work!")
    assert elimination(parent, "Explain how mRNA vaccines train the immune system, in three steps.") is None
    assert "no information gain" in elimination("解释疫苗的原理。", "解释疫苗的原理！")
    assert elimination("解释疫苗的原理。", "用三个步骤解释mRNA疫苗如何训练免疫系统。") is None


def test_magpie_query_rules():
    step = QueryStep("en", None, Constraints())
    item = WorkItem("k", None)
    assert step.parse(item, " How do I bake bread without yeast? ") == "How do I bake bread without yeast?"
    with pytest.raises(ParseError, match="cut off"):
        step.parse(item, "I want to learn how to bake bread and I was wondering whether")
    with pytest.raises(ParseError, match="assistant reply"):
        step.parse(item, "Sure! Here is a recipe for bread.")
    with pytest.raises(ParseError, match="not in English"):
        step.parse(item, "如何在没有酵母的情况下烤面包？")
    with pytest.raises(ParseError, match="not in Chinese"):
        QueryStep("zh", None, Constraints()).parse(item, "How do I bake bread?")


def test_dialogue_user_turn_rules():
    step = UserStep("en", Constraints())
    passage = "Error E2 means the main brush is stuck. Turn the robot over, remove the brush and free it of hair."
    conv = Conversation(
        "d",
        Passage("c", "doc", 0, len(passage), passage),
        "a customer",
        goal="fix the error",
        turns=[("user", "My vacuum shows error E2, what does it mean?"), ("assistant", "E2 means the brush is stuck.")],
    )
    item = WorkItem("k", conv)
    assert step.parse(item, "DONE") is None
    assert step.parse(item, "Done.") is None
    assert step.parse(item, "You: How do I free the brush?") == "How do I free the brush?"
    with pytest.raises(ParseError, match="repeats"):
        step.parse(item, "My vacuum shows error E2, what does it mean?")
    with pytest.raises(ParseError, match="not about the documentation"):
        step.parse(item, "Can you recommend a good pizza place nearby?")
    with pytest.raises(ParseError, match="echoes the prompt"):
        step.parse(item, "Here is my next message about the stuck brush.")


# -- the Self-Instruct driver on a scripted LLM -------------------------------------------------------------------


def _answer(item: WorkItem, value, error: str | None = None) -> Answer:
    req = ChatRequest.of(item.key, [{"role": "user", "content": "x"}], SamplingParams())
    return Answer(item, 0, Completion(req, "raw", "stop", 1, 1), value, error)


def test_self_instruct_pool_grows_and_near_copies_are_rejected():
    seeds = [
        SeedTask(f"s{i}", text, (("", "out"),), i == 0)
        for i, text in enumerate(
            [
                "Is this review positive or negative?",
                "Write a haiku about the sea.",
                "Explain gravity to a child.",
                "List three uses of salt.",
                "Give a synonym for happy.",
                "Describe your ideal weekend.",
                "Name a famous painter.",
                "Suggest a name for a cat.",
            ]
        )
    ]
    cfg = SelfInstructConfig(name="self_instruct", in_context=4, from_seeds=2, batch=2, instances=1)
    records = InstructionRecords("self_instruct", "instruction", "en", "fake", None, Sampling())
    driver = SelfInstructDriver(cfg, seeds, "en", records, 1500)
    asked: list[tuple[str, list[WorkItem]]] = []
    proposals = iter(
        [
            ["Write a haiku about the sea.", "Translate this sentence into German.", "Draw a map of your town."],
            ["Write a haiku about the ocean waves.", "Classify the email as spam or not spam."],
            ["Recommend a book for a long flight.", "Write a limerick about a teapot."],
            ["Explain why the sky is blue.", "Count the vowels in the word."],
        ]
    )

    def ask(step, items):
        asked.append((type(step).__name__, items))
        if type(step).__name__ == "ProposeStep":
            return [_answer(it, next(proposals)) for it in items]
        if type(step).__name__ == "ClassifyStep":
            return [_answer(it, "Classify" in it.payload) for it in items]
        from sftforge.generate.generators.self_instruct import Instance

        return [
            _answer(it, [Instance("an input" if step.labels_first else "", "an output for " + it.payload[:10])])
            for it in items
        ]

    waves = list(driver.run(ask, count=5, seed=0))
    made = [r.text_of("user") for w in waves for r in w.records]
    reasons = [rj.reason for w in waves for rj in w.rejected]
    assert len(made) == 5
    assert any("ROUGE-L" in r for r in reasons)  # the exact seed, and "... the ocean waves" once the sea haiku is in
    assert any("mentions 'draw'" in r for r in reasons)
    # the second wave's prompts show machine-made instructions (the pool grew)
    second = [it for name, items in asked if name == "ProposeStep" for it in items][2:]
    assert any("Translate this sentence into German." in it.payload for it in second)
    # classification tasks are generated output first, the rest input first
    classify = [u for u in made if u.startswith("Classify")]
    assert classify and all(u.endswith("an input") for u in classify)  # output first: the label's input
    assert all(u == u.split("\n\n")[0] for u in made if not u.startswith("Classify"))  # input first, no input here
    assert driver.figures["classification"] == 1


# -- seeds, recipe, shares, pre-query, diversity ---------------------------------------------------------------


def test_seed_files(tmp_path: Path):
    good = tmp_path / "seeds.jsonl"
    good.write_text(
        json.dumps(
            {
                "id": "a",
                "instruction": "Say hi.",
                "instances": [{"input": "", "output": "Hi"}],
                "is_classification": False,
            }
        )
        + "\n\n"
        + json.dumps({"instruction": "Add 2 and 3.", "output": "5"})
        + "\n"
    )
    seeds = load_seeds(good)
    assert [s.id for s in seeds] == ["a", "line3"] and seeds[1].instances == (("", "5"),)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok"}\n{not json}\n')
    with pytest.raises(SourceError, match=r"bad.jsonl, line 2: not valid JSON"):
        load_seeds(bad)
    bad.write_text('{"id": "x", "instruction": "a"}\n{"id": "x", "instruction": "b"}\n')
    with pytest.raises(SourceError, match="line 2: seed id 'x' is used twice"):
        load_seeds(bad)
    bad.write_text('{"input": "a"}\n')
    with pytest.raises(SourceError, match="line 1: the seed task has no 'instruction'"):
        load_seeds(bad)
    bad.write_text(
        '{"instruction": "Is it spam?", "instances": [{"input": "x", "output": "no"}], "is_classification": "false"}\n'
    )
    with pytest.raises(SourceError, match="line 1: 'is_classification' must be true or false"):
        load_seeds(bad)
    bad.write_text('{"instruction": "Say hi.", "instances": ["hi"]}\n')
    with pytest.raises(SourceError, match=r"line 1: instances\[0\] must be an object"):
        load_seeds(bad)
    bad.write_text('{"instruction": "Say hi.", "instances": [{"input": "x"}]}\n')
    with pytest.raises(SourceError, match="line 1: an instance has no 'output'"):
        load_seeds(bad)


BASE = "name: x\ntask: {type: %s, description: abcd}\nsources: %s\n"


@pytest.mark.parametrize(
    "text, message",
    [
        (BASE % ("instruction", "{}"), "needs generators"),
        (BASE % ("instruction", "{}") + "generators: [{name: evol_instruct}]", "add sources.seeds"),
        (BASE % ("instruction", "{}") + "generators: [{name: dialogue}]", "dialogue"),
        (BASE % ("instruction", "{}") + "generators: [{name: magpie}, {name: magpie}]", "listed once"),
        (BASE % ("instruction", "{}") + "generators: [{name: magpi}]", "unknown generator 'magpi'"),
        (
            BASE % ("qa", "{documents: [{path: x}]}") + "generators: [{name: magpie}]",
            "magpie makes task.type instruction, not qa",
        ),
        (BASE % ("instruction", "{}") + "generators: [{name: self_instruct, from_seeds: 9}]", "from_seeds"),
        (
            (BASE % ("instruction", "{}")).replace("description: abcd", "description: abcd, target_count: 1")
            + "generators: [{name: magpie}, {name: self_instruct}]",
            "below the number of generators",
        ),
        (
            BASE % ("instruction", "{}")
            + "generation: {model: {backend: openai, base_url: 'http://127.0.0.1:1/v1', model: m}}\n"
            + "generators: [{name: magpie}]",
            "magpie needs the model's chat template",
        ),
    ],
)
def test_recipe_errors_for_generators(text, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe_text(text)


def test_recipe_generator_sampling_overrides_the_default():
    r = load_recipe_text(BASE % ("instruction", "{}") + "generators: [{name: magpie, sampling: {temperature: 1.2}}]")
    s = r.generators[0].sampling.over(r.generation.sampling)
    assert (s.temperature, s.top_p) == (1.2, r.generation.sampling.top_p)
    dialogue = load_recipe_text(BASE % ("dialogue", "{documents: [{path: x}]}"))
    assert [g.name for g in dialogue.generators] == ["dialogue"]


def test_shares_split_the_target():
    assert shares(40, [2, 1, 1, 1]) == [16, 8, 8, 8]
    assert sum(shares(7, [1, 1, 1])) == 7
    assert min(shares(3, [10, 1, 1])) == 1


def test_pre_query_template_is_the_chat_template_up_to_the_user_turn():
    t = ChatTemplate(CHATML, "", "")
    assert t.render([{"role": "user", "content": ""}]) == "<|im_start|>user\n"
    text = t.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": ""}])
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
    with pytest.raises(ValueError):
        render_pre_query(lambda m: "a template that drops messages", [{"role": "user", "content": ""}])


def test_pre_query_is_refused_by_a_chat_server():
    from sftforge.llm.openai import OpenAICompatibleLLM, OpenAISettings

    llm = OpenAICompatibleLLM(OpenAISettings(base_url="http://127.0.0.1:9/v1", model="m"))
    try:
        with pytest.raises(ModelError, match="magpie"):
            llm.submit(ChatRequest.of("q", [{"role": "user", "content": ""}], SamplingParams()))
    finally:
        llm.close()


def test_diversity_figures():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n([], 2) == 0.0
    same = ["write a poem about the sea"] * 3
    assert mean_pairwise_rouge_l(same) == pytest.approx(1.0)
    assert mean_pairwise_rouge_l(["alpha beta", "gamma delta"]) == 0.0
    d = diversity(["write a poem", "explain gravity"])
    assert d["texts"] == 2 and d["distinct_1"] == 1.0 and d["mean_pairwise_rouge_l"] == 0.0


def test_dialogue_assistant_turn_must_be_supported_and_invent_no_number():
    from sftforge.generate.generators.dialogue import AssistantStep

    text = "The Aurora X2 has a 5200 mAh battery. It runs for up to 120 minutes on the Standard level."
    p = Passage("c", "doc", 0, len(text), text)
    conv = Conversation("d", p, "a customer", turns=[("user", "How long does the battery last?")])
    step = AssistantStep("en", Constraints())
    item = WorkItem("k", (conv, [p]))
    answer, score = step.parse(item, "The battery lasts up to 120 minutes on the Standard level.\n\nUnrelated text.")
    assert answer == "The battery lasts up to 120 minutes on the Standard level." and score >= 0.5
    with pytest.raises(ParseError, match="number .* do not have \\(5500\\)"):
        step.parse(item, "The Aurora X2 has a 5500 mAh battery.")
    with pytest.raises(ParseError, match="not supported"):
        step.parse(item, "Pizza ovens bake bread quickly at very high temperatures.")


def test_vae_needs_enough_instructions_and_says_where_to_add_them():
    from sftforge.generate.generators.vae import VAEAugmentConfig, VAEAugmentDriver
    from sftforge.sample import SourceRef

    records = InstructionRecords("vae", "instruction", "en", "fake", None, Sampling())
    texts = {f"Instruction number {i}.": SourceRef("seed", str(i)) for i in range(5)}
    driver = VAEAugmentDriver(VAEAugmentConfig(name="vae"), "en", records, 1500, texts)
    with pytest.raises(SourceError, match="needs at least 20; there are 5: add seed tasks to sources.seeds"):
        next(driver.run(lambda step, items: [], 3, 0))
