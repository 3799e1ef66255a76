"""Executors that run operators over records (local now; Ray later, same operators)."""
