"""Data: time-lapse datasets, pseudo ground truth, synthetic rain and frame extraction.

Modules (import the one you need; nothing heavy is imported here):

* ``transforms``      uint8 / PIL <-> float tensors, [0, 1] <-> [-1, 1], paired crop / flip
* ``scenes``          finding scene folders of frames on disk
* ``timelapse``       :class:`TimeLapseDataset` (pairs of frames of one static scene)
* ``pseudo_gt``       :class:`PseudoGTDataset` (frame + temporal median/mean, ablations B_a/B_b)
* ``synthetic_rain``  vectorised rain-streak renderer and ``RainConfig`` presets
* ``synth``           renders synthetic time-lapse scenes from clean photos (``memderain synth``)
* ``video_frames``    samples frames of a static-camera video (``memderain extract-frames``)
* ``static_clip``     real footage made static: alignment, temporal median, motion masks
* ``clip_pairs``      Siamese pairs of real clips (masks, median) and the real/synthetic mix
"""
