"""The demo cluster of django_msm and its narrated tour: ``make demo`` and ``make tour``."""
