"""collapselab: a laboratory for model collapse."""

__version__ = "0.1.0"
