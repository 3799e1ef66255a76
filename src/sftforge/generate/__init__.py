"""Generators: format a prompt per work item, parse the output into a record (see base.py)."""
