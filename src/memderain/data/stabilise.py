"""Hand-held rain footage: one homography per frame onto a reference view (OpenCV).

A hand-held clip is a static scene seen through a moving camera. Once every frame is warped
onto one reference view, the static-clip pipeline (:mod:`memderain.data.static_clip`: temporal
median, motion masks, adaptation, the clip score) applies as it is. :func:`stabilise_frames`
does the warping, on frames downsized to at most 640 px (homographies scaled back after):

1. **Rain-suppressed luminance** (:func:`rain_suppressed`): a grey-level opening (local
   minimum, then maximum) over a 5x5 window removes bright structures thinner than 5 px, which
   is what rain streaks are; a light Gaussian blur removes codec noise.
2. **Coarse homography** of every frame against the middle frame: ORB features on those
   images, cross-checked matches, RANSAC (``cv2.findHomography``). A fixed overlay gives
   matches that do not move; RANSAC takes them as outliers. Where features fail (or give a
   homography no hand-held camera makes, :func:`_plausible`), the phase-correlation shift.
3. **Reference**: the frame whose view is most central (the smallest largest corner drift to
   any other frame), so the region every frame covers is as large as it gets.
4. **Fixed overlay** (:func:`find_overlay`, on the luminance: thin bright text would vanish in
   the opened images): pixels that stay put in image coordinates while the scene under them
   moves. They are left out of the estimation and, wherever they land in the reference view,
   out of the static mask.
5. **Fine homography** (``cv2.findTransformECC``, ``MOTION_HOMOGRAPHY``) of every frame
   against the temporal median of the warped frames (rain gone, sharp), three rounds, each
   with a new median: first on the opened images over two scales (a wide basin), then twice
   at the working scale on the luminance clipped from above at the scene moved into the frame
   plus 8 grey levels (rain only adds light; an opening is not exactly covariant with
   rotation and heavy rain survives it in places). Masked: the overlay and the **misfit**,
   pixels that differ from the median by more than ``max(6, 4 sigma)`` grey levels in at
   least a fifth of the frames (parallax of what is off the dominant plane, things that move).
6. **One scene?** Every warped frame must correlate at least 0.5 with the reference frame
   (rain-suppressed); else the clip is refused naming the frame.
7. **Common region**: frames are warped (bicubic) into the reference view and cropped to the
   largest axis-aligned rectangle every one of them covers. A clip whose rectangle is below
   ``min_common`` of the frame (:data:`MIN_COMMON_SHARE`, half) is refused with the measured
   share and the largest drift: below that the median, the masks and the training crops stand
   on less than half the picture, the rest of each frame is never learnt from or scored.
   The misfit per frame becomes events of the motion masks.

Homographies map *output* pixels (x, y, 1) of the cropped reference view to pixels of the
frame as read, so anything found in the reference view (a mask, the median) maps back onto
the frames as filmed; ``derain --adapt`` de-rains the original frames, not the warped ones.

Why OpenCV (``opencv-python-headless``): ECC image alignment with homographies, ORB features,
RANSAC and fast warping in one well-kept, widely used wheel without GUI libraries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from memderain.data.clip_frames import ClipError
from memderain.data.static_clip import luminance

MIN_COMMON_SHARE = 0.5  # refuse when every frame covers less than half of the reference view
STABILISE_MODES = ("auto", "off", "on")
_WORK_SIDE = 640  # estimation on frames downsized to at most this longer side
_OPEN = 5  # rain suppression: grey opening window (px at the working scale)
_CLIP = 8.0  # grey levels above the scene kept when rain is clipped away
# ECC stops after this many iterations per scale or a correlation gain below eps: measured on
# the tests' clips, 100 / 1e-6 aligned no better (0.17-0.35 px rms either way) at 2.3x the CPU
_ECC_ITERS, _ECC_EPS = 30, 1e-5
_MIN_MATCHES = 12  # RANSAC inliers needed to trust a feature homography
_MIN_MATCH = 0.5  # a warped frame must correlate this well with the reference frame
_MAX_SCALE_CHANGE = 1.25  # a hand-held homography scales no direction by more than this


@dataclass
class Stabilised:
    """Frames warped onto one reference view and cropped to the region all of them cover."""

    frames: np.ndarray  # (T, H', W', 3) uint8
    homographies: np.ndarray  # (T, 3, 3) float64: output (x, y, 1) -> frame t pixel (x, y, 1)
    reference: int  # index of the frame whose view is the output's
    drift: np.ndarray  # (T,) float: largest displacement of a frame corner vs the reference, px
    common_share: float  # kept rectangle / frame area
    covered_share: float  # area every warped frame covers / frame area (>= common_share)
    overlay: np.ndarray  # (H', W') bool: where a fixed overlay lands in some warped frame
    overlay_share: float  # share of the frame (image coordinates) taken as fixed overlay
    misfit: np.ndarray  # (T, H', W') bool: pixels the homography does not explain
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, left, H', W') in the reference frame
    ecc: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) final ECC correlation
    match: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (T,) vs the reference

    def summary(self) -> dict:
        """Numbers worth recording (JSON-friendly)."""
        return {"stabilised": True, "reference": int(self.reference),
                "drift_px": [round(float(d), 2) for d in self.drift],
                "max_drift_px": round(float(self.drift.max()), 2),
                "common_share": round(self.common_share, 4),
                "covered_share": round(self.covered_share, 4),
                "overlay_share": round(self.overlay_share, 5),
                "misfit_share": round(float(self.misfit.mean()), 5),
                "min_match": round(float(self.match.min()), 4) if self.match.size else None,
                "crop": list(map(int, self.crop))}


# ----------------------------------------------------------------------------- helpers
def _cv2():
    try:
        import cv2
    except ImportError as exc:  # a dependency: only a broken install gets here
        raise ClipError("stabilising a hand-held clip needs OpenCV: pip install "
                        "opencv-python-headless") from exc
    return cv2


def rain_suppressed(rgb: np.ndarray, size: int = _OPEN) -> np.ndarray:
    """float32 luminance of uint8 RGB with bright structures thinner than ``size`` px removed
    (grey opening: rain streaks are bright and thin) and codec noise smoothed."""
    cv2 = _cv2()
    y = cv2.morphologyEx(luminance(rgb), cv2.MORPH_OPEN, np.ones((size, size), np.uint8))
    return cv2.GaussianBlur(y, (0, 0), 1.0)


def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points (x, y) mapped by the 3x3 homography ``h``."""
    p = np.c_[pts, np.ones(len(pts))] @ np.asarray(h, float).T
    return p[:, :2] / p[:, 2:3]


def corner_drift(h: np.ndarray, w: int, hh: int) -> float:
    """Largest displacement (px) of the four corners of a w x hh frame under ``h``."""
    c = np.array([[0, 0], [w - 1, 0], [0, hh - 1], [w - 1, hh - 1]], float)
    return float(np.hypot(*(apply_h(h, c) - c).T).max())


def _scaled(h: np.ndarray, f: float) -> np.ndarray:
    """A homography between images scaled by ``f`` (x' = f x) -> the same at scale 1."""
    d = np.diag([f, f, 1.0])
    out = np.linalg.inv(d) @ h @ d
    return out / out[2, 2]


def _plausible(h: np.ndarray | None, w: int, hh: int) -> bool:
    """A homography a hand-held camera can make: finite, and at every corner of the frame a
    local scale between 1 / :data:`_MAX_SCALE_CHANGE` and :data:`_MAX_SCALE_CHANGE` in every
    direction (no flip, no collapse), corners moved by less than the frame's size."""
    if h is None or not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12:
        return False
    h = np.asarray(h, float) / h[2, 2]
    for c in ((0, 0), (w - 1, 0), (w - 1, hh - 1), (0, hh - 1)):
        den = h[2, 0] * c[0] + h[2, 1] * c[1] + 1.0
        if den <= 0.1:
            return False
        u = (h[:2, :2] @ c + h[:2, 2]) / den
        jac = (h[:2, :2] - np.outer(u, h[2, :2])) / den  # d(mapped point) / d(point)
        if np.linalg.det(jac) <= 0:
            return False
        sv = np.linalg.svd(jac, compute_uv=False)
        if sv.min() < 1 / _MAX_SCALE_CHANGE or sv.max() > _MAX_SCALE_CHANGE:
            return False
    return corner_drift(h, w, hh) < max(w, hh)


def _to8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def _features(cv2, img8: np.ndarray):
    """ORB keypoints and descriptors (low FAST threshold: rain-suppressed images are soft)."""
    orb = cv2.ORB_create(nfeatures=3000, fastThreshold=7, edgeThreshold=15, patchSize=15)
    return orb.detectAndCompute(img8, None)


def _feature_homography(cv2, ref_kd, img_kd) -> tuple[np.ndarray | None, int]:
    """RANSAC homography reference -> image from ORB matches; (None, n) when unreliable."""
    (kr, dr), (ki, di) = ref_kd, img_kd
    if dr is None or di is None or len(kr) < _MIN_MATCHES or len(ki) < _MIN_MATCHES:
        return None, 0
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(dr, di)
    if len(matches) < _MIN_MATCHES:
        return None, len(matches)
    a = np.float32([kr[m.queryIdx].pt for m in matches])
    b = np.float32([ki[m.trainIdx].pt for m in matches])
    h, inl = cv2.findHomography(a, b, cv2.RANSAC, 3.0, maxIters=4000, confidence=0.999)
    n = int(inl.sum()) if inl is not None else 0
    return (h if n >= _MIN_MATCHES else None), n


def _ecc(cv2, template: np.ndarray, img: np.ndarray, h0: np.ndarray,
         mask: np.ndarray | None, levels: int = 2) -> tuple[np.ndarray, float]:
    """ECC homography (template coords -> image coords) refined from ``h0``, coarse to fine.
    ``mask``: valid pixels of ``img``. Returns (h0, -1) when ECC does not converge."""
    h = np.asarray(h0, np.float32).copy()
    cc = -1.0
    for lev in range(levels - 1, -1, -1):
        f = 0.5 ** lev
        if f < 1:
            t = cv2.resize(template, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            i = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            m = (None if mask is None else
                 cv2.resize(mask.astype(np.uint8), (i.shape[1], i.shape[0]),
                            interpolation=cv2.INTER_NEAREST))
        else:
            t, i, m = template, img, None if mask is None else mask.astype(np.uint8)
        hs = _scaled_inv(h, f).astype(np.float32)
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, _ECC_ITERS, _ECC_EPS)
        try:
            cc, hs = cv2.findTransformECC(t, i, hs, cv2.MOTION_HOMOGRAPHY, crit, m, 3)
        except cv2.error:
            return np.asarray(h0, float), -1.0
        h = _scaled(hs.astype(float), f)
    return h / h[2, 2], float(cc)


def _scaled_inv(h: np.ndarray, f: float) -> np.ndarray:
    """A homography at scale 1 -> the same between images scaled by ``f``."""
    d = np.diag([f, f, 1.0])
    out = d @ np.asarray(h, float) @ np.linalg.inv(d)
    return out / out[2, 2]


def _warp_to_ref(cv2, img: np.ndarray, h: np.ndarray, size: tuple[int, int],
                 interp: int | None = None, border: float = np.nan) -> np.ndarray:
    """``out(x) = img(h x)``: frame content in the reference view (NaN outside the frame)."""
    flags = (cv2.INTER_LINEAR if interp is None else interp) | cv2.WARP_INVERSE_MAP
    return cv2.warpPerspective(img, np.asarray(h, np.float64), size, flags=flags,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def _covered(cv2, h: np.ndarray, src: tuple[int, int], size: tuple[int, int],
             margin: int = 1) -> np.ndarray:
    """(H, W) bool of the reference view: pixels whose source lies inside the frame (with
    ``margin`` px kept off its border, where interpolation reads outside)."""
    w, hh = src
    ones = np.zeros((hh, w), np.uint8)
    ones[margin:hh - margin, margin:w - margin] = 1
    return _warp_to_ref(cv2, ones, h, size, cv2.INTER_NEAREST, 0).astype(bool)


def largest_rectangle(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the largest axis-aligned all-True rectangle (the first
    found scanning bottom rows downward, the tallest first, where several are as large)."""
    fast = _largest_rectangle_rows(mask)
    return fast if fast is not None else _largest_rectangle_histogram(mask)


def _largest_rectangle_rows(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """:func:`largest_rectangle` of a mask whose every row is one run of True (or empty),
    such as the region every frame of a stabilised clip covers (an intersection of convex
    quadrilaterals): for rows y0..y1 the rectangle spans the largest left end to the smallest
    right end, all pairs at once with NumPy (a 1080p mask in milliseconds where the histogram
    scan of :func:`_largest_rectangle_histogram` takes 3 s). None for any other mask."""
    hh, w = mask.shape
    count = mask.sum(axis=1)
    left = np.where(count > 0, mask.argmax(axis=1), 0)
    right = np.where(count > 0, w - mask[:, ::-1].argmax(axis=1), 0)  # one past the last True
    if np.any(count != right - left):
        return None
    best, best_area = (0, 0, 0, 0), 0
    for y1 in range(hh):  # bottom row, top to bottom; then the tallest first
        if count[y1] == 0:
            continue
        up = y1 - np.arange(y1 + 1)  # y0 = y1, y1 - 1, ..., 0
        empty = np.flatnonzero(count[up] == 0)
        up = up[:empty[0]] if empty.size else up  # rows above an empty one cannot join
        lefts = np.maximum.accumulate(left[up])  # of rows y0..y1, for every y0
        width = np.minimum.accumulate(right[up]) - lefts
        area = np.maximum(width, 0) * np.arange(1, len(up) + 1)
        k = len(up) - 1 - int(np.argmax(area[::-1]))  # the tallest of the largest
        if area[k] > best_area:
            best_area = int(area[k])
            best = (int(up[k]), int(lefts[k]), k + 1, int(width[k]))
    return best


def _largest_rectangle_histogram(mask: np.ndarray) -> tuple[int, int, int, int]:
    """:func:`largest_rectangle` of any mask: the largest rectangle in the histogram of
    every row's run heights."""
    hh, w = mask.shape
    heights = np.zeros(w, int)
    best = (0, 0, 0, 0)
    best_area = 0
    for y in range(hh):
        heights = np.where(mask[y], heights + 1, 0)
        stack: list[int] = []  # columns of increasing height (largest rectangle in a histogram)
        for x in range(w + 1):
            cur = heights[x] if x < w else 0
            while stack and heights[stack[-1]] >= cur:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = heights[top] * (x - left)
                if area > best_area:
                    best_area = area
                    best = (y - heights[top] + 1, left, int(heights[top]), x - left)
            stack.append(x)
    return best


def _warped(cv2, sup: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """(T, H, W) frames in the reference view, NaN where a frame does not reach."""
    size = (sup.shape[2], sup.shape[1])
    return np.stack([_warp_to_ref(cv2, s, h, size) for s, h in zip(sup, hs, strict=True)])


def _template(cv2, sup: np.ndarray, hs: np.ndarray, overlay: np.ndarray, ref: int
              ) -> np.ndarray:
    """Temporal median of the warped frames (the overlay's warped positions left out); the
    reference frame fills pixels no frame reaches."""
    warped = _warped(cv2, sup, hs)
    if overlay.any():
        size = (sup.shape[2], sup.shape[1])
        for k, h in enumerate(hs):
            ov = _warp_to_ref(cv2, overlay.astype(np.uint8), h, size, cv2.INTER_NEAREST, 0)
            warped[k][ov.astype(bool)] = np.nan
    med = _nanmedian(warped)
    return np.where(np.isfinite(med), med, sup[ref])


def _match_reference(cv2, sup: np.ndarray, hs: np.ndarray, ref: int) -> np.ndarray:
    """(T,) correlation of every warped frame with the reference frame where both are."""
    out = np.ones(len(sup))
    for k, w in enumerate(_warped(cv2, sup, hs)):
        ok = np.isfinite(w)
        if k != ref and ok.sum() > 64:
            out[k] = float(np.corrcoef(w[ok], sup[ref][ok])[0, 1])
        elif k != ref:
            out[k] = 0.0
    return np.nan_to_num(out)


def _clip_level(cv2, scene: np.ndarray, h: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The scene (reference view) moved into a frame, plus :data:`_CLIP` grey levels."""
    return cv2.warpPerspective(scene, np.asarray(h, np.float64), size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE) + _CLIP


def _nanmedian(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN, the mean of the two middle values for an even count
    (what ``np.nanmedian`` returns, 6x faster on a 47-frame clip: one sort, NaN last); all-NaN
    pixels stay NaN."""
    t_n = stack.shape[0]
    flat = np.sort(stack.reshape(t_n, -1).T, axis=1)  # (pixels, T): NaN sorts last
    n = np.isfinite(flat).sum(axis=1)
    lo = np.take_along_axis(flat, np.maximum(n - 1, 0)[:, None] // 2, axis=1)[:, 0]
    hi = np.take_along_axis(flat, (n // 2)[:, None], axis=1)[:, 0] if t_n else lo
    med = np.where(n > 0, 0.5 * (lo + hi), np.nan).astype(stack.dtype, copy=False)
    return med.reshape(stack.shape[1:])


def _abs_sigma(absdiff: np.ndarray) -> float:
    """Robust sigma (1.4826 x median) of absolute differences, NaN ignored."""
    x = absdiff[np.isfinite(absdiff)]
    return float(1.4826 * np.median(x)) if x.size else 0.0


# ----------------------------------------------------------------------------- overlay
def find_overlay(lum: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """(H, W) bool, image coordinates: a fixed overlay (text, logo, timestamp) that stays put
    in the frame while the scene moves under it.

    ``lum``: (T, H, W) luminance of the frames (lightly smoothed); ``hs``: reference -> frame
    homographies. Every frame is paired with the frame whose view is farthest from its own.
    In a pair, a scene pixel changes in image coordinates and matches once the partner is
    warped onto the frame; an overlay pixel does the opposite. A pixel is overlay when it
    votes so in at least half of the pairs that moved by 4 px or more there (rain, which
    changes both ways, and flat regions, which change neither, do not vote)."""
    cv2 = _cv2()
    t, hh, w = lum.shape
    inv = [np.linalg.inv(h) for h in hs]
    votes = np.zeros((hh, w), np.int32)
    pairs = np.zeros((hh, w), np.int32)
    ys, xs = np.mgrid[0:hh, 0:w].astype(np.float32)
    for k in range(t):
        rel = [hs[j] @ inv[k] for j in range(t)]  # frame k coords -> frame j coords
        j = int(np.argmax([corner_drift(r, w, hh) for r in rel]))
        if corner_drift(rel[j], w, hh) < 4.0:
            continue
        m = rel[j]
        den = m[2, 0] * xs + m[2, 1] * ys + m[2, 2]
        mx = (m[0, 0] * xs + m[0, 1] * ys + m[0, 2]) / den
        my = (m[1, 0] * xs + m[1, 1] * ys + m[1, 2]) / den
        moved = np.hypot(mx - xs, my - ys) >= 4.0
        moved &= (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= hh - 1)
        partner = cv2.remap(lum[j], mx.astype(np.float32), my.astype(np.float32),
                            cv2.INTER_LINEAR)
        still = np.abs(lum[k] - lum[j])
        off = np.abs(lum[k] - partner)
        votes += (moved & (still < np.maximum(3.0, 0.25 * off)) & (off > 12.0))
        pairs += moved
    overlay = (pairs >= 2) & (votes * 2 >= pairs) & (votes > 0)
    if not overlay.any():
        return overlay
    raw = cv2.morphologyEx(overlay.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    raw = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(raw, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(20, hh * w // 20000)
    return cv2.dilate(keep[lab].astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)


# ----------------------------------------------------------------------------- main
def stabilise_frames(frames: list[np.ndarray], names: list[str] | None = None, *,
                     min_common: float = MIN_COMMON_SHARE) -> Stabilised:
    """Warp every frame onto a reference view and crop to the rectangle all of them cover.

    Raises :class:`ClipError` (one line, measured numbers) when a frame cannot be matched to
    the reference or when the common rectangle is smaller than ``min_common`` of the frame.
    """
    cv2 = _cv2()
    t = len(frames)
    hh, w = frames[0].shape[:2]
    f = min(1.0, _WORK_SIDE / max(hh, w))
    small = [cv2.resize(fr, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else fr
             for fr in frames]
    sup = np.stack([rain_suppressed(s) for s in small])
    sh, sw = sup.shape[1:]
    label = (lambda i: names[i]) if names else (lambda i: f"frame {i}")

    # coarse: features against the middle frame
    mid = t // 2
    kd = [_features(cv2, _to8(s)) for s in sup]
    coarse = []
    for i in range(t):
        if i == mid:
            coarse.append(np.eye(3))
            continue
        h, _ = _feature_homography(cv2, kd[mid], kd[i])
        if not _plausible(h, sw, sh):
            from memderain.data.static_clip import phase_correlation

            dy, dx = phase_correlation(sup[mid], sup[i])
            h = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], float)
        coarse.append(h / h[2, 2])
    coarse = np.array(coarse)
    # reference: the most central view
    inv = [np.linalg.inv(h) for h in coarse]
    worst = [max(corner_drift(coarse[j] @ inv[r], sw, sh) for j in range(t)) for r in range(t)]
    ref = int(np.argmin(worst))
    hs = np.array([coarse[j] @ inv[ref] for j in range(t)])
    hs /= hs[:, 2:3, 2:3]

    # the fixed overlay, found on the (lightly smoothed) luminance itself: thin bright text
    # would vanish in the rain-suppressed images, not in the frames
    lum = np.stack([cv2.GaussianBlur(luminance(s), (0, 0), 1.0) for s in small])
    overlay = find_overlay(lum, hs)
    ecc = np.zeros(t)
    need = max(2, int(np.ceil(0.2 * t)))
    # ECC against the temporal median of the warped frames (rain gone, sharp): round 1 on the
    # opened images over two scales (a wide basin); rounds 2 and 3 at the working scale on the
    # luminance clipped from above to the scene moved into the frame plus _CLIP grey levels
    # (rain only adds light; an opening is not exactly covariant with rotation, and heavy
    # rain survives it in places: measured 0.31 -> 0.19 px rms on a rainy BSD100 photo)
    imgs = sup
    for rnd in range(3):
        if rnd:
            scene = _template(cv2, lum, hs, overlay, ref)
            imgs = np.stack([np.minimum(y, _clip_level(cv2, scene, h, (sw, sh)))
                             for y, h in zip(lum, hs, strict=True)])
        template = _template(cv2, imgs, hs, overlay, ref).astype(np.float32)
        resid = np.abs(_warped(cv2, imgs, hs) - template[None])
        sigma = max(1.0, _abs_sigma(resid))
        misfit_ref = (np.nan_to_num(resid) > max(6.0, 4 * sigma)).sum(axis=0) >= need
        new = []
        for k in range(t):
            mask = ~overlay
            if misfit_ref.any():
                mask &= ~cv2.warpPerspective(misfit_ref.astype(np.uint8), hs[k], (sw, sh),
                                             flags=cv2.INTER_NEAREST).astype(bool)
            h, cc = _ecc(cv2, template, imgs[k], hs[k], mask, 1 if rnd else 2)
            if not _plausible(h, sw, sh):
                h, cc = hs[k], -1.0
            new.append(h)
            ecc[k] = cc
        hs = np.array(new)
        hs /= hs[:, 2:3, 2:3]
    del lum
    # one scene? each warped frame against the reference frame itself (the median template
    # holds a share of every frame, so ECC's own correlation would flatter an odd frame out)
    match = _match_reference(cv2, sup, hs, ref)
    if match.min() < _MIN_MATCH:
        k = int(np.argmin(match))
        raise ClipError(f"cannot stabilise: {label(k)} does not match the reference view "
                        f"{label(ref)} (correlation {match[k]:.2f} after alignment, "
                        f"{_MIN_MATCH:g} needed; {int((match < _MIN_MATCH).sum())} frame(s) "
                        "like it); is it all one scene?")

    # full resolution
    hs_full = np.array([_scaled(h, f) for h in hs]) if f < 1 else hs
    drift = np.array([corner_drift(h, w, hh) for h in hs_full])
    cover = np.ones((hh, w), bool)
    for h in hs_full:
        cover &= _covered(cv2, h, (w, hh), (w, hh))
    covered_share = float(cover.mean())
    top, left, ch, cw = largest_rectangle(cover)
    share = ch * cw / (hh * w)
    worst_t = int(np.argmax(drift))
    if share < min_common or ch < 8 or cw < 8:
        raise ClipError(f"the camera moves too far to stabilise: the region every frame "
                        f"covers is {share:.0%} of the frame ({cw}x{ch} of {w}x{hh} px; "
                        f"{min_common:.0%} needed); {label(worst_t)} drifts "
                        f"{drift[worst_t]:.1f} px from the reference {label(ref)}; film closer "
                        "to still, or cut the clip where the camera turns away")
    shift = np.array([[1, 0, left], [0, 1, top], [0, 0, 1]], float)
    out_h = np.array([h @ shift for h in hs_full])
    aligned = np.stack([
        _warp_to_ref(cv2, fr, h, (cw, ch), cv2.INTER_CUBIC, 0) for fr, h in zip(
            frames, out_h, strict=True)])
    # masks at full resolution, cropped: the overlay's positions and the misfit per frame
    ov_img = (cv2.resize(overlay.astype(np.uint8), (w, hh), interpolation=cv2.INTER_NEAREST)
              if f < 1 else overlay.astype(np.uint8))
    ov_out = np.zeros((ch, cw), bool)
    if ov_img.any():
        for h in out_h:
            ov_out |= _warp_to_ref(cv2, ov_img, h, (cw, ch), cv2.INTER_NEAREST, 0).astype(bool)
    resid = np.abs(_warped(cv2, sup, hs) - _template(cv2, sup, hs, overlay, ref)[None])
    sigma = max(1.0, _abs_sigma(resid))
    resid = np.nan_to_num(resid)
    bad = (resid > max(6.0, 4 * sigma)).astype(np.uint8)
    misfit = np.zeros((t, ch, cw), bool)
    for k in range(t):
        m = cv2.morphologyEx(bad[k], cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        if f < 1:
            m = cv2.resize(m, (w, hh), interpolation=cv2.INTER_NEAREST)
        misfit[k] = m[top:top + ch, left:left + cw].astype(bool)
    return Stabilised(aligned, out_h, ref, drift, share, covered_share, ov_out,
                      float(ov_img.mean()), misfit, (top, left, ch, cw), ecc, match)
