"""Sweeps: a grid of config overrides, each point one ordinary engine run, fanned out on Ray.

- `plan.py`: the grid, the trial configs and their deterministic run ids (no Ray).
- `trial.py`: what one Ray task does: run one trial's engine run, resumably.
- `runner.py`: the driver: start or join Ray, submit the unfinished trials, show progress.
- `compare.py`: the trials side by side: the table and the plot of `collapselab results
  --sweep` and `collapselab report --sweep`.

Importing this package imports nothing heavy (config.py imports `sweep.config`).
"""
