"""A small shop that shows where its sessions live: the demo site of django_msm."""
