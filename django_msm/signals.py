"""Django signals sent by django_msm, for alerting and audit trails.

* ``session_relocated(old_key, new_key)``: a session moved to a new key on another node.
* ``session_taken_over(old_key, new_key)``: an app instance took over another route's session.
* ``node_down(node_id, error)`` / ``node_up(node_id)``: this process quarantined a node or saw it
  come back.
* ``session_ended(user_id, session_key, reason)``: a user's session ended; ``reason`` is
  ``"logout"``, ``"end"`` / ``"end_all"`` (``django_msm.user_sessions``), ``"password_change"``
  (END_SESSIONS_ON_PASSWORD_CHANGE) or ``"limit"`` (USER_SESSIONS_MAX). Sent in the process that
  ended it; ``user_id`` is the string Django stores in the session.
"""

from django.dispatch import Signal

session_relocated = Signal()
session_taken_over = Signal()
node_down = Signal()
node_up = Signal()
session_ended = Signal()
