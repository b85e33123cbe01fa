"""The `sweep:` config block lives with the other config blocks (`collapselab.config.operations`)."""

from __future__ import annotations

from collapselab.config.operations import SweepBlock, TrialResources

__all__ = ["SweepBlock", "TrialResources"]
