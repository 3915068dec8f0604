"""Checks of notebook 05 (motion and long-term structure)."""

from __future__ import annotations

import torch  # noqa: F401

from ..checking import Case, Check, CheckResult, Mistake, check, register_check  # noqa: F401
