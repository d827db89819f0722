"""Small helpers the bench scripts share to print their tables."""

from __future__ import annotations

import statistics


def mean_sd(values: list[float]) -> str:
    """``0.352 ± 0.081``: the mean and the sample standard deviation (0 for one value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"
