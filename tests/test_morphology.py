import numpy as np
import pytest
from scipy import ndimage

from memderain.data import morphology


@pytest.mark.parametrize("shape", [(37, 53), (8, 5), (120, 90)])
@pytest.mark.parametrize("size", [1, 3, 5, 9])
def test_same_as_scipy_with_borders(shape, size):
    rng = np.random.default_rng(size * 100 + shape[0])
    mask = rng.random(shape) > 0.6
    mask[:2] = True  # runs into the border, where the two libraries' defaults differ
    mask[:, -1] = True
    box = np.ones((size, size), bool)
    assert (morphology.opening(mask, size) == ndimage.binary_opening(mask, box)).all()
    assert (morphology.dilate(mask, size) == ndimage.binary_dilation(mask, box)).all()
    assert (morphology.erode(mask, size) == ndimage.binary_erosion(mask, box)).all()
    assert (morphology.erode(mask, size, border=True)
            == ndimage.binary_erosion(mask, box, border_value=1)).all()
    if size == 3:  # and the operations do something on this mask
        assert morphology.opening(mask, 3).sum() < mask.sum() < morphology.dilate(mask, 3).sum()
