"""FSIM / FSIMc (Zhang, Zhang, Mou, Zhang, IEEE TIP 2011), a numpy port of ``FeatureSIM.m``.

FSIM weights the similarity of two feature maps by the larger phase congruency (PC):

    S_PC = (2 PC1 PC2 + T1) / (PC1^2 + PC2^2 + T1)        T1 = 0.85     (paper Eq. 5)
    S_G  = (2 G1 G2 + T2) / (G1^2 + G2^2 + T2)             T2 = 160      (Eq. 6)
    FSIM = sum(S_PC S_G PC_m) / sum(PC_m),  PC_m = max(PC1, PC2)        (Eq. 7-8)

as in the authors' MATLAB code: luminance Y = 0.299 R + 0.587 G + 0.114 B (0..255), automatic
down-sampling by F = round(min(H, W) / 256) (F x F mean filter, ``conv2 'same'``, then every
F-th pixel), gradient magnitude from the Scharr operator ``[3 0 -3; 10 0 -10; 3 0 -3] / 16``,
PC from Kovesi's ``phasecong2`` (log-Gabor filters: 4 scales, 4 orientations, minimum
wavelength 6, scale factor 2, sigma_f/f0 = 0.55, angular spread ratio 1.2, noise threshold
k = 2 standard deviations, rescaled by 1/1.7). FSIMc adds the YIQ chrominance terms
(T3 = T4 = 200, lambda = 0.03).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import convolve2d

NSCALE, NORIENT, MIN_WAVELENGTH, MULT = 4, 4, 6.0, 2.0
SIGMA_ON_F, D_THETA_ON_SIGMA, NOISE_K, EPSILON = 0.55, 1.2, 2.0, 1e-4
T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03
SCHARR_X = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], dtype=np.float64) / 16
SCHARR_Y = SCHARR_X.T.copy()


def _matlab_round(x: float) -> int:
    return math.floor(x + 0.5)  # round half away from zero for x >= 0


def conv2_same(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``conv2(img, kernel, 'same')``: zero padding, central part of the full
    convolution starting at ``floor(size(kernel) / 2)`` (differs from scipy for even sizes)."""
    full = convolve2d(img, kernel, mode="full")
    r0, c0 = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[r0:r0 + img.shape[0], c0:c0 + img.shape[1]]


def _centered_grid(n: int) -> np.ndarray:
    """Frequency coordinates normalised to +-0.5, as Kovesi builds them (odd/even sizes)."""
    if n % 2:
        return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    return np.arange(-n / 2, n / 2) / n


def _radius_theta(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.meshgrid(_centered_grid(cols), _centered_grid(rows))
    return np.sqrt(x**2 + y**2), np.arctan2(-y, x)


def lowpass_filter(rows: int, cols: int, cutoff: float = 0.45, n: int = 15) -> np.ndarray:
    """Kovesi's ``lowpassfilter``: Butterworth 1 / (1 + (r / cutoff)^(2n)), origin at corners."""
    radius, _ = _radius_theta(rows, cols)
    return np.fft.ifftshift(1.0 / (1.0 + (radius / cutoff) ** (2 * n)))


def _log_gabor_bank(rows: int, cols: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Radial log-Gabor components (per scale) and angular spreads (per orientation)."""
    radius, theta = _radius_theta(rows, cols)
    radius, theta = np.fft.ifftshift(radius), np.fft.ifftshift(theta)
    radius[0, 0] = 1.0  # avoid log(0); the DC value of every filter is reset to 0 below
    sintheta, costheta = np.sin(theta), np.cos(theta)
    lp = lowpass_filter(rows, cols, 0.45, 15)
    log_gabor = []
    for s in range(NSCALE):
        fo = 1.0 / (MIN_WAVELENGTH * MULT**s)
        lg = np.exp(-(np.log(radius / fo) ** 2) / (2 * math.log(SIGMA_ON_F) ** 2)) * lp
        lg[0, 0] = 0.0
        log_gabor.append(lg)
    theta_sigma = math.pi / NORIENT / D_THETA_ON_SIGMA
    spread = []
    for o in range(NORIENT):
        angl = o * math.pi / NORIENT
        ds = sintheta * math.cos(angl) - costheta * math.sin(angl)
        dc = costheta * math.cos(angl) + sintheta * math.sin(angl)
        dtheta = np.abs(np.arctan2(ds, dc))
        spread.append(np.exp(-(dtheta**2) / (2 * theta_sigma**2)))
    return log_gabor, spread


def phase_congruency(im: np.ndarray) -> np.ndarray:
    """Kovesi's ``phasecong2`` as called by ``FeatureSIM.m`` (sum over orientations)."""
    rows, cols = im.shape
    imagefft = np.fft.fft2(im)
    log_gabor, spread = _log_gabor_bank(rows, cols)
    energy_all = np.zeros((rows, cols))
    an_all = np.zeros((rows, cols))
    for o in range(NORIENT):
        sum_e = np.zeros((rows, cols))
        sum_o = np.zeros((rows, cols))
        sum_an = np.zeros((rows, cols))
        eo, ifft_filters = [], []
        em_n = 0.0
        for s in range(NSCALE):
            filt = log_gabor[s] * spread[o]
            ifft_filters.append(np.real(np.fft.ifft2(filt)) * math.sqrt(rows * cols))
            resp = np.fft.ifft2(imagefft * filt)
            eo.append(resp)
            sum_an += np.abs(resp)
            sum_e += resp.real
            sum_o += resp.imag
            if s == 0:
                em_n = float(np.sum(filt**2))
        # Weighted mean phase direction, then energy = sum An (cos(dphi) - |sin(dphi)|).
        x_energy = np.sqrt(sum_e**2 + sum_o**2) + EPSILON
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        energy = np.zeros((rows, cols))
        for resp in eo:
            e, od = resp.real, resp.imag
            energy += e * mean_e + od * mean_o - np.abs(e * mean_o - od * mean_e)
        # Noise compensation from the smallest scale (Rayleigh statistics of the energy).
        median_e2n = float(np.median(np.abs(eo[0]) ** 2))
        noise_power = (-median_e2n / math.log(0.5)) / em_n
        est_sum_an2 = sum(f**2 for f in ifft_filters)
        est_sum_aiaj = sum(ifft_filters[i] * ifft_filters[j]
                           for i in range(NSCALE - 1) for j in range(i + 1, NSCALE))
        est_noise_energy2 = (2 * noise_power * float(np.sum(est_sum_an2))
                             + 4 * noise_power * float(np.sum(est_sum_aiaj)))
        tau = math.sqrt(est_noise_energy2 / 2)
        threshold = tau * math.sqrt(math.pi / 2) + NOISE_K * math.sqrt((2 - math.pi / 2) * tau**2)
        energy = np.maximum(energy - threshold / 1.7, 0.0)
        energy_all += energy
        an_all += sum_an
    return energy_all / an_all


def _downsample(planes: list[np.ndarray], rows: int, cols: int) -> list[np.ndarray]:
    f = max(1, _matlab_round(min(rows, cols) / 256))
    if f == 1:
        return planes
    kernel = np.full((f, f), 1.0 / (f * f))
    return [conv2_same(p, kernel)[::f, ::f] for p in planes]


def feature_similarity(image_ref: np.ndarray, image_dis: np.ndarray) -> tuple[float, float]:
    """``[FSIM, FSIMc] = FeatureSIM(imageRef, imageDis)`` for uint8 (or 0..255 float) images,
    HxW grey or HxWx3 RGB. For grey images FSIMc == FSIM."""
    ref = np.asarray(image_ref, dtype=np.float64)
    dis = np.asarray(image_dis, dtype=np.float64)
    if ref.shape != dis.shape:
        raise ValueError(f"image shapes differ: {ref.shape} vs {dis.shape}")
    rows, cols = ref.shape[:2]
    if ref.ndim == 3:
        def yiq(im):
            r, g, b = im[..., 0], im[..., 1], im[..., 2]
            return (0.299 * r + 0.587 * g + 0.114 * b, 0.596 * r - 0.274 * g - 0.322 * b,
                    0.211 * r - 0.523 * g + 0.312 * b)
        y1, i1, q1 = yiq(ref)
        y2, i2, q2 = yiq(dis)
    else:
        y1, y2 = ref, dis
        i1 = i2 = q1 = q2 = np.ones((rows, cols))
    y1, y2, i1, i2, q1, q2 = _downsample([y1, y2, i1, i2, q1, q2], rows, cols)

    pc1, pc2 = phase_congruency(y1), phase_congruency(y2)
    g1 = np.hypot(conv2_same(y1, SCHARR_X), conv2_same(y1, SCHARR_Y))
    g2 = np.hypot(conv2_same(y2, SCHARR_X), conv2_same(y2, SCHARR_Y))

    s_pc = (2 * pc1 * pc2 + T1) / (pc1**2 + pc2**2 + T1)
    s_g = (2 * g1 * g2 + T2) / (g1**2 + g2**2 + T2)
    pcm = np.maximum(pc1, pc2)
    fsim_value = float(np.sum(s_g * s_pc * pcm) / np.sum(pcm))
    s_i = (2 * i1 * i2 + T3) / (i1**2 + i2**2 + T3)
    s_q = (2 * q1 * q2 + T4) / (q1**2 + q2**2 + T4)
    # real((S_I S_Q)^lambda): a negative product gives a complex power in MATLAB.
    chroma = np.real(np.power((s_i * s_q).astype(np.complex128), LAMBDA))
    fsimc_value = float(np.sum(s_g * s_pc * chroma * pcm) / np.sum(pcm))
    return fsim_value, fsimc_value
