"""A TestCase mixin that runs a class against its own real memcached cluster."""

from __future__ import annotations

from typing import Any, ClassVar

from tests import visitors
from tests.servers import MemcachedProcess


class ClusterMixin:
    """Start ``node_count`` memcached nodes for the class and point DJANGO_MSM at them."""

    node_count = 2
    msm_settings: ClassVar[dict[str, Any]] = {}
    servers: ClassVar[list[MemcachedProcess]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.servers = [MemcachedProcess(f"n{i + 1}").start() for i in range(cls.node_count)]
        extra = {"OPERATION_TIMEOUT": 1.0, **cls.msm_settings}
        cls._msm_override = visitors.msm_settings(cls.servers, **extra)
        cls._msm_override.enable()
        super().setUpClass()  # type: ignore[misc]

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()  # type: ignore[misc]
        cls._msm_override.disable()
        for server in cls.servers:
            server.stop()
