"""One palette for the report's figures and the dashboard's charts: an arm has the same
colour everywhere, and generations are shaded the same way (later ones darker) in both.

Colours are hex strings, so matplotlib and Vega-Lite take them as they are; nothing here
imports a plotting library.
"""

from __future__ import annotations

from collections.abc import Sequence

# Distinct, colour-blind-safe enough for a handful of arms; cycled beyond eight.
COLORS = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6e63", "#444444"]
NEUTRAL = "#333333"  # reference lines and human yardsticks: not an arm

# matplotlib's viridis at nine evenly spaced points (0 = dark purple, 1 = yellow)
_VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"]
_LIGHTEST = 0.85  # generation 0's point on the ramp: yellow-green, still readable on white


def arm_colors(arms: Sequence[str]) -> dict[str, str]:
    """arm -> colour, by the arm's position in the run's arm list (the config's order).

    Pass every arm of the run, not only those a chart shows, so hiding an arm never
    recolours the others."""
    return {arm: COLORS[i % len(COLORS)] for i, arm in enumerate(arms)}


def generation_colors(generations: Sequence[int]) -> dict[int, str]:
    """generation -> colour on the viridis ramp: the first light, the last dark (so the
    generation a run ends on stands out)."""
    order = sorted(generations)
    last = max(1, len(order) - 1)
    return {g: _viridis(_LIGHTEST * (1 - k / last)) for k, g in enumerate(order)}


def _viridis(t: float) -> str:
    x = min(max(t, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    a, b = _rgb(_VIRIDIS[i]), _rgb(_VIRIDIS[i + 1])
    f = x - i
    return "#" + "".join(f"{round(p + (q - p) * f):02x}" for p, q in zip(a, b, strict=True))


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)
