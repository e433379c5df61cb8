"""Async views for tests/test_async_views.py."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import path


async def count(request):
    value = await request.session.aget("n", 0)
    await request.session.aset("n", value + 1)
    return JsonResponse({"n": value + 1})


async def login(request):
    await request.session.aset("user", "alice")
    await request.session.acycle_key()
    return JsonResponse({"key": request.session.session_key})


urlpatterns = [path("count/", count), path("login/", login)]
