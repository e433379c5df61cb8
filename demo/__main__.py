"""``python -m demo``: start the demo cluster, run the narrated tour, serve until Ctrl-C.

``--tour-only`` (``make tour``) exits after the tour: 0 only if every step behaved as narrated.
Whatever happens (failure, Ctrl-C, SIGTERM), every process the cluster started is stopped.
``python -m demo restart n1`` asks the running demo to start one of its processes again.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from . import control
from .cluster import APP_NAMES, MODES, NODE_IDS, Cluster
from .serving import Serving
from .tour import Tour


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=(*MODES, "all"), default="non-sticky",
                        help="engine mode; 'all' runs the tour once per mode (with --tour-only)")
    parser.add_argument("--tour-only", action="store_true", help="exit after the tour")
    parser.add_argument("--skip-tour", action="store_true", help="just serve")
    args = parser.parse_args(argv)
    if args.mode == "all" and not args.tour_only:
        parser.error("--mode all needs --tour-only")
    return args


def _mend(cluster: Cluster) -> None:
    """Start again what the tour killed, so the cluster is whole for the visitor."""
    for node_id, node in cluster.nodes.items():
        if node.process is None or node.process.poll() is not None:
            print(f"starting memcached {node_id} again")
            cluster.restart_node(node_id)
    for name, app in cluster.apps.items():
        if not app.alive:
            print(f"starting app instance {name} again")
            cluster.restart_app(name)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through Cluster.__exit__, which stops everything


def _run(mode: str, tour: bool, serve: bool) -> bool:
    """Start a cluster in ``mode``, tour it, serve it until Ctrl-C; True if the tour passed."""
    print(f"Starting the demo cluster ({mode}): memcached {' and '.join(NODE_IDS)}, gunicorn "
          f"{' and '.join(APP_NAMES)} (testproject), nginx in front")
    with Cluster(mode, narrate=True) as cluster:
        print(f"The shop: {cluster.url}/", flush=True)
        ok = not tour or Tour(cluster).run()
        if not ok:
            cluster.keep_workdir = True
            print(f"logs kept in {cluster.workdir}")
        if serve:
            _mend(cluster)
            Serving(cluster).run()
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["restart"]:
        return control.main(argv[1:])
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    modes = MODES if args.mode == "all" else (args.mode,)
    try:
        results = [_run(mode, not args.skip_tour, not args.tour_only) for mode in modes]
    except KeyboardInterrupt:
        print("\nStopped everything the demo started.")
        return 0
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
