"""django_msm: a Django session engine after memcached-session-manager (msm).

Session keys name the node that holds the primary copy; every session has a backup copy on the
next node; a failed or hung node never logs a user out.
"""

__version__ = "0.1.0"
