"""Evaluation: paper-convention metrics, benchmark loaders and no-reference scores.

* :mod:`memderain.evaluation.metrics` - PSNR / SSIM (Y of MATLAB rgb2ycbcr and RGB), VIF, FSIM.
* :mod:`memderain.evaluation.benchmarks` - paired rainy/clean loaders with layout detection.
* :mod:`memderain.evaluation.no_reference` - NIQE for real rain photos without ground truth.
* :mod:`memderain.evaluation.peer` - streak removal on real photos against a peer's outputs.
"""
