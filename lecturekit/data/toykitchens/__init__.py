"""ToyKitchens: a procedural, offline stand-in for EPIC-KITCHENS-100.

A seed builds a world of 12 kitchens (each with its own look and recipe preferences), 12 nouns
(sprites: shape x colour), 11 verbs (motions) and the valid (verb, noun) actions; long videos
are sequences of actions drawn from a recipe grammar (latent intentions), rendered at a nominal
8 frames/s, 32x32 (or 64x64). Views give trimmed clips, early (partial) observations and
anticipation windows as torch Datasets; ``write_epic`` exports the EPIC-KITCHENS-100 layout.

Files: ``world.py`` (vocabulary, grammar automaton, kitchens, video scripts), ``render.py``
(vectorised rasteriser), ``views.py`` (Datasets, storyboards), ``core.py`` (the world object).

What the world is built to make measurable (each property has a test in
``tests/test_toykitchens*.py``):

* time-reversal verb pairs (take/put, open/close, turn-cw/turn-ccw): the frames of one are the
  frames of the other in reverse order, and every recipe holds each noun as often with one
  member of a pair as with the other, so neither a single frame, nor order-free pooling, nor
  the object itself tells them apart;
* shared prefixes: shake and pour begin with exactly the approach of take;
* repetitive motions: cut (strikes, the object splits), stir (a spoon circles), wash (droplets,
  jitter);
* a hand (skin-coloured arm) reaches toward the next object before each action: a genuine
  anticipation cue, partial because decoy objects sit on the counter too;
* recipes with optional and alternative steps and shared steps, Zipf-distributed, with
  kitchen-specific preferences: the last action is a weak predictor, the history a strong one,
  and kitchen appearance is a shortcut that unseen kitchens break;
* nuisances (durations, positions, sizes, timing, decoys, camera) are drawn from a random
  stream independent of the labels;
* opt-in (``ToyKitchens(cues=C)``, off by default, the default world unchanged): a decor
  "poster" whose colour predicts the upcoming action in the seen kitchens and is independent
  of it in the unseen ones, shown early in the anticipation window: a visual shortcut that
  unseen kitchens break (``lecturekit.analysis.aga.aga_generalisation`` measures who overfits it).

Verbs: 11 (take, put, open, close, turn-cw, turn-ccw, shake, pour, cut, stir, wash). Actions: 57 valid pairs. Frame indices are 0-based in arrays and labels
(``start``/``stop`` inclusive); the EPIC export is 1-based as the official files.
"""

from .core import SPLITS, ToyKitchens, symmetric_indices
from .views import ToyClip, ToyView, storyboard_png

__all__ = ["SPLITS", "ToyClip", "ToyKitchens", "ToyView", "storyboard_png", "symmetric_indices"]
