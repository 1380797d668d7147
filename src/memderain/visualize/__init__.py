"""Figures that look inside the model (paper Figs. 3, 10, 11, 12), written as PNG files.

Everything draws on :class:`matplotlib.figure.Figure` objects directly (the Agg canvas), so
importing this package never changes pyplot's global backend and works without a display.
"""

from memderain.visualize.derain_grid import derain_grid
from memderain.visualize.features import FEATURE_LAYERS, capture_features, plot_features
from memderain.visualize.memory_maps import compute_read_maps, plot_read_maps
from memderain.visualize.tsne import TSNEResult, query_features, tsne_plot

__all__ = [
    "FEATURE_LAYERS",
    "TSNEResult",
    "capture_features",
    "compute_read_maps",
    "derain_grid",
    "plot_features",
    "plot_read_maps",
    "query_features",
    "tsne_plot",
]
