"""Planted defects for the selection benchmark: a pool of good QA records with known bad ones mixed in.

The selection benchmark needs ground truth: which records a data selector should avoid. Real pipelines make
a few recognisable kinds of bad example, so this module copies some good records and breaks each in one of
those ways, labelling every record of the new pool:

- `truncated`: the answer cut mid-sentence after 20-50% of its words (CJK: characters), final punctuation
  dropped, as when generation hits its token limit;
- `swapped`: answers permuted among the chosen records (a derangement: no record keeps its own answer), as when
  a batch's outputs are misaligned with its prompts;
- `off_topic`: the answer replaced by 2-3 fluent sentences from an unrelated domain (cooking, sports,
  weather...), as when the model drifts;
- `one_word`: the answer reduced to one of its words (CJK: two characters), or "Yes."/"No.", as when the model
  is lazy;
- `near_duplicate`: copies of a few good records with small edits (two words swapped, a word's casing or the
  punctuation changed), several copies per record, which over-weight those records in training.

The defective share of the pool is `fraction`, split evenly across the kinds. A defective record replaces the
record it was chosen as (a near-duplicate replaces its chosen record with an edited copy of another, clean,
record that stays in the pool), so the pool keeps its size. Each defective record has a new id
(`record_id` of its new messages with the generator "defect:<kind>"), that generator in its lineage and the
record it was made from as its lineage parent. Its features are cleared (they described the original); its
source and answer check are kept, stale on purpose, so that a selector cannot spot a defect by a missing field.

Everything is deterministic for a seed. Inputs are not modified.

    pool, labels = plant_defects(records, fraction=0.3, seed=0)
    defect_summary(labels)  # {"clean": 70, "near_duplicate": 6, "off_topic": 6, ...}
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable

from sftforge.lib.text import cjk_ratio
from sftforge.sample import Lineage, Record, record_id

KINDS = ("truncated", "swapped", "off_topic", "one_word", "near_duplicate")
CLEAN = "clean"
COPIES_PER_SOURCE = 4  # near-duplicates: about this many edited copies of each copied record

OFF_TOPIC_EN = (
    "Preheat the oven to 200 degrees and roast the vegetables until their edges turn golden.",
    "Stir the risotto constantly and add the warm stock one ladle at a time.",
    "A pinch of salt in the coffee grounds takes the edge off a bitter brew.",
    "Let the bread dough rise in a warm place until it has doubled in size.",
    "Marinate the chicken overnight in yoghurt, garlic and smoked paprika.",
    "Fresh basil should be torn by hand rather than chopped, so that it does not bruise.",
    "The home side equalised in stoppage time after a corner was headed in at the near post.",
    "She served three aces in the deciding set and took the title without dropping a game.",
    "The marathon leader slowed at the thirty-kilometre mark and was caught on the final climb.",
    "The coach rotated the squad heavily ahead of the cup final next weekend.",
    "A late three-pointer sent the game into overtime in front of a sold-out arena.",
    "The cycling team lost two riders in a crash on the wet descent.",
    "Expect scattered showers in the morning, clearing to sunny spells by mid-afternoon.",
    "A cold front moving in from the north will bring strong winds and a sharp drop in temperature.",
    "Coastal areas may see fog patches overnight, lifting slowly after sunrise.",
    "The heatwave is forecast to last until Thursday, with highs near 35 degrees.",
    "Light snow is possible on higher ground, but roads in the valleys should stay clear.",
    "Humidity will stay high all week, so thunderstorms could develop in the evenings.",
    "Water tomatoes at the base in the morning so that the leaves stay dry.",
    "Prune roses in late winter, just above an outward-facing bud.",
    "Most houseplants prefer bright, indirect light and soil that dries out between waterings.",
    "The museum's new wing displays ceramics from the eighteenth century.",
    "Our flight was delayed by two hours, so we missed the connecting train to the coast.",
    "The hotel breakfast was generous, with fresh pastries and local cheeses.",
    "Pack a light rain jacket, since mountain weather changes quickly in the afternoon.",
    "Remember to bring your library card if you want to borrow more than three books.",
    "A regular bedtime and less screen time in the evening help children sleep better.",
    "The knitting pattern calls for two skeins of merino wool and 4 mm needles.",
    "Brush your dog's coat weekly to reduce shedding and keep its skin healthy.",
    "The concert opened with a string quartet and ended with a standing ovation.",
)

OFF_TOPIC_ZH = (
    "先把烤箱预热到两百度，再把蔬菜烤到边缘金黄。",
    "煮粥时要不停搅拌，以免粘锅。",
    "面团要放在温暖的地方发酵，直到体积变成两倍。",
    "红烧肉要用小火慢炖一个小时，味道才会入味。",
    "包饺子时，馅料里加一点姜末可以去腥。",
    "主队在补时阶段扳平了比分，全场观众起立欢呼。",
    "她在决胜盘中连发三个爱司球，最终赢得冠军。",
    "马拉松领先者在三十公里处体力下降，被对手反超。",
    "教练在杯赛决赛前大幅轮换了阵容。",
    "篮球比赛最后一秒的三分球把比赛拖进了加时。",
    "明天上午有零星阵雨，下午转晴。",
    "一股冷空气将从北方南下，带来大风和明显降温。",
    "沿海地区夜间可能有雾，日出后逐渐消散。",
    "高温天气将持续到周四，最高气温接近三十五度。",
    "山区可能有小雪，但河谷地区的道路不受影响。",
    "番茄最好在早上浇水，并且浇在根部。",
    "玫瑰应在冬末修剪，剪口留在向外的芽点上方。",
    "大多数室内植物喜欢明亮的散射光。",
    "博物馆的新展厅展出了十八世纪的瓷器。",
    "航班延误了两个小时，我们错过了去海边的火车。",
    "酒店的早餐很丰盛，有新鲜的点心和当地的奶酪。",
    "山里的天气变化快，下午出门记得带一件雨衣。",
    "借书超过三本时，请带上你的借书证。",
    "规律的作息有助于孩子睡得更好。",
    "每周给狗梳毛可以减少掉毛。",
    "音乐会以弦乐四重奏开场，最后观众起立鼓掌。",
)

_YES_NO = {"en": ("Yes.", "No."), "zh": ("是的。", "不是。")}
_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = set(".!?。！？;；")
_PUNCT_SWAPS = {".": "!", "!": ".", "?": ".", "。": "！", "！": "。", "？": "。"}


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _is_cjk_text(text: str) -> bool:
    """Text with no spaces between words: cut and edited by characters rather than words."""
    return cjk_ratio(text) > 0.3


def _lang(record: Record) -> str:
    return "zh" if record.lang.split("-")[0] in ("zh", "ja", "ko") else "en"


def _answer_index(record: Record) -> int:
    """Index of the record's answer: its last assistant message."""
    for i in range(len(record.messages) - 1, -1, -1):
        if record.messages[i]["role"] == "assistant":
            return i
    raise ValueError(f"record {record.id} has no assistant message to plant a defect in")


def answer(record: Record) -> str:
    return record.messages[_answer_index(record)]["content"]


def _question_index(record: Record) -> int:
    """Index of the user message before the answer (the question)."""
    for i in range(_answer_index(record) - 1, -1, -1):
        if record.messages[i]["role"] == "user":
            return i
    raise ValueError(f"record {record.id} has no user message before its answer")


def _with_message(record: Record, index: int, content: str) -> list[dict[str, str]]:
    messages = [dict(m) for m in record.messages]
    messages[index]["content"] = content
    return messages


def _defective(original: Record, messages: list[dict[str, str]], kind: str) -> Record:
    """A new record made from `original` with `messages`: new id, generator "defect:<kind>", parent the
    original, features cleared."""
    generator = f"defect:{kind}"
    source = [dataclasses.replace(s) for s in original.source]
    if original.lineage is None:
        lineage = Lineage(generator=generator, model="", parents=[original.id])
    else:
        lineage = dataclasses.replace(original.lineage, generator=generator, parents=[original.id])
    return Record(
        id=record_id(messages, source, generator),
        messages=messages,
        task=original.task,
        lang=original.lang,
        source=source,
        lineage=lineage,
        features={},
        answer_check=dataclasses.replace(original.answer_check) if original.answer_check else None,
    )


# ------------------------------------------------------------------------------------------------ answer edits


def _units(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word, or of each non-space character for CJK text."""
    pattern = r"\S" if _is_cjk_text(text) else r"\S+"
    return [m.span() for m in re.finditer(pattern, text)]


def truncate(text: str, rng: random.Random) -> str:
    """A strict prefix of `text` ending mid-sentence after 20-50% of its words (CJK: characters), without
    final punctuation. A one-word answer is cut inside the word."""
    units = _units(text)
    if len(units) < 2:
        word = text.strip()
        return word[: max(1, len(word) // 2)] if len(word) > 1 else ""
    n = len(units)
    lo = max(1, math.ceil(0.2 * n))
    hi = max(lo, min(n - 1, math.floor(0.5 * n)))
    ks = list(range(lo, hi + 1))
    # Prefer a cut that does not land just after a sentence end, so the answer reads as cut off.
    mid = [k for k in ks if text[units[k - 1][1] - 1] not in _SENTENCE_END]
    k = rng.choice(mid or ks)
    cut = text[: units[k - 1][1]]
    stripped = cut.rstrip()
    while stripped and _is_punct(stripped[-1]):
        stripped = stripped[:-1].rstrip()
    return stripped or cut


def one_word(text: str, lang: str, rng: random.Random) -> str:
    """One word of the answer (CJK: two neighbouring characters), preferring longer words; or "Yes."/"No." (a
    quarter of the time, or when the answer already is one word)."""
    words = _WORD.findall(text)
    if _is_cjk_text(text):
        words = [w[i : i + 2] for w in words for i in range(max(1, len(w) - 1))]
    else:
        words = [w for w in words if len(w) >= 3] or words
    choices = list(dict.fromkeys(w for w in words if w != text.strip()))
    if not choices or rng.random() < 0.25:
        return rng.choice([w for w in _YES_NO[lang] if w != text.strip()])
    return rng.choice(choices)


def off_topic(lang: str, rng: random.Random) -> str:
    """Two or three distinct sentences from unrelated domains, in the record's language."""
    pool = OFF_TOPIC_ZH if lang == "zh" else OFF_TOPIC_EN
    picked = rng.sample(pool, rng.choice((2, 3)))
    return ("" if lang == "zh" else " ").join(picked)


def small_edit(text: str, rng: random.Random) -> str:
    """`text` with one small edit: two neighbouring words (CJK: characters) swapped, one word's casing
    changed, or the final punctuation changed, added or removed. The result always differs from `text`."""
    units = _units(text)
    edits: list[Callable[[], str]] = []
    if len(units) >= 2:

        def swap() -> str:
            i = rng.randrange(len(units) - 1)
            (a0, a1), (b0, b1) = units[i], units[i + 1]
            return text[:a0] + text[b0:b1] + text[a1:b0] + text[a0:a1] + text[b1:]

        edits.append(swap)
    cased = [(s, e) for s, e in units if text[s:e].lower() != text[s:e].upper()]
    if cased:

        def recase() -> str:
            s, e = rng.choice(cased)
            word = text[s:e]
            new = word.lower() if word != word.lower() else word.capitalize()
            new = new if new != word else word.upper()
            return text[:s] + new + text[e:]

        edits.append(recase)

    def punctuate() -> str:
        body = text.rstrip()
        last = body[-1:] if body else ""
        if last in _PUNCT_SWAPS:
            return body[:-1] + rng.choice((_PUNCT_SWAPS[last], ""))
        return body + ("。" if _is_cjk_text(body) else ".")

    edits.append(punctuate)
    for _ in range(10):
        edited = rng.choice(edits)()
        if edited != text:
            return edited
    return punctuate()


# ------------------------------------------------------------------------------------------------ planting


def _split_counts(total: int, kinds: tuple[str, ...]) -> dict[str, int]:
    """`total` split evenly over the kinds; the remainder goes one each to the first kinds."""
    base, extra = divmod(total, len(kinds))
    return {kind: base + (i < extra) for i, kind in enumerate(kinds)}


def _derangement(n: int, rng: random.Random) -> list[int]:
    """A random cyclic permutation (Sattolo): perm[i] != i for every i, when n >= 2."""
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.randrange(i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _swapped(chosen: list[Record], others: list[Record], rng: random.Random) -> list[Record]:
    """Each chosen record with another chosen record's answer (a derangement); a lone chosen record takes the
    answer of a random other record of the pool."""
    if len(chosen) == 1:
        donors = [r for r in others if answer(r).strip() != answer(chosen[0]).strip()] or others
        if not donors:
            raise ValueError("a swapped answer needs at least two records")
        perm_answers = [answer(rng.choice(donors))]
    else:
        # Retry a few permutations in case two records share an answer text; keep the last one otherwise.
        for _ in range(20):
            perm = _derangement(len(chosen), rng)
            perm_answers = [answer(chosen[j]) for j in perm]
            if all(a.strip() != answer(r).strip() for a, r in zip(perm_answers, chosen)):
                break
    return [_defective(r, _with_message(r, _answer_index(r), a), "swapped") for r, a in zip(chosen, perm_answers)]


def _near_duplicates(count: int, clean: list[Record], rng: random.Random) -> list[Record]:
    """`count` edited copies of a few clean records, about COPIES_PER_SOURCE each, every copy distinct."""
    if count == 0:
        return []
    if not clean:
        raise ValueError("near_duplicate defects copy clean records, but the fraction leaves none clean")
    sources = rng.sample(clean, min(len(clean), math.ceil(count / COPIES_PER_SOURCE)))
    out: list[Record] = []
    seen = {tuple(m["content"] for m in r.messages) for r in clean}
    for i in range(count):
        original = sources[i % len(sources)]
        messages = [dict(m) for m in original.messages]
        for _ in range(1000):  # stack edits until this copy differs from every other text
            index = rng.choice((_question_index(original), _answer_index(original)))
            messages[index]["content"] = small_edit(messages[index]["content"], rng)
            key = tuple(m["content"] for m in messages)
            if key not in seen:
                break
        else:
            raise RuntimeError(f"could not make a distinct near-duplicate of record {original.id}")
        seen.add(key)
        out.append(_defective(original, messages, "near_duplicate"))
    return out


def plant_defects(
    records: list[Record],
    fraction: float,
    seed: int,
    kinds: tuple[str, ...] = KINDS,
) -> tuple[list[Record], dict[str, str]]:
    """A copy of the pool in which `fraction` of the records are defective, split evenly over `kinds`, and the
    label of every record of it by id (a kind, or "clean"). See the module docstring."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if not kinds:
        raise ValueError("kinds is empty: name at least one defect kind")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds must be distinct names among {KINDS}, got {kinds}")
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("records have duplicate ids; labels are keyed by id")
    for r in records:
        _question_index(r)  # every record needs a question and an answer

    rng = random.Random(seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    counts = _split_counts(round(fraction * len(records)), kinds)
    chosen: dict[str, list[Record]] = {}
    start = 0
    for kind in kinds:
        chosen[kind] = [records[i] for i in order[start : start + counts[kind]]]
        start += counts[kind]
    clean = [records[i] for i in sorted(order[start:])]

    defective: list[Record] = []
    for kind in kinds:
        krng = random.Random(f"{seed}:{kind}")
        picked = chosen[kind]
        if kind == "truncated":
            defective += [
                _defective(r, _with_message(r, _answer_index(r), truncate(answer(r), krng)), kind) for r in picked
            ]
        elif kind == "swapped" and picked:
            picked_ids = {r.id for r in picked}
            defective += _swapped(picked, [r for r in records if r.id not in picked_ids], krng)
        elif kind == "off_topic":
            defective += [
                _defective(r, _with_message(r, _answer_index(r), off_topic(_lang(r), krng)), kind) for r in picked
            ]
        elif kind == "one_word":
            defective += [
                _defective(r, _with_message(r, _answer_index(r), one_word(answer(r), _lang(r), krng)), kind)
                for r in picked
            ]
        elif kind == "near_duplicate":
            defective += _near_duplicates(len(picked), clean, krng)

    pool = clean + defective
    labels = {r.id: CLEAN for r in clean}
    for r in defective:
        kind = r.lineage.generator.removeprefix("defect:")
        if r.id in labels:
            raise RuntimeError(f"defective record {r.id} ({kind}) has the id of another record")
        labels[r.id] = kind
    rng.shuffle(pool)
    return pool, labels


def defect_summary(labels: dict[str, str]) -> dict[str, int]:
    """Number of records of each label, "clean" included, by name."""
    return dict(sorted(Counter(labels.values()).items()))
