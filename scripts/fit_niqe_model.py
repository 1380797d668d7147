"""Fit the NIQE pristine model shipped as ``src/memderain/evaluation/niqe_pristine.npz``.

    python scripts/fit_niqe_model.py [--images ../shared/data/backgrounds/train] [--out PATH]

Uses every image of the folder (the project's clean *training* photographs: Urban100 and
Sun-Hays 80, JPEG q95, max side 768), the procedure of the authors' ``estimatemodelparam.m``
(96x96 blocks, no overlap, patches sharper than 0.75 x the sharpest of their image) and stores
``mu`` (36,), ``cov`` (36, 36) plus the settings. Run once at build time; the package never
reads ../shared itself.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from memderain.data.scenes import list_images
from memderain.data.transforms import read_rgb
from memderain.evaluation.no_reference import PRISTINE_MODEL, fit_pristine_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=ROOT.parent / "shared/data/backgrounds/train")
    p.add_argument("--out", type=Path, default=PRISTINE_MODEL)
    args = p.parse_args()
    files = list_images(args.images)
    if not files:
        print(f"no images in {args.images}", file=sys.stderr)
        return 1
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    t0 = time.time()
    model = fit_pristine_model(read_rgb(f) for f in files)
    print(f"fitted on {model['n_images']} images, {model['n_patches']} sharp patches "
          f"in {time.time() - t0:.1f} s")
    tmp = args.out.with_name(args.out.stem + ".tmp.npz")
    np.savez(tmp, mu=model["mu"], cov=model["cov"], n_images=model["n_images"],
             n_patches=model["n_patches"], block=model["block"],
             sharpness_threshold=model["sharpness_threshold"],
             source=np.array("shared/data/backgrounds/train (Urban100 + Sun-Hays 80, JPEG q95)"),
             images_sha256=np.array(digest.hexdigest()))
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
