"""Test helper: count the calls of a module-level function while a test runs."""

from __future__ import annotations

import functools


def count_calls(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records each call; returns the list of calls
    (one entry per call). ``monkeypatch`` restores the original after the test."""
    calls = []
    original = getattr(module, name)

    @functools.wraps(original)
    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls
