"""Paper experiments reproduced with one command each (``memderain experiment ...``).

* :mod:`memderain.experiments.scale` - named sizes (``cpu``, ``smoke``) of an experiment.
* :mod:`memderain.experiments.variants` - the rows of the paper's Tables IV and V.
* :mod:`memderain.experiments.ablations` - train, evaluate and tabulate every row, resumably.
* :mod:`memderain.experiments.ablation_report` - ``ablations.md`` / ``.csv`` / ``summary.json``.

Import submodules directly; this package imports nothing heavy on its own.
"""
