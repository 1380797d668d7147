"""`memderain extract-frames VIDEO DIR`: sample a static-camera rain video into a scene folder."""

from __future__ import annotations

import argparse
import sys
import warnings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract-frames", help="sample frames of a static-camera rain video into DIR/<scene>/",
        description="Decode VIDEO (PyAV) and write sampled frames to DIR/<scene>/t000.png ..., "
                    "the time-lapse layout `memderain train --data DIR` reads. Warns when the "
                    "camera seems to move (the method needs a static background).")
    p.add_argument("video", metavar="VIDEO", help="video file (anything FFmpeg decodes)")
    p.add_argument("dir", metavar="DIR", help="time-lapse root; frames go to DIR/<scene>/")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--every", type=int, metavar="N", help="keep every N-th frame")
    how.add_argument("--count", type=int, metavar="T",
                     help="keep T frames evenly spaced over the video (default 30, as TimeLap)")
    p.add_argument("--scene", help="scene folder name (default: the video's file name stem)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing scene folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from memderain.data.video_frames import CameraMotionWarning, extract_frames

    def progress(it, total):
        return tqdm(it, total=total, unit="frame", desc="decode", disable=not sys.stderr.isatty())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = extract_frames(args.video, args.dir, every=args.every, count=args.count,
                             scene=args.scene, overwrite=args.overwrite, progress=progress)
    for w in caught:
        kind = "warning" if issubclass(w.category, CameraMotionWarning) else "note"
        print(f"memderain extract-frames: {kind}: {w.message}", file=sys.stderr)
    print(f"wrote {res.frames} of {res.total_frames} frames to {res.scene_dir} "
          f"(camera shift <= {res.motion.max_shift_px:.1f} px, "
          f"median grey change <= {res.motion.max_median_diff:.3f})")
    return 0
