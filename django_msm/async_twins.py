"""The async API of a session store, run on worker threads.

Django's ``SessionBase`` runs its sync methods with ``sync_to_async(thread_sensitive=True)``:
on one shared thread under ASGI. A load that waits for a session lock would then block the very
thread the lock holder needs to save and release it, a deadlock until the lock expires (found
by tests/test_async_views.py: 5 concurrent increments kept 1). django_msm's stores are
thread-safe, so the async twins run on worker threads instead.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async


class WorkerThreadAsyncMixin:
    """For a SessionBase subclass whose load/exists/create/save/delete are thread-safe."""

    load: Any
    exists: Any
    create: Any
    save: Any
    delete: Any

    async def aload(self) -> dict[str, Any]:
        return await sync_to_async(self.load, thread_sensitive=False)()

    async def aexists(self, session_key: str | None) -> bool:
        return await sync_to_async(self.exists, thread_sensitive=False)(session_key)

    async def acreate(self) -> None:
        await sync_to_async(self.create, thread_sensitive=False)()

    async def asave(self, must_create: bool = False) -> None:
        await sync_to_async(self.save, thread_sensitive=False)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        await sync_to_async(self.delete, thread_sensitive=False)(session_key)

