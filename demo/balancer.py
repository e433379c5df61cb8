"""nginx from Debian as the demo's load balancer, with a config written for the cluster's ports.

Non-sticky: plain round robin, a refused or timed-out upstream is retried on the other one
(``proxy_next_upstream``), which is all an app-server failover needs when sessions live in
memcached. Sticky: requests go to the instance named by the route suffix of the session key
(``<key>-n1.app2`` goes to app2), the other instance being its ``backup`` server, the way
mod_jk honours Tomcat's jvmRoute.
"""

from __future__ import annotations

import socket
from pathlib import Path

from .processes import Process, nginx_binary

COOKIE = "sessionid"


def _upstream(name: str, servers: dict[str, int], backup_of: str | None = None) -> str:
    lines = [f"  upstream {name} {{"]
    for server, port in servers.items():
        role = " backup" if backup_of is not None and server != backup_of else ""
        lines.append(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s{role};")
    lines.append("  }")
    return "\n".join(lines)


def _routing(servers: dict[str, int], sticky: bool) -> tuple[str, str]:
    """Upstream blocks, and what ``proxy_pass`` names."""
    blocks = [_upstream("shop", servers)]
    if not sticky:
        return blocks[0], "shop"
    routes = [f"    ~\\.{name}$ shop_{name};" for name in servers]
    blocks += [_upstream(f"shop_{name}", servers, backup_of=name) for name in servers]
    mapping = [f"  map $cookie_{COOKIE} $shop_upstream {{", "    default shop;", *routes, "  }"]
    blocks.append("\n".join(mapping))
    return "\n".join(blocks), "$shop_upstream"


def render_config(workdir: Path, port: int, servers: dict[str, int], sticky: bool) -> str:
    """The whole nginx.conf: everything (pid, logs, temp files) inside ``workdir``."""
    tmp = workdir / "nginx-tmp"
    temp_paths = "\n".join(
        f"  {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                         "uwsgi", "scgi")
    )
    upstreams, target = _routing(servers, sticky)
    return f"""# written by demo/balancer.py for one demo run
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "nginx-error.log"} warn;
events {{ worker_connections 256; }}
http {{
  access_log {workdir / "nginx-access.log"};
{temp_paths}
{upstreams}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://{target};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_next_upstream error timeout http_502;
      proxy_next_upstream_tries 2;
      proxy_connect_timeout 2s;
      proxy_read_timeout 30s;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
"""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class LoadBalancer(Process):
    """nginx in the foreground (``daemon off``), so the cluster owns and stops it."""

    name = "nginx"

    def __init__(self, port: int, servers: dict[str, int], workdir: Path, sticky: bool = False):
        super().__init__(workdir / "nginx.out")
        self.port = port
        self.conf = workdir / "nginx.conf"
        (workdir / "nginx-tmp").mkdir(exist_ok=True)
        self.conf.write_text(render_config(workdir, port, servers, sticky))
        self.workdir = workdir

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoadBalancer:
        binary = nginx_binary()
        # -e: the error log before the config is read (else /var/log/nginx, root's).
        self.spawn([binary, "-e", str(self.workdir / "nginx-error.log"), "-p", str(self.workdir),
                    "-c", str(self.conf), "-g", "daemon off;"])
        self.wait_until(lambda: _listening(self.port), "nginx")
        return self
