"""Numbers for docs/video-export-web.md: export parity/speed and video de-raining speed (CPU).

    python benchmarks/video_export.py [--weights CKPT] [--frames 24] [--size 320x240] [--threads N]

Without --weights a random-weight paper model (Table I, C=64) is used: parity and speed do not
depend on the weights' values. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import memderain
from memderain.checkpoint import save_checkpoint
from memderain.export import export_model, load_for_export
from memderain.inference.video import derain_video
from memderain.model import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from video_helpers import make_video


def timed(fn, repeat=3):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="memderain-bench-"))
    ckpt = args.weights or save_checkpoint(tmp / "paper.pt", build_model("paper"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; weights {ckpt}")

    wrapper, _ = load_for_export(ckpt)
    onnx_path = export_model(wrapper, tmp / "m.onnx", "onnx")
    ts_path = export_model(wrapper, tmp / "m.pt", "torchscript")
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ts = torch.jit.load(str(ts_path))
    for hh, ww in [(37, 50), (h, w), (h + 3, w - 5)]:
        x = torch.rand(1, 3, hh, ww, generator=torch.Generator().manual_seed(hh))
        with torch.no_grad():
            ref = wrapper(x).numpy()
            e_ts = np.abs(ts(x).numpy() - ref).max()
        e_onnx = np.abs(sess.run(None, {"image": x.numpy()})[0] - ref).max()
        print(f"parity {hh}x{ww}: max |onnx - torch| = {e_onnx:.2e}, "
              f"max |torchscript - torch| = {e_ts:.2e}")
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        t_pt = timed(lambda: wrapper(x))
        t_ts = timed(lambda: ts(x))
    t_ort = timed(lambda: sess.run(None, {"image": x.numpy()}))
    print(f"one {w}x{h} image: torch {t_pt * 1e3:.0f} ms, torchscript {t_ts * 1e3:.0f} ms, "
          f"onnxruntime {t_ort * 1e3:.0f} ms")

    src = tmp / "rain.mp4"
    make_video(src, frames=args.frames, width=w, height=h, fps=25, audio="aac")
    derainer = memderain.load_model(ckpt)
    for batch in (1, 4):
        res = derain_video(derainer, src, tmp / f"out{batch}.mp4", batch_size=batch,
                           progress=False, overwrite=True)
        print(f"video {w}x{h}, {res.frames} frames, batch {batch}: {res.seconds:.1f} s = "
              f"{res.frames / res.seconds:.2f} frames/s (audio {res.audio})")


if __name__ == "__main__":
    main()
