"""The toxicity screen: the packaged English classifier on hand-made texts, a Chinese model the recipe names, and
records in a language without a screen (not screened: NaN, kept, counted)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sftforge.errors import ModelError
from sftforge.ops import build
from sftforge.ops.presets import preset_filters
from sftforge.ops.toxicity import ToxicityConfig
from sftforge.sample import Record


def rec(user: str, reply: str, lang: str = "en") -> Record:
    return Record(
        id="",
        messages=[{"role": "user", "content": user}, {"role": "assistant", "content": reply}],
        task="t",
        lang=lang,
    )


@pytest.fixture(scope="module")
def english():
    return build(next(c for c in preset_filters("en") if c.name == "toxicity"))


def test_an_insulting_reply_or_instruction_is_flagged_and_plain_text_kept(english):
    plain = rec("How do I open a file in Python?", "Use the with statement: with open(path) as f: data = f.read().")
    rude_reply = rec("How do I open a file in Python?", "Figure it out yourself, you stupid idiot.")
    rude_ask = rec(
        "Write a note telling my neighbour he is a worthless piece of shit.", "Here is a polite note instead."
    )
    scores = english.score_batch([plain, rude_reply, rude_ask])
    assert english.keep(scores[0]) and scores[0] < 0.2
    assert not english.keep(scores[1]) and not english.keep(scores[2])  # the worst turn counts
    assert "toxicity=" in english.reason(rude_reply, scores[1]) and "> max 0.45" in english.reason(
        rude_reply, scores[1]
    )


def test_a_language_without_a_screen_is_not_screened_kept_and_counted(english):
    zh = rec("你好，请介绍一下长城。", "长城是中国古代的军事防御工程。", lang="zh")
    (score,) = english.score_batch([zh])
    assert math.isnan(score) and english.keep(score)  # kept, never called safe
    assert english.stats()["not_screened"] == {"zh": 1}


def test_a_chinese_model_the_recipe_names_screens_chinese(tmp_path: Path):
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    offensive = ["你这个蠢货滚出去", "这种人真恶心去死吧", "傻逼一个", "垃圾东西滚", "蠢货恶心死了", "你就是个废物"]
    fine = ["今天天气很好", "长城是古代的防御工程", "请问怎么打开文件", "谢谢你的帮助", "这本书很有意思", "我们明天见"]
    model = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 2)), LogisticRegression(C=10))
    model.fit(offensive + fine, [1] * len(offensive) + [0] * len(fine))
    joblib.dump(model, tmp_path / "zh.joblib")
    op = build(ToxicityConfig(models={"zh": "zh.joblib"}, max=0.5), base_dir=tmp_path)
    bad, good = op.score_batch([rec("你好", "你这个蠢货，滚出去", "zh"), rec("你好", "谢谢，今天天气很好", "zh")])
    assert not op.keep(bad) and op.keep(good)
    assert op.stats()["screened"] == 2 and op.stats()["not_screened"] == {}


def test_a_missing_model_file_is_named():
    with pytest.raises(ModelError, match="zh model .*nothere.joblib does not exist"):
        build(ToxicityConfig(models={"zh": "nothere.joblib"}), base_dir=Path("/tmp"))
