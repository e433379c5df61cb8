"""The memcached tables of the report: non-sticky (issue 2), sticky (issue 3), locked (issue 4).

Each function returns the lines of one table as plain text; ``docs.py`` puts them together.
"""

from __future__ import annotations

import statistics

from .results import Results, summary, verdict

# Targets: msm's per-request cost over Django's cache engine (issue 2: non-sticky;
# issue 3: sticky, with a warm local copy).
TARGETS = {"read": 1.0, "modify": 1.2, "create": 1.2}
STICKY_TARGETS = {"read": 0.5, "modify": 1.2}
SHAPES = ("read", "modify", "create")


def ratio_cells(results: Results, shape: str, engine: str, against: str) -> str:
    """``0.84× (0.69–0.90)``: the median per-round ratio and its interquartile range."""
    ratio, low, high = summary(results.ratios(shape, engine=engine, against=against))
    return f"{ratio:5.2f}× ({low:.2f}–{high:.2f})".ljust(21)


def target_cells(results: Results, shape: str, engine: str, against: str,
                 target: float | None) -> str:
    """Ratio, IQR, target, verdict and the same ratio by batch means."""
    ratio, _, _ = summary(results.ratios(shape, engine=engine, against=against))
    by_mean = statistics.median(results.ratios(shape, engine=engine, against=against, mean=True))
    goal = f"≤{target:.1f}×  {verdict(ratio, target):<7}" if target else "–       –      "
    return f"{ratio_cells(results, shape, engine, against)}  {goal}  {by_mean:5.2f}×"


def headline(results: Results) -> list[str]:
    lines = [
        "Non-sticky: django_msm (stock SessionMiddleware) vs Django's cache engine",
        "shape     django µs  msm µs  msm/django (IQR)       target  verdict  by mean",
        "--------  ---------  ------  ---------------------  ------  -------  -------",
    ]
    for shape, target in TARGETS.items():
        django, msm = results.median("django", shape), results.median("msm", shape)
        cells = target_cells(results, shape, "msm", "django", target)
        lines.append(f"{shape:<8}  {django:9.1f}  {msm:6.1f}  {cells}")
    base_dj, base_msm = results.median("django", "baseline"), results.median("msm", "baseline")
    lines.append(f"no-op     {base_dj:9.1f}  {base_msm:6.1f}  (request cycle, session untouched)")
    return lines


def stricter(results: Results) -> list[str]:
    lines = [
        "",
        "Stricter views (not the targets): the session's share of a request (request minus the",
        "no-op request of the same round), and Django's engine with its connection kept across",
        "requests (its cache's close() a no-op; not a stock set-up):",
        "shape     share: django  msm  msm/django   kept: django  msm/kept  share msm/kept",
    ]
    for shape in SHAPES:
        share_dj = statistics.median(results.shares("django", shape))
        share_msm = statistics.median(results.shares("msm", shape))
        share_ratio = statistics.median(results.ratios(shape, share=True))
        kept = results.median("django-kept", shape)
        kept_ratio = statistics.median(results.ratios(shape, against="django-kept"))
        kept_share = statistics.median(results.ratios(shape, against="django-kept", share=True))
        lines.append(
            f"{shape:<8}  {share_dj:13.1f}  {share_msm:5.1f}  {share_ratio:9.2f}×  "
            f"{kept:12.1f}  {kept_ratio:7.2f}×  {kept_share:13.2f}×"
        )
    kept_noop = results.median("django-kept", "baseline")
    lines.append(f"no-op{kept_noop:52.1f}")
    return lines


def sticky(results: Results) -> list[str]:
    lines = [
        "Sticky: STICKY=True, ROUTE set, django_msm.middleware.SessionMiddleware, warm local copy",
        "(a read asks the host version table; the node only once a second), vs Django's engine",
        "shape     django µs  sticky µs  sticky/django (IQR)    target  verdict  by mean"
        "  local loads/req  share ratio",
        "--------  ---------  ---------  ---------------------  ------  -------  -------"
        "  ---------------  -----------",
    ]
    for shape in SHAPES:
        django, mine = results.median("django", shape), results.median("msm-sticky", shape)
        cells = target_cells(results, shape, "msm-sticky", "django", STICKY_TARGETS.get(shape))
        local = results.stat_per_request("msm-sticky", shape, "loads_local")
        share = statistics.median(results.ratios(shape, "msm-sticky", "django", share=True))
        lines.append(f"{shape:<8}  {django:9.1f}  {mine:9.1f}  {cells}  {local:15.2f}"
                     f"  {share:10.2f}×")
    noop = results.median("msm-sticky", "baseline")
    lines.append(f"no-op     {results.median('django', 'baseline'):9.1f}  {noop:9.1f}")
    lines.append("(share ratio: the same ratio of request minus no-op: the session's own cost)")
    return lines


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"≤{value * 1e6:.0f}"


def locked(results: Results) -> list[str]:
    lines = [
        "Locked: LOCKING_MODE='all', uncontended (one client per session), vs the same engine",
        "and middleware unlocked (msm-mw); lock_wait from django_msm.core.stats.statistics",
        "shape     unlocked µs  locked µs  locked/unlocked (IQR)  lock cost µs  locked/django"
        "  locks/req  lock_wait p50 µs  p95 µs  mean µs",
    ]
    for shape in ("read", "modify"):
        unlocked, mine = results.median("msm-mw", shape), results.median("msm-locked", shape)
        cost = statistics.median(results.differences(shape, "msm-locked", "msm-mw"))
        to_django = statistics.median(results.ratios(shape, "msm-locked", "django"))
        locks = results.stat_per_request("msm-locked", shape, "locks_acquired")
        p50 = results.percentile("msm-locked", shape, "lock_wait", 0.50)
        p95 = results.percentile("msm-locked", shape, "lock_wait", 0.95)
        stats = results.stats["msm-locked", shape]
        waits = stats["lock_wait:count"]
        mean = f"{stats['lock_wait:sum'] / waits * 1e6:.1f}" if waits else "–"
        lines.append(
            f"{shape:<8}  {unlocked:11.1f}  {mine:9.1f}  "
            f"{ratio_cells(results, shape, 'msm-locked', 'msm-mw')}  {cost:12.1f}  "
            f"{to_django:12.2f}×  {locks:9.2f}  {_seconds(p50):>16}  {_seconds(p95):>6}  {mean:>7}"
        )
    mw = statistics.median(results.ratios("read", "msm-mw", "msm"))
    lines.append(f"(msm-mw/msm, read: {mw:.2f}×: django_msm's middleware over the stock one)")
    return lines


def commands(results: Results, engines: tuple[str, ...]) -> list[str]:
    lines = ["memcached commands per request (server stats over every node;",
             "store = set/add/replace/ms; new conn = connections the server accepted):",
             "shape     engine        get  store  touch  delete  new conn"]
    for shape in SHAPES:
        for engine in engines:
            ops = results.ops_per_request(engine, shape)
            lines.append(
                f"{shape:<8}  {engine:<11}  {ops.get('get', 0):4.1f}  {ops.get('store', 0):5.1f}  "
                f"{ops.get('touch', 0):5.1f}  {ops.get('delete', 0):6.1f}  "
                f"{ops.get('connect', 0):8.1f}"
            )
    return lines
