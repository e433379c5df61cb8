"""The fixed prose of docs/chaos.md: how a run works, what the columns mean, how each engine is
configured. The figures around it come from the run."""

ABOUT = """\
Each schedule runs once per engine, each run on a fresh cluster on 127.0.0.1: two nodes (three
where the schedule says so), two gunicorn instances of `testproject` (1 worker, 4 threads each)
behind nginx (round robin, a refused upstream retried on the other one). The simulated users
talk to the load balancer with their own cookie jar: they log in, read, count
(`/api/increment`), fill a cart and log out, with think times between actions. A fifth of their
actions are two updates sent at once with the same cookie, so concurrent requests of one user
are part of the load; replies change the cookie in the order they arrive, as in a browser. While
a fault is on, users log out more often where the schedule says so (revocation under failure). A
user who sees themselves logged out logs in again with an empty cookie jar (a new session),
leaving the old session's data for the final check. Where a schedule makes users idle, those log
in, make one update and send nothing more: the final check tells whether a session nobody
touched during the faults survived them. After the load and every mend, each app instance is
asked directly for every session.

## What the columns count

- **sessions**: acknowledged logins (each a session, until the user's own logout).
- **lost**: sessions the user did not log out that do not read back with the last key the user
  was given, from every app instance (an instance that cannot serve the data logs its user out
  on their next request there).
- **logged out**: sessions whose user saw themselves logged out without asking (a reply said
  "not logged in" or deleted the cookie), whatever became of the data.
- **updates / updates lost**: updates (a count or a cart item, each with its own id)
  acknowledged with 200, and those of them missing from the session at the end (in sessions that
  are not lost; a lost session's updates count under *lost*).
- **logouts (in fault)**: acknowledged logouts (those sent during the fault window).
- **resurrected**: logged-out sessions that read back again, under any key they ever had.
- **4xx / 5xx**: replies with those statuses (a 400 is Django's `SessionInterrupted`: the
  session vanished between its load and its save); **no answer**: refused, reset or timed out.
- **p50 / p99**: latency of answered requests sent during the fault window (first fault to last
  mend) and after it (in a run without faults, all of them).

## Engines

- **django_msm**: `SESSION_ENGINE = "django_msm.session"` with `django_msm.middleware.
  SessionMiddleware`, non-sticky, `MEMCACHED_NODES` = every node (primary and backup copies),
  `OPERATION_TIMEOUT` 0.5 s, `RETRY_TIMEOUT` 1 s, `LOCKING_MODE = "all"`, `LOCK_WAIT_TIMEOUT` 3 s.
  On Redis the same, with `id:redis://…` nodes.
- **Django cache**: `django.contrib.sessions.backends.cache` on `PyMemcacheCache` over all
  nodes (pymemcache `HashClient`), with the options of the experiments in
  `reference/peers.md`: `connect_timeout` and `timeout` 0.5 s, `dead_timeout` 3 s (the defaults
  have no timeout at all: a paused node would hang requests for good).
- **Django cached_db**: `django.contrib.sessions.backends.cached_db`, the same cache in front of
  the SQLite file both instances share (WAL, `IMMEDIATE` transactions); its latency is
  SQLite's, not what PostgreSQL would give.
- **django-redis**: Django's cache engine on `django_redis.cache.RedisCache`, `LOCATION` =
  [n1, n2] with n2 a replica of n1 (and n3, on three nodes: django-redis writes to the first and
  reads from the others), `SOCKET_TIMEOUT` and `SOCKET_CONNECT_TIMEOUT` 0.5 s.

No peer locks a session, so their *updates lost* are mostly the concurrent pairs of one user
(`reference/peers.md`, finding 5) and show up without any fault (`--schedule baseline`). Their
*lost*, *logged out* and *resurrected* are findings 1 and 2 of the same survey, reproduced here
over HTTP: a read error counts as "no session" and deletes the cookie, a crashed node takes its
shard of the sessions along, and a logout that only reaches a rerouted node is undone when the
paused node comes back."""
