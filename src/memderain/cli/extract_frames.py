"""`memderain extract-frames VIDEO DIR`: sample a static-camera rain video into a scene folder."""

from __future__ import annotations

import argparse
import sys

from memderain.cli.options import add_clip_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract-frames", help="sample frames of a rain video into DIR/<scene>/",
        description="Decode VIDEO (PyAV) and write sampled frames to DIR/<scene>/t000.png ..., "
                    "the time-lapse layout `memderain train --data DIR` reads. Frames are "
                    "aligned to a rain-free reference (small shakes) and cropped to the region "
                    "all cover; a camera that moves more than --max-shift px is hand-held: "
                    "its frames are warped onto one view (--stabilise auto, the default; off "
                    "refuses it). DIR/<scene>/_clip/ shows the temporal median and the static "
                    "mask; clip.json records the alignment.")
    p.add_argument("video", metavar="VIDEO",
                   help="video file (anything FFmpeg decodes) or folder of frames")
    p.add_argument("dir", metavar="DIR", help="time-lapse root; frames go to DIR/<scene>/")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--every", type=int, metavar="N", help="keep every N-th frame")
    how.add_argument("--count", type=int, metavar="T",
                     help="keep T frames evenly spaced over the video (default 30, as TimeLap)")
    p.add_argument("--scene", help="scene folder name (default: the video's file name stem)")
    add_clip_options(p, max_frames=False)  # --count / --every choose the frames
    p.add_argument("--overwrite", action="store_true", help="replace an existing scene folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from memderain.data.video_frames import extract_frames

    def progress(it, total):
        return tqdm(it, total=total, unit="frame", desc="decode", disable=not sys.stderr.isatty())

    res = extract_frames(args.video, args.dir, every=args.every, count=args.count,
                         scene=args.scene, overwrite=args.overwrite, max_shift=args.max_shift,
                         max_side=args.max_side or None, progress=progress,
                         stabilise=args.stabilise)
    h, w = res.size
    a = res.alignment or {}
    moved = (f"hand-held, stabilised: drift up to {a['max_drift_px']:.1f} px, "
             f"{a['common_share']:.0%} of the frame in common" if a.get("stabilised") else
             f"camera shift aligned: {res.max_shift_px:.1f} px")
    print(f"wrote {res.frames} of {res.total_frames} frames ({w}x{h}) to {res.scene_dir} "
          f"({moved}; static pixels {res.static_fraction:.0%})")
    return 0
