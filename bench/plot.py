"""The report's plot: median request latency by session size, one line per engine.

matplotlib is the ``bench`` extra (``make bench`` installs it); without it the report is
written all the same, without the plot.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .phases import SIZED, SIZES
from .results import Results

logger = logging.getLogger(__name__)
FLOORS = (("floor-memcached", "raw pymemcache get"), ("floor-redis", "raw redis-py get"))


def latency_by_size(results: Results, path: Path) -> bool:
    """Write the PNG; return False (and say why) when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        logger.warning("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return False
    matplotlib.use("Agg")
    from matplotlib import pyplot

    kilobytes = [size / 1024 for size in SIZES]
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for axis, shape in zip(axes, ("read", "modify"), strict=True):
        for name in SIZED:
            values = [results.median(name, f"{shape}@{size}") for size in SIZES]
            axis.plot(kilobytes, values, marker="o", label=name)
        for name, title in FLOORS:
            values = [results.median(name, f"get@{size}") for size in SIZES]
            axis.plot(kilobytes, values, linestyle="--", color="grey" if "mem" in name else "k",
                      label=title)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(kilobytes, [f"{k:g}" for k in kilobytes])
        axis.set_xlabel("session size (KB of JSON)")
        axis.set_title(f"{shape} request")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("median request (µs, log scale)")
    axes[1].legend(fontsize="small")
    figure.suptitle("django_msm vs Django's cache engine and django-redis: latency by session size")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True
