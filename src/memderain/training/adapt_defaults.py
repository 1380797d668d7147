"""Defaults of test-time adaptation (:mod:`memderain.training.adapt`), as plain constants.

The command-line parser of ``memderain derain`` (which has ``--adapt``) and ``memderain adapt``
reads them from here, so building it does not import the training code (0.1 s of a one-photo
``derain``). :class:`~memderain.training.adapt.AdaptConfig` uses the same constants.
"""

# names of :data:`memderain.training.adapt.OBJECTIVES` (a test keeps the two in step)
OBJECTIVE_NAMES = ("siamese", "siamese+agree", "siamese+floor", "median", "siamese+median",
                   "median+edges", "median+edges+brightness")
# the clip's median as target on its static pixels, and its edges: best of the three median
# objectives on all six rendered-truth clips by the clean-frame truth (benchmarks/adapt_truth.py,
# docs/real-rain.md); "median" before issue 31
DEFAULT_OBJECTIVE = "median+edges"
MINUTES = 4.0  # wall-time budget of the whole run, reading the clip included
CROP_SIZE = 96
BATCH_SIZE = 4  # pairs per step
FOCUS = 0.5  # share of crops drawn where the frame has rain (ClipPairs.focus)
LR = 1e-3
HOLDOUT_EVERY = 5  # every 5th frame is left out of training and scores the result
# the never-worse check scores at most this many pixels of held-out frames (evenly spread, at
# least one frame per clip): three 1080p frames. Each checked frame costs two passes of the
# network in float32 (about 9 s at 1080p on 2 AVX2 cores); a 47-frame 1080p clip spent its
# whole 4 minutes reading and checking 9 held-out frames and trained 0 steps.
CHECK_PIXELS = 3 * 1920 * 1080
