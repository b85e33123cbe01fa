"""The one batcher: sort by length, cut by a token budget.

Training, generation, perplexity, MMLU scoring and the sentence encoder all pad a batch to
its longest member, so the cost of a batch is its size times that width. Grouping similar
lengths keeps padding small; the budget keeps the largest batch inside memory.
"""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_batches(
    lengths: Sequence[int],
    budget: int,
    *,
    extra: int = 0,
    copies: int = 1,
    order: Sequence[int] | None = None,
) -> list[list[int]]:
    """Indices grouped into batches whose padded cost fits `budget`.

    A batch of b items whose longest is L tokens costs `b * (L + extra) * copies` tokens
    (`extra`: new tokens a generation adds; `copies`: beams). An item over budget on its own
    still gets a batch of one.

    Args:
        lengths: Tokens per item.
        budget: Most padded tokens per batch.
        extra: Tokens added to every item of a batch (e.g. `max_new_tokens`).
        copies: Copies of every item (e.g. beams).
        order: The order items are taken in; default ascending length (stable), which makes
            batching a pure function of the lengths. Training passes a shuffled, then
            length-sorted order so equal lengths meet in a fresh random order each epoch.

    Returns:
        Batches of indices into `lengths`, in the order they were cut.
    """
    if order is None:
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    width = 0
    for i in order:
        wider = max(width, lengths[i])
        if batches and (len(batches[-1]) + 1) * (wider + extra) * copies <= budget:
            batches[-1].append(i)
            width = wider
        else:
            batches.append([i])
            width = lengths[i]
    return batches
