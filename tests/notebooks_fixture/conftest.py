"""The notebooks here are fixtures executed by unit tests (tests/test_viz.py,
tests/test_outside_checkout.py), not lessons: nbval must not collect them (a test passes one
explicitly when it wants nbval to run it)."""

collect_ignore_glob = ["*.ipynb"]
