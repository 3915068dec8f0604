"""Course tooling: notebook execution, exercise generation, checks and grading.

The top floor: it may import anything of lecturekit; nothing imports it.
"""
