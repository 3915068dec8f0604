"""Published numbers: what a paper (or its official code) reports about a model, in one form.

Every model family keeps the numbers it is tested against in one class attribute,
``PUBLISHED: dict[str, Published]``, for example::

    class C3D(nn.Module):
        PUBLISHED = {
            "params": Published(79_991_015, "parameters", "preset 'paper' (487-way Sports-1M head)",
                                "Tran et al., arXiv:1412.0767, Table 1 / official C3D model"),
        }

and the model's tests recount each one (``count_params(build_model(name, "paper"))``) and
compare to the digit. A number alone is ambiguous (with or without the classifier? multiply-adds
or FLOPs? for which input?): ``counts`` and ``convention`` say it, ``source`` says where a reader
can check it (a paper with its arXiv link and table, or an official repository).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Published"]


@dataclass(frozen=True)
class Published:
    """One published number.

    Args:
        value: the number as published (an int for counts, a float for e.g. GMACs).
        counts: what it counts: "parameters", "multiply-adds", "GMACs", ...
        convention: the configuration it holds for (preset, head size, input size, what is
            included or left out).
        source: where to check it: paper title or authors with arXiv link and table/equation,
            or an official code repository.
    """

    value: int | float
    counts: str
    convention: str
    source: str

    def __post_init__(self):
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise TypeError(f"Published.value must be a number, got {type(self.value).__name__}: {self.value!r}")
        for name in ("counts", "convention", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"Published.{name} must be a non-empty string, got {getattr(self, name)!r}")
