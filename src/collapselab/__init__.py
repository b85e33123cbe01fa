"""collapselab: a laboratory for model collapse.

The stable Python API (`collapselab.api`): `run`, `load_run`, `runs` and `Run`.
Importing the package is light; torch, transformers and pandas load on first use.
"""

from collapselab.api import Run, load_run, run, runs

__version__ = "0.1.0"
__all__ = ["Run", "__version__", "load_run", "run", "runs"]
