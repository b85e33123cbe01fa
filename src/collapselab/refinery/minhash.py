"""Vectorised MinHash signatures and LSH near-duplicate search.

datasketch's `MinHash.update_batch` costs a Python call per record and its LSH a Python
call per insert; for 100,000 records that is most of a 60 s budget. This module computes
the *same* signatures as `datasketch.MinHash(num_perm, seed)` (default `affine32`
scheme: sha1_hash32 of each shingle, MurmurHash3 fmix32 pre-mix, affine permutations
mod 2^32; a test checks equality) for all records at once with numpy, and bands them
like `MinHashLSH` does, with the (bands, rows) that minimise false positives plus false
negatives at the threshold.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np

MAX_HASH32 = np.uint32(0xFFFFFFFF)
_CHUNK_SHINGLES = 1 << 18  # (shingles, num_perm) uint32 blocks stay around 64 MiB


def sha1_hash32(data: bytes) -> int:
    """datasketch's default 32-bit hash: the first 4 bytes of SHA-1, little-endian."""
    return struct.unpack("<I", hashlib.sha1(data).digest()[:4])[0]


def word_shingles(words: Sequence[str], k: int = 3) -> list[bytes]:
    """Distinct word k-grams as bytes; a text shorter than k words is one shingle."""
    if len(words) < k:
        return [" ".join(words).encode()] if words else []
    return list({" ".join(words[i : i + k]).encode() for i in range(len(words) - k + 1)})


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The affine32 permutation parameters (a odd, b) that datasketch draws for (num_perm, seed)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finaliser; uint32 multiplication wraps, which is the intended mod 2^32.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(shingle_sets: Sequence[Sequence[bytes]], num_perm: int = 64, seed: int = 1) -> np.ndarray:
    """(N, num_perm) uint32 MinHash signatures; a record without shingles gets all MAX_HASH32."""
    a, b = permutations(num_perm, seed)
    out = np.full((len(shingle_sets), num_perm), MAX_HASH32, dtype=np.uint32)
    counts = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=len(shingle_sets))
    start = 0
    while start < len(shingle_sets):
        # records [start, stop) whose shingles fit one block (at least one record)
        cum = np.cumsum(counts[start:])
        stop = start + max(1, int(np.searchsorted(cum, _CHUNK_SHINGLES, side="right")))
        hv = np.fromiter((sha1_hash32(s) for rec in shingle_sets[start:stop] for s in rec), dtype=np.uint32)
        if hv.size:
            phv = _fmix32(hv)[:, None] * a[None, :] + b[None, :]  # (S, P)
            n = counts[start:stop]
            rows = np.flatnonzero(n) + start
            offsets = np.concatenate([[0], np.cumsum(n[n > 0])[:-1]])
            out[rows] = np.minimum.reduceat(phv, offsets, axis=0)
        start = stop
    return out


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) minimising P(false positive) + P(false negative) at `threshold`."""
    best, best_err = (1, num_perm), float("inf")
    lo, hi = np.linspace(0, threshold, 201), np.linspace(threshold, 1, 201)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - lo**rows) ** bands, lo)
            fn = np.trapezoid((1 - hi**rows) ** bands, hi)
            if fp + fn < best_err:
                best, best_err = (bands, rows), fp + fn
    return best


def near_duplicate_of(sigs: np.ndarray, threshold: float) -> list[tuple[int, float] | None]:
    """For each record in order: (earlier kept record, estimated Jaccard) if it is a
    near-duplicate of one, else None (and it is kept).

    A pair is a candidate when any LSH band matches, and a near-duplicate when its
    estimated Jaccard (share of equal signature entries) is at least `threshold`: the
    check removes LSH false positives, as querying a datasketch MinHashLSH and then
    comparing the MinHashes would.
    """
    n, num_perm = sigs.shape
    bands, rows = lsh_params(threshold, num_perm)
    # One 64-bit key per (record, band): a random linear combination of the band's values.
    mult = np.random.default_rng(0).integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    keys = np.stack(
        [(sigs[:, i * rows : (i + 1) * rows].astype(np.uint64) * mult).sum(axis=1, dtype=np.uint64) for i in range(bands)],
        axis=1,
    ).tolist()
    empty = (sigs == MAX_HASH32).all(axis=1)
    buckets: list[dict[int, list[int]]] = [{} for _ in range(bands)]
    out: list[tuple[int, float] | None] = []
    for i in range(n):
        found = None
        if not empty[i]:
            seen: set[int] = set()
            for band, key in enumerate(keys[i]):
                for j in buckets[band].get(key, ()):
                    if j not in seen:
                        seen.add(j)
                        jac = float(np.mean(sigs[i] == sigs[j]))
                        if jac >= threshold:
                            found = (j, jac)
                            break
                if found:
                    break
        out.append(found)
        if found is None and not empty[i]:
            for band, key in enumerate(keys[i]):
                buckets[band].setdefault(key, []).append(i)
    return out
