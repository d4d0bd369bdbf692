"""Grouping structures into batches of similar size.

Within a batch the interaction lists are concatenated (no per-structure padding), but the charge
solve is a dense (m + 1)² system per structure with m the batch's largest atom count, so
mixing a 100-atom crystal with 2-atom molecules wastes m² work on each molecule. Each batch also
costs a fixed overhead (more traced code, one more set of list arrays). Structures sorted by
atom count are split into contiguous groups minimising Σ_batch (S · m²) + OVERHEAD · batches,
with at most ``max_clusters`` groups (JAX-ReaxFF's ``--max_num_clusters``).
"""
from __future__ import annotations

import numpy as np

OVERHEAD = 2.0e5  # in units of (atoms²): a batch costs ~3,500 more traced operations per call


def cluster_structures(n_atoms, max_clusters: int = 10) -> list[np.ndarray]:
    """Member index arrays (each sorted by atom count), by dynamic programming over the
    distinct atom counts."""
    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    if len(n_atoms) == 0:
        return []
    order = np.argsort(n_atoms, kind="stable")
    sizes, counts = np.unique(n_atoms, return_counts=True)
    k_max = max(1, min(int(max_clusters), len(sizes)))
    before = np.concatenate([[0], np.cumsum(counts)])  # structures before distinct size d
    m = len(sizes)
    # best[k][d]: cost of the first d distinct sizes in k groups; cut[k][d]: where the last starts
    best = np.full((k_max + 1, m + 1), np.inf)
    cut = np.zeros((k_max + 1, m + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, k_max + 1):
        for d in range(1, m + 1):
            starts = np.arange(d)
            cost = best[k - 1, starts] + (before[d] - before[starts]) * float(sizes[d - 1]) ** 2
            j = int(np.argmin(cost))
            best[k, d], cut[k, d] = cost[j] + OVERHEAD, starts[j]
    k = int(np.argmin(best[1:, m])) + 1
    groups, d = [], m
    while k > 0:
        start = cut[k, d]
        groups.append(order[before[start]:before[d]])
        d, k = start, k - 1
    return groups[::-1]


def cluster_cost(n_atoms) -> float:
    """Estimated work of one batch of structures with these atom counts (the model above)."""
    n_atoms = np.asarray(n_atoms, dtype=np.float64)
    return float(len(n_atoms) * n_atoms.max(initial=0.0) ** 2 + OVERHEAD)
