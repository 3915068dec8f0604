"""Checks of notebook 03 (3D convolutions: C3D, P3D, R(2+1)D)."""

from __future__ import annotations

import torch  # noqa: F401

from ..checking import Case, Check, CheckResult, Mistake, check, register_check  # noqa: F401
