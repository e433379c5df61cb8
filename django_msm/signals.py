"""Django signals sent by django_msm, for alerting and audit trails.

* ``session_relocated(old_key, new_key)``: a session moved to a new key on another node.
* ``session_taken_over(old_key, new_key)``: an app instance took over another route's session.
* ``node_down(node_id, error)`` / ``node_up(node_id)``: this process quarantined a node or saw it
  come back.
"""

from django.dispatch import Signal

session_relocated = Signal()
session_taken_over = Signal()
node_down = Signal()
node_up = Signal()
