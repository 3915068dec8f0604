"""Data: ToyKitchens, moving glyphs, EPIC-KITCHENS-100 and frame-folder loaders, samplers, transforms.

The bottom floor of the library: nothing here imports anything else of lecturekit.
"""

from .cache import cache_dir, repo_root

__all__ = ["cache_dir", "repo_root"]
