"""MinHash near-duplicates (sftforge.lib.minhash): shingling, signatures, LSH parameters, global resolution."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from sftforge.lib import minhash as M
from sftforge.lib import text as T

from test_text import TOKEN_CASES

WORDS = [f"word{i}" for i in range(200)]  # unrelated texts share few 3-grams


def make_text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def substitute(rng: random.Random, text: str, k: int) -> str:
    """The text with k words (at distinct random positions) replaced by a word that is not in WORDS."""
    words = text.split()
    for i in rng.sample(range(len(words)), k):
        words[i] = f"zz{rng.randrange(10**6)}"
    return " ".join(words)


def exact(a: str, b: str, unit: M.Unit = "word", n: int = 3) -> float:
    sa, sb = set(M.shingles(a, unit, n)), set(M.shingles(b, unit, n))
    return len(sa & sb) / len(sa | sb)


def dedup(texts: list[str], threshold: float = 0.8, num_perm: int = 128, **kw) -> M.DuplicateResult:
    return M.near_duplicates(texts, threshold=threshold, num_perm=num_perm, **kw)


# ---------------------------------------------------------------------------------------------------- shingling


def test_shingles_short_and_empty_texts():
    assert M.shingles("one two", "word", 3) == ["one two"]
    assert M.shingles("one two three four", "word", 3) == ["one two three", "two three four"]
    assert M.shingles("", "word", 3) == []
    assert M.shingles("?!", "word", 3) == []
    assert M.shingles("Ab", "char", 5) == ["ab"]
    assert M.shingles("abcdef", "char", 5) == ["abcde", "bcdef"]
    assert M.shingles("", "char", 5) == []
    assert M.shingles("我爱北京", "word", 2) == ["我 爱", "爱 北", "北 京"]  # CJK: one token per character


@pytest.mark.parametrize("unit,n", [("word", 1), ("word", 3), ("word", 5), ("char", 4)])
def test_shingle_hashes_match_string_shingles(unit, n):
    rng = random.Random(7)
    hasher = M.MinHasher(unit=unit, n=n)
    texts = [make_text(rng, k) for k in (1, 2, 4, 30, 200)] + TOKEN_CASES
    for text in texts:
        assert len(hasher.shingle_hashes(text)) == len(set(M.shingles(text, unit, n))), text
    # one shingle set per shingle-string set: equal sets hash equally, different ones differently
    a, b = "Hello, World again and again", "hello\u00a0world AGAIN, and again!"  # ASCII vs Unicode path
    assert set(M.shingles(a, unit, n)) == set(M.shingles(b, unit, n))
    assert np.array_equal(hasher.shingle_hashes(a), hasher.shingle_hashes(b))
    assert not np.array_equal(hasher.shingle_hashes(a), hasher.shingle_hashes("hello world again and again too"))


def test_long_tokens_hash_all_their_bytes():
    hasher = M.MinHasher(n=1)
    long_a, long_b = "x" * 40 + "a", "x" * 40 + "b"  # differ only in the 41st byte
    assert not np.array_equal(hasher.shingle_hashes(long_a), hasher.shingle_hashes(long_b))
    assert np.array_equal(hasher.shingle_hashes(long_a), hasher.shingle_hashes(long_a.upper()))


# ---------------------------------------------------------------------------------------------------- signatures


def test_signatures_equal_brute_force_minima():
    """Vectorised blocks and reduceat (documents across block edges, one longer than a block) vs plain minima."""
    rng = np.random.default_rng(3)
    hasher = M.MinHasher(num_perm=16, seed=5)
    c = M._CHUNK
    sizes = [1, c // 3, c - 1, c, 3 * c + 5, 7, c // 2, c + 1]  # across block edges, and longer than a block
    arrays = [rng.integers(0, 2**32, s, dtype=np.uint64).astype(np.uint32) for s in sizes]
    sigs = hasher.signatures(arrays)
    a, b = hasher._a[:, 0].astype(np.uint64), hasher._b[:, 0].astype(np.uint64)
    for row, h in zip(sigs, arrays, strict=True):
        mixed = M._fmix32(h).astype(np.uint64)
        expected = ((a[:, None] * mixed[None, :] + b[:, None]) % (1 << 32)).min(axis=1)
        assert np.array_equal(row, expected.astype(np.uint32))


def test_signatures_of_texts_equal_signatures_of_their_shingle_hashes():
    rng = random.Random(1)
    texts = [make_text(rng, k) for k in range(0, 60, 7)] + TOKEN_CASES
    hasher = M.MinHasher(num_perm=64)
    assert np.array_equal(hasher.signatures(texts), hasher.signatures([hasher.shingle_hashes(t) for t in texts]))


def test_signatures_do_not_depend_on_batching():
    """More texts than one batch, with empty, short, CJK and long ones: each row as if hashed alone."""
    rng = random.Random(2)
    pool = [*TOKEN_CASES, "one", "two words", "x" * 30]
    texts = [make_text(rng, rng.randrange(0, 40)) if i % 3 else rng.choice(pool) for i in range(M._BATCH + 150)]
    for unit in ("word", "char"):
        hasher = M.MinHasher(num_perm=32, unit=unit, n=3)
        together = hasher.signatures(texts)
        alone = np.vstack([hasher.signatures([t]) for t in texts])
        assert np.array_equal(together, alone)


def test_shingle_sets_are_the_shingle_hashes_and_feed_signatures():
    rng = random.Random(8)
    texts = [make_text(rng, rng.randrange(0, 30)) for _ in range(M._BATCH + 10)] + TOKEN_CASES
    hasher = M.MinHasher(num_perm=32)
    sets = hasher.shingle_sets(texts)
    assert len(sets) == len(texts)
    for text, got in zip(texts, sets, strict=True):
        assert np.array_equal(np.unique(got), hasher.shingle_hashes(text))
    assert np.array_equal(hasher.signatures(sets), hasher.signatures(texts))
    with pytest.raises(TypeError):
        hasher.signatures([texts[0], sets[0]])


def test_deterministic_for_a_seed_across_instances_and_processes():
    texts = ["The quick brown fox jumps over the lazy dog", "天下大势，分久必合，合久必分", ""]
    one, two = M.MinHasher(seed=42).signatures(texts), M.MinHasher(seed=42).signatures(texts)
    assert np.array_equal(one, two)
    assert not np.array_equal(one[:2], M.MinHasher(seed=43).signatures(texts)[:2])
    code = (
        "from sftforge.lib.minhash import MinHasher; import sys; "
        f"sys.stdout.write(MinHasher(seed=42).signatures({texts!r}).tobytes().hex())"
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": hash_seed}
        )
        assert bytes.fromhex(out.stdout) == one.tobytes()


def test_estimated_jaccard_is_close_to_exact():
    rng = random.Random(11)
    hasher = M.MinHasher(num_perm=128, seed=2)
    checked = set()
    for changes in (2, 8, 20, 40, 80):
        a = make_text(rng, 200)
        b = substitute(rng, a, changes)
        true = M.jaccard(hasher.shingle_hashes(a), hasher.shingle_hashes(b))
        assert true == pytest.approx(exact(a, b))
        sa, sb = hasher.signatures([a, b])
        assert abs(M.estimate_jaccard(sa, sb) - true) < 0.1, (changes, true)
        checked.add(round(true, 1))
    assert len(checked) >= 4  # the pairs span the range, so a constant estimate would fail


def test_empty_signature_never_matches():
    hasher = M.MinHasher()
    sigs = hasher.signatures(["", "", "!!! ...", "some words here", ""])
    assert (sigs[[0, 1, 2, 4]] == M.EMPTY).all()
    assert M.estimate_jaccard(sigs[0], sigs[1]) == 0.0
    result = M.find_duplicates(sigs, 16, 8, threshold=0.5, verify=False)
    assert not result.is_duplicate.any()


# ---------------------------------------------------------------------------------------------------- LSH parameters


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
def test_lsh_params_are_sensible(threshold):
    bands, rows = M.lsh_params(threshold, 128)
    assert bands > 1 and rows > 1 and bands * rows <= 128
    assert abs((1 / bands) ** (1 / rows) - threshold) < 0.08  # the S-curve's usual threshold estimate


def test_lsh_params_for_0_8_and_weights():
    assert M.lsh_params(0.8, 128) == (9, 13)
    b_fn, r_fn = M.lsh_params(0.8, 128, fp_weight=0.1, fn_weight=0.9)  # fear false negatives: more, shorter bands
    assert (1 / b_fn) ** (1 / r_fn) < (1 / 9) ** (1 / 13)


def test_lsh_params_match_datasketch():
    from datasketch import lsh

    for threshold, num_perm in [(0.5, 128), (0.8, 128), (0.9, 64), (0.7, 256)]:
        assert M.lsh_params(threshold, num_perm) == lsh._optimal_param(threshold, num_perm, 0.5, 0.5)


def test_band_hashes_follow_band_equality():
    sigs = np.array([[1, 2, 3, 4, 5, 6], [1, 2, 9, 9, 5, 6], [2, 1, 4, 3, 6, 5]], dtype=np.uint32)
    keys = M.band_hashes(sigs, 3, 2)
    assert keys.shape == (3, 3) and keys.dtype == np.uint64
    assert keys[0, 0] == keys[1, 0] and keys[0, 2] == keys[1, 2] and keys[0, 1] != keys[1, 1]
    assert not (keys[2] == keys[0]).any()  # swapped values within a band make a different key
    assert len(set(M.band_hashes(np.full((1, 6), 7, np.uint32), 3, 2)[0].tolist())) == 3  # keyed by band number
    with pytest.raises(ValueError):
        M.band_hashes(sigs, 4, 2)


# ---------------------------------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize("verify", ["exact", "estimate", "none"])
def test_identical_near_and_unrelated_texts(verify):
    rng = random.Random(3)
    base = make_text(rng, 150)
    texts = [base, make_text(rng, 150), base, substitute(rng, base, 2), make_text(rng, 150), base.upper() + "!"]
    assert exact(base, texts[3]) > 0.9
    result = dedup(texts, verify=verify)
    assert result.duplicates.tolist() == [2, 3, 5]
    assert result.survivor.tolist() == [0, 1, 0, 0, 4, 0]
    assert result.similarity[2] == 1.0 and result.similarity[5] == 1.0 and 0.8 <= result.similarity[3] < 1.0
    assert np.isnan(result.similarity[[0, 1, 4]]).all()
    assert result.clusters() == {0: [0, 2, 3, 5]}


def test_survivor_is_the_first_in_stream_order():
    rng = random.Random(4)
    a = make_text(rng, 80)
    texts = [make_text(rng, 80), substitute(rng, a, 1), make_text(rng, 80), a, substitute(rng, a, 1)]
    result = dedup(texts)
    assert result.survivor.tolist() == [0, 1, 2, 1, 1]


def test_chinese_texts_are_compared_by_characters():
    para = (
        "自然语言处理是计算机科学领域与人工智能领域中的一个重要方向。它研究能实现人与计算机之间用自然语言进行有效"
        "通信的各种理论和方法。自然语言处理是一门融语言学、计算机科学、数学于一体的科学。因此，这一领域的研究将涉及"
        "自然语言，即人们日常使用的语言，所以它与语言学的研究有着密切的联系，但又有重要的区别。"
    )
    near = para.replace("重要方向", "主要方向").replace("密切的联系", "紧密的联系")  # four characters changed
    other = (
        "长江是亚洲第一长河和世界第三长河，也是世界上完全在一国境内的最长河流。长江干流发源于青藏高原，流经十一个"
        "省级行政区，于崇明岛以东注入东海，全长六千三百余千米，流域面积一百八十万平方千米。"
    )
    assert " " not in para and len(T.tokens(para)) > 100  # no spaces: a word splitter would see a few long words
    assert exact(para, near) > 0.8 and exact(para, other) < 0.1
    result = dedup([para, other, near])
    assert result.survivor.tolist() == [0, 1, 0]


def test_chain_of_near_duplicates_is_one_component():
    """A~B and B~C but not A~C: one cluster, survivor A (components over verified pair edges)."""
    rng = random.Random(5)
    a = make_text(rng, 300)
    b = substitute(rng, a, 12)
    c = substitute(rng, b, 12)
    threshold = 0.7
    assert exact(a, b) > threshold + 0.05 and exact(b, c) > threshold + 0.05 and exact(a, c) < threshold - 0.05
    texts = [a, make_text(rng, 300), b, c]
    hasher = M.MinHasher(num_perm=256, seed=1)
    sigs = hasher.signatures(texts)
    bands, rows = M.lsh_params(threshold, 256)
    for sets in (None, [hasher.shingle_hashes(t) for t in texts]):  # estimated, then exact verification
        result = M.find_duplicates(sigs, bands, rows, threshold=threshold, shingle_sets=sets)
        assert result.clusters() == {0: [0, 2, 3]}
        assert result.similarity[3] < threshold  # C joined through B, not through A


def test_verification_drops_band_collisions_that_are_not_similar():
    sigs = np.arange(4 * 32, dtype=np.uint32).reshape(4, 32)
    sigs[2, :4] = sigs[0, :4]  # rows 0 and 2 share band 0 only: a candidate with estimated Jaccard 1/8
    sigs[3] = sigs[1]
    unverified = M.find_duplicates(sigs, 8, 4, verify=False)
    verified = M.find_duplicates(sigs, 8, 4, threshold=0.5, verify=True)
    assert unverified.survivor.tolist() == [0, 1, 0, 1]
    assert verified.survivor.tolist() == [0, 1, 2, 1]
    assert unverified.similarity[2] == pytest.approx(4 / 32)
    with pytest.raises(ValueError):
        M.find_duplicates(sigs, 8, 4, verify=True)


def test_memmap_signatures_give_the_same_result(tmp_path):
    rng = random.Random(6)
    base = [make_text(rng, 60) for _ in range(50)]
    texts = base + [substitute(rng, t, 1) for t in base[:20]] + [""] * 3
    rng.shuffle(texts)
    hasher = M.MinHasher(num_perm=128)
    in_memory = hasher.signatures(texts)
    path = tmp_path / "sigs.u32"
    on_disk = np.memmap(path, dtype=np.uint32, mode="w+", shape=in_memory.shape)
    hasher.signatures(texts, out=on_disk)
    on_disk.flush()
    del on_disk
    sigs = np.memmap(path, dtype=np.uint32, mode="r", shape=in_memory.shape)
    assert np.array_equal(np.asarray(sigs), in_memory)
    bands, rows = M.lsh_params(0.8, 128)
    expected = M.find_duplicates(in_memory, bands, rows, threshold=0.8)
    got = M.find_duplicates(sigs, bands, rows, threshold=0.8)
    assert expected.is_duplicate.sum() >= 15  # 20 planted, each J ~0.9
    assert np.array_equal(got.survivor, expected.survivor)
    assert np.array_equal(got.similarity, expected.similarity, equal_nan=True)


def test_exact_verification_jaccard_matches_python_sets():
    rng = np.random.default_rng(4)
    sets = [rng.integers(0, 50, rng.integers(0, 40)).astype(np.uint32) for _ in range(60)]  # repeats, empties
    sets[5] = np.array([], dtype=np.uint32)
    u, v = rng.integers(0, 60, 500), rng.integers(0, 60, 500)
    u[0], v[0] = 5, 5
    got = M._exact_jaccard(sets, u, v, block=64)
    for k, (i, j) in enumerate(zip(u.tolist(), v.tolist(), strict=True)):
        a, b = set(sets[i].tolist()), set(sets[j].tolist())
        assert got[k] == pytest.approx(len(a & b) / len(a | b) if a and b else 0.0)
        assert got[k] == pytest.approx(M.jaccard(sets[i], sets[j]))


def test_vectorised_union_matches_sequential_union_find():
    rng = np.random.default_rng(9)
    n = 2000
    u, v = rng.integers(0, n, 1500), rng.integers(0, n, 1500)
    parent = np.arange(n)
    for start in range(0, len(u), 300):  # in several calls, as find_duplicates does band by band
        M._union(parent, u[start : start + 300], v[start : start + 300])
    ref = list(range(n))

    def find(x: int) -> int:
        while ref[x] != x:
            ref[x] = ref[ref[x]]
            x = ref[x]
        return x

    for a, b in zip(u.tolist(), v.tolist(), strict=True):
        ra, rb = find(a), find(b)
        ref[max(ra, rb)] = min(ra, rb)
    expected = [find(x) for x in range(n)]
    assert parent.tolist() == expected  # every node points at its component's smallest index
