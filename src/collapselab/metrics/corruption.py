"""Texts of known, graded quality made from human text: the gibberish scorer's calibration
and validation sets.

From best to worst: the human text itself; the same text with a share of its words
misspelt at the character level (`misspell_words`, 5 %, 15 %, 30 %); its words in random
order (`shuffle_words`, word salad); random characters drawn with the human character
frequencies (`random_characters`: realistic letters and spaces, no words).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

LETTERS = "abcdefghijklmnopqrstuvwxyz"
# (name, share of words misspelt) of the graded corruptions, best first
MISSPELT_SHARES: tuple[tuple[str, float], ...] = (("misspelt 5 %", 0.05), ("misspelt 15 %", 0.15), ("misspelt 30 %", 0.30))


def misspell(word: str, rng: random.Random) -> str:
    """`word` with one character-level edit (two for words of more than five letters).

    An edit is a substitution, insertion, deletion or swap of adjacent letters inside the
    word's alphabetic core (surrounding punctuation is kept), like a typist's errors; the
    result always differs from the word.
    """
    start = next((i for i, ch in enumerate(word) if ch.isalpha()), None)
    if start is None:
        return word
    end = max(i for i, ch in enumerate(word) if ch.isalpha()) + 1
    core = list(word[start:end])
    for _ in range(1 + (len(core) > 5)):
        op = rng.choice(("substitute", "insert", "delete", "swap") if len(core) > 1 else ("substitute", "insert"))
        i = rng.randrange(len(core))
        if op == "substitute":
            core[i] = rng.choice([c for c in LETTERS if c != core[i].lower()])
        elif op == "insert":
            core.insert(i, rng.choice(LETTERS))
        elif op == "delete":
            del core[i]
        else:
            j = min(i, len(core) - 2)
            if core[j].lower() == core[j + 1].lower():  # a swap of equal letters changes nothing
                core[j] = rng.choice([c for c in LETTERS if c != core[j].lower()])
            else:
                core[j], core[j + 1] = core[j + 1], core[j]
    out = word[:start] + "".join(core) + word[end:]
    return out if out.lower() != word.lower() else word[:start] + "".join(core) + "q" + word[end:]


def misspell_words(text: str, share: float, rng: random.Random) -> str:
    """`text` with `share` of its words (tokens with a letter) misspelt by `misspell`.

    The number of words is `share` times the word count, rounded up or down at random in
    proportion to the fraction, so the share is exact on average even for short texts.
    Whitespace is normalised to single spaces.
    """
    tokens = text.split()
    candidates = [i for i, t in enumerate(tokens) if any(ch.isalpha() for ch in t)]
    exact = share * len(candidates)
    k = int(exact) + (rng.random() < exact - int(exact))
    for i in rng.sample(candidates, k):
        tokens[i] = misspell(tokens[i], rng)
    return " ".join(tokens)


def shuffle_words(text: str, rng: random.Random) -> str:
    """The same whitespace tokens in random order (word salad)."""
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def random_characters(text: str, alphabet: Sequence[str], weights: Sequence[float] | None, rng: random.Random) -> str:
    """A string of the same length, characters drawn independently from `alphabet`.

    With `weights` (the human character frequencies) the string has realistic letters and
    spaces, so it looks like words at a glance; without, characters are uniform.
    """
    return "".join(rng.choices(alphabet, weights=weights, k=len(text)))


def graded_sets(texts: Sequence[str], alphabet: Sequence[str], weights: Sequence[float], seed: int) -> dict[str, list[str]]:
    """The six graded sets of `texts`, best first: human, misspelt 5/15/30 %, word salad,
    random characters (same seed, same sets)."""
    rng = random.Random(seed)
    out = {"human": list(texts)}
    for name, share in MISSPELT_SHARES:
        out[name] = [misspell_words(t, share, rng) for t in texts]
    out["word salad"] = [shuffle_words(t, rng) for t in texts]
    out["random characters"] = [random_characters(t, alphabet, weights, rng) for t in texts]
    return out
