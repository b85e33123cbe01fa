"""CLI command groups, one module per noun; each exposes `register(app)`.

Modules here import only typer and the standard library at import time: torch and
transformers are imported inside command bodies so `collapselab --help` is instant.
"""
