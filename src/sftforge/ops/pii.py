"""`pii_redact`: a mapper that finds personal data and secrets in message contents and replaces them.

Detection and redaction are `sftforge.lib.pii` (pure regular expressions with validation; no model). The recipe entry:

    cleaning:
      mappers:
        - name: pii_redact
          types: [EMAIL, PHONE, CREDIT_CARD, ...]   # default: every regex type; ADDRESS, PERSON, LOCATION,
                                                    # ORGANIZATION are opt-in
          mode: placeholder                         # mask | placeholder | hash
          salt_env: SFTFORGE_PII_SALT               # hash mode: the environment variable holding the salt
          roles: [system, user, assistant]

Each record that had something redacted gets `features["pii_<TYPE>"]` = the number of spans of that type (only
for types found); `stats()` reports the totals for the manifest.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from sftforge.errors import RecipeError
from sftforge.lib.names import NameFinder
from sftforge.lib.pii import NAME_TYPES, REGEX_TYPES, PiiType, detect, redact
from sftforge.ops.base import Mapper, OpConfig, register
from sftforge.sample import Record

Role = Literal["system", "user", "assistant"]


def _regex_types() -> list[PiiType]:
    return list(REGEX_TYPES)


def _all_roles() -> list[Role]:
    return ["system", "user", "assistant"]


class PiiRedactConfig(OpConfig):
    name: Literal["pii_redact"] = "pii_redact"
    types: list[PiiType] = Field(
        default_factory=_regex_types,
        description="PII types to redact. Default: every regex type (EMAIL, PHONE, CREDIT_CARD, IBAN, IP_ADDRESS, "
        "CREDENTIAL, PRIVATE_KEY, US_SSN, CN_ID); ADDRESS (street addresses, heuristic) and PERSON, LOCATION, "
        "ORGANIZATION (names, by a gazetteer and context rules; jieba for Chinese) are opt-in.",
    )
    mode: Literal["mask", "placeholder", "hash"] = Field(
        "placeholder",
        description="mask: '*' per character; placeholder: [EMAIL]; hash: [EMAIL:1a2b3c4d], a salted HMAC of the "
        "value, so equal values stay linkable across records without being revealed.",
    )
    salt_env: str | None = Field(
        None, description="Environment variable that holds the salt for hash mode (required in hash mode)."
    )
    roles: list[Role] = Field(default_factory=_all_roles, description="Message roles to redact.")

    @model_validator(mode="after")
    def _check(self) -> PiiRedactConfig:
        if not self.types:
            raise ValueError("types is empty: list at least one PII type")
        if not self.roles:
            raise ValueError("roles is empty: list at least one of system, user, assistant")
        if self.mode == "hash" and not self.salt_env:
            raise ValueError("mode 'hash' needs salt_env: the name of an environment variable that holds the salt")
        return self


@register
class PiiRedact(Mapper):
    """Redacts PII in the contents of the configured roles' messages."""

    name: ClassVar[str] = "pii_redact"
    Config = PiiRedactConfig
    config: PiiRedactConfig

    def __init__(self, config: PiiRedactConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        self.found: Counter[str] = Counter()
        self.records_changed = 0
        self._salt: str | None = None
        self._names: NameFinder | None = None  # the gazetteer-backed finder, for PERSON, LOCATION, ORGANIZATION

    def setup(self) -> None:
        """Reads the salt in hash mode, so that a missing variable fails before the first record, and loads the
        name gazetteer when a name type is asked for."""
        if self.config.mode == "hash":
            self._salt = self._read_salt()
        self._names_finder()

    def _names_finder(self) -> NameFinder | None:
        if self._names is None and any(t in NAME_TYPES for t in self.config.types):
            from sftforge.gazetteer import name_finder

            self._names = name_finder()
        return self._names

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_names"] = None  # half a million names: each worker loads the cached gazetteer itself
        return state

    def _read_salt(self) -> str:
        var = self.config.salt_env
        value = os.environ.get(var or "")
        if not value:
            raise RecipeError(
                f"pii_redact: mode 'hash' reads its salt from the environment variable {var}, which is unset or "
                f"empty; set it (e.g. export {var}=$(openssl rand -hex 32)) and keep it secret"
            )
        return value

    def map(self, record: Record) -> Record:
        if self.config.mode == "hash" and self._salt is None:
            self._salt = self._read_salt()
        roles = set(self.config.roles)
        counts: Counter[str] = Counter()
        messages: list[dict[str, str]] = []
        for message in record.messages:
            if message["role"] in roles:
                spans = detect(message["content"], self.config.types, self._names_finder())
                if spans:
                    counts.update(s.type for s in spans)
                    content = redact(message["content"], spans, self.config.mode, self._salt or "")
                    message = {**message, "content": content}
            messages.append(message)
        if not counts:
            return record
        self.found.update(counts)
        self.records_changed += 1
        features = {**record.features, **{f"pii_{t}": float(n) for t, n in sorted(counts.items())}}
        return dataclasses.replace(record, messages=messages, features=features)

    def stats(self) -> dict[str, Any]:
        return {"found_by_type": dict(self.found), "records_changed": self.records_changed}
