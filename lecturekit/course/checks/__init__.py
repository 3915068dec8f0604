"""The course's registered checks: one module per notebook, one block per exercise, and their ``check_<name>`` shortcuts.

Each block: a ``_cases(g)`` function (random inputs from the seeded generator ``g`` plus the
edge cases students get wrong, each with a hint), the known mistakes used to diagnose a wrong
answer, and one ``register_check(Check(...))``. The references are the library's own
implementations, named by ``"module:function"`` and imported only when a check runs.

Exercise ids follow the notebook numbers: 01.1 = the first exercise of notebook 01.
"""

from __future__ import annotations

# One module per notebook; importing it registers its checks. Explicit, so a student can see
# every check module at a glance.
from . import nb01, nb02, nb03, nb04, nb05, nb06  # noqa: F401
from . import nb07  # noqa: F401
from . import nb08  # noqa: F401
from . import nb09  # noqa: F401
from . import nb10  # noqa: F401
from . import nb11  # noqa: F401
from . import nb12  # noqa: F401
from .nb01 import check_topk_accuracy
from .nb04 import check_temporal_shift

__all__ = ["check_topk_accuracy", "check_temporal_shift"]
