"""Every example in the library's docstrings runs and prints what it says (doctest).

The examples are documentation a student reads next to the code; a test keeps them true. Examples
that need a rendered world or a long computation carry ``# doctest: +SKIP`` and say so in the prose.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lecturekit

# the grading worker and the command line run as programs (they read sys.argv / pipes on import)
NOT_IMPORTABLE_AS_MODULES = {"lecturekit.course._worker", "lecturekit.__main__", "lecturekit.course.__main__"}
MODULES = sorted(m.name for m in pkgutil.walk_packages(lecturekit.__path__, "lecturekit.")
                 if m.name not in NOT_IMPORTABLE_AS_MODULES)


def test_the_package_has_modules_with_examples():
    with_examples = [name for name in MODULES
                     if doctest.DocTestFinder().find(importlib.import_module(name))
                     and any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))]
    assert len(MODULES) > 40 and len(with_examples) > 20, (len(MODULES), len(with_examples))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, report=True, verbose=False,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed (see above)"
