"""torch.hub entry points, for loading from a local clone of this repository::

    model = torch.hub.load("path/to/memderain", "memderain", source="local")
    model = torch.hub.load("path/to/memderain", "memderain", source="local", weights="ckpt.pt")

``memderain`` returns the :class:`memderain.MemDerain` network in eval mode (input and output
images in [-1, 1], see ``model(x).background``); ``memderain_01`` returns the same network
wrapped to take and return images in [0, 1] (what ``memderain export`` writes).
"""

import sys
from pathlib import Path

dependencies = ["torch", "numpy"]

_SRC = Path(__file__).resolve().parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:  # a clone that was not pip-installed
    sys.path.insert(0, str(_SRC))


def memderain(weights=None, device="cpu"):
    """MemDerain in eval mode from ``weights`` (default: the shipped checkpoint)."""
    from memderain.export import load_for_export

    wrapper, _ = load_for_export(weights)
    return wrapper.model.to(device)


def memderain_01(weights=None, device="cpu"):
    """The network as an nn.Module mapping (N, 3, H, W) images in [0, 1] to [0, 1]."""
    from memderain.export import load_for_export

    wrapper, _ = load_for_export(weights)
    return wrapper.to(device)
