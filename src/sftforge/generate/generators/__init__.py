"""One module per generator (see `generate/base.py`, `Generator`); `generate/registry.py` imports them all."""
