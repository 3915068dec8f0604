"""The notebooks here are fixtures executed by unit tests (tests/test_viz.py), not lessons:
nbval must not collect them."""

collect_ignore_glob = ["*.ipynb"]
