"""Training: configuration (:mod:`.config`), the loop (:mod:`.trainer`), train-state
checkpoints (:mod:`.checkpoint`) and multi-process helpers (:mod:`.distributed`).

Import submodules directly; this package imports nothing heavy on its own.
"""
