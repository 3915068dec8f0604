"""Checks of notebook 02 (fusion: early, late, slow)."""

from __future__ import annotations

import torch  # noqa: F401

from ..checking import Case, Check, CheckResult, Mistake, check, register_check  # noqa: F401
