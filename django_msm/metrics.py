"""Kept for the import path earlier releases documented: use ``django_msm.ops.metrics``."""

from .ops.metrics import MsmCollector, metrics_view

__all__ = ["MsmCollector", "metrics_view"]
