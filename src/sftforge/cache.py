"""Where sftforge keeps what it derives once and reuses across runs (converted models, the name gazetteer)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`SFTFORGE_CACHE`, else ~/.cache/sftforge."""
    return Path(os.environ.get("SFTFORGE_CACHE") or Path.home() / ".cache" / "sftforge")
