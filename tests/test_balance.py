"""Group mentions and the balance audit: hand-made texts in English and Chinese."""

from __future__ import annotations

from sftforge.export.card import CardStats
from sftforge.lib.balance import BalanceCounter, mentions, skew
from sftforge.sample import Lineage, Record


def test_english_mentions_are_whole_words_and_case_blind():
    found = mentions("She told her brother that Muslims and Christians live in India. The HE-man theme.", "en")
    assert found[("gender", "female")] == 2 and found[("gender", "male")] == 3  # brother, HE, man
    assert found[("religion", "muslim")] == 1 and found[("religion", "christian")] == 1
    assert found[("nationality", "india")] == 1
    assert not mentions("The shell heredoc uses an old-style version of sheet music.", "en")  # no part-words


def test_chinese_mentions_take_the_longest_term_and_leave_the_plural_he_out():
    found = mentions("他告诉她，老年人和儿童都欢迎。他们来自中国。她们也来了。", "zh")
    assert found[("age", "old")] == 1  # 老年人, not also 老年
    assert found[("gender", "male")] == 1  # 他, not 他们 (a mixed group)
    assert found[("gender", "female")] == 2  # 她, 她们
    assert found[("nationality", "china")] == 1


def test_skew_is_zero_in_balance_and_grows_with_the_ratio():
    assert skew(0, 0) is None
    assert skew(3, 3) == 0.0
    assert skew(7, 3) == 1.0 and skew(3, 7) == -1.0


def test_the_counter_slices_by_task_and_averages_a_score_over_the_records_naming_a_group():
    c = BalanceCounter(score_name="toxicity")
    c.add("He is a doctor.", "en", ["task qa"], 0.1)
    c.add("He and his father cook.", "en", ["task qa"], 0.3)
    c.add("She writes code.", "en", ["task dialogue"], 0.9)
    c.add("Nothing about people.", "en", ["task qa"], 0.5)
    fig = c.figures()
    male, female = fig["groups"]["gender:male"], fig["groups"]["gender:female"]
    assert male["records"] == 2 and male["mentions"] == 4 and male["mean_score"] == 0.2
    assert female["records"] == 1 and female["share"] == 0.25 and female["mean_score"] == 0.9
    pair = fig["pairs"][0]
    assert pair["pair"] == "male/female" and pair["a"] == 4 and pair["b"] == 1 and pair["skew"] > 1
    assert set(pair["slices"]) == {"task qa", "task dialogue"} and pair["slices"]["task dialogue"]["skew"] == -1.0


def test_the_card_stats_gather_the_balance_with_the_records_score():
    def rec(text: str, gen: str) -> Record:
        lineage = Lineage(generator=gen, model="m", template="t", template_hash="h", seed=0, attempts=1)
        return Record(
            id="",
            messages=[{"role": "user", "content": "Tell me."}, {"role": "assistant", "content": text}],
            task="qa",
            lang="en",
            lineage=lineage,
            features={"toxicity": 0.0},
        )

    stats = CardStats.of([rec("He fixed it.", "grounded"), rec("He and she left.", "grounded")])
    fig = stats.balance.figures()
    assert fig["score"] == "toxicity" and fig["groups"]["gender:male"]["records"] == 2
    assert fig["pairs"][0]["slices"]["generator grounded"]["a"] == 2
