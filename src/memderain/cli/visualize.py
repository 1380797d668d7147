"""`memderain visualize memory|features|tsne|grid`: PNG figures of the memory, features, results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from memderain.atomicfile import check_writable
from memderain.choices import IMAGE_EXTENSIONS
from memderain.cli.options import add_device_option
from memderain.errors import MemderainError

if TYPE_CHECKING:
    import torch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("visualize", help="write PNG figures of memory read maps, features, t-SNE")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    def common(q: argparse.ArgumentParser, output: str = "folder for the PNG files") -> None:
        q.add_argument("--weights", help="checkpoint (default: the shipped model)")
        q.add_argument("-o", "--output-dir", required=True, help=output)
        q.add_argument("--max-side", type=int, default=512,
                       help="downscale larger images to this longest side first (default 512)")
        q.add_argument("--overwrite", action="store_true", help="replace existing PNG files")

    m = kinds.add_parser("memory", help="read weights (Eq. 2) of memory items over an image "
                         "(paper Fig. 3/11)")
    m.add_argument("image")
    m.add_argument("--items", type=int, nargs="+", help="items to show (default: --top)")
    m.add_argument("--top", type=int, default=3, help="show the N most-read items (default 3)")
    common(m)
    f = kinds.add_parser("features", help="conv_E1a and conv_D1b feature maps (paper Fig. 12)")
    f.add_argument("image")
    f.add_argument("--channels", type=int, nargs="+", help="channels to show (default: --count)")
    f.add_argument("--count", type=int, default=4,
                   help="show the N channels with the most spatial variation (default 4)")
    common(f)
    t = kinds.add_parser("tsne", help="t-SNE of query features and memory items (paper Fig. 10)")
    t.add_argument("images", nargs="+")
    t.add_argument("--points", type=int, default=1000, help="query vectors sampled (default 1000)")
    t.add_argument("--perplexity", type=float, default=30.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--iterations", type=int, help="t-SNE iterations (default 1000, min 250)")
    common(t)
    g = kinds.add_parser("grid", help="input / de-rained / estimated rain, one row per image")
    g.add_argument("images", nargs="+")
    g.add_argument("--clean", nargs="+", help="clean ground truth per image (same order): "
                   "adds a fourth column")
    g.add_argument("--peer", metavar="DIR", help="folder of another method's outputs with the "
                   "same file names as the images: adds a column beside ours")
    g.add_argument("--peer-label", default="peer", help="title of the --peer column")
    g.add_argument("--name", help="file name in the -o folder (default grid.png)")
    add_device_option(g)
    common(g, "the PNG file to write (FILE.png), or a folder for --name (default grid.png)")
    p.set_defaults(func=run)


def load_image01(path: str | Path, max_side: int) -> torch.Tensor:
    """(3, H, W) float [0, 1] of an image file, downscaled to ``max_side`` if larger."""
    import torch.nn.functional as F

    from memderain.inference.io import read_image, rgb_to_tensor01

    x = rgb_to_tensor01(read_image(path).rgb)  # (1, 3, H, W); one-line errors for bad files
    h, w = x.shape[-2:]
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x[0].clamp(0, 1)


def weights_path(weights: str | None):
    """``--weights``, else the shipped model; a one-line error if neither exists."""
    from memderain.weights import default_weights_path

    path = weights or default_weights_path()
    if path is None:
        raise MemderainError("no default weights ship with this install; pass --weights CKPT")
    return path


def load_model(weights: str | None):
    from memderain.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(weights_path(weights))
    return model


def run(args: argparse.Namespace) -> int:
    from memderain import visualize as vis

    out = Path(args.output_dir)
    if args.kind == "grid":
        return run_grid(args, out)
    if out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir():
        raise MemderainError(f"-o {out}: visualize {args.kind} writes its PNG files into a "
                             "folder; name a folder")
    model = load_model(args.weights)
    if args.kind == "memory":
        res = vis.plot_read_maps(model, load_image01(args.image, args.max_side), out,
                                 Path(args.image).stem, items=args.items, top=args.top,
                                 overwrite=args.overwrite)
        print(f"items {res['items']}: wrote {res['figure']} and {len(res['overlays'])} overlays")
    elif args.kind == "features":
        target = out / f"{Path(args.image).stem}_features.png"
        res = vis.plot_features(model, load_image01(args.image, args.max_side), target,
                                channels=args.channels, count=args.count,
                                overwrite=args.overwrite)
        print(f"channels {res['channels']}: wrote {res['figure']}")
    else:
        images = [load_image01(p, args.max_side) for p in args.images]
        res = vis.tsne_plot(model, images, out / "tsne.png", max_points=args.points,
                            perplexity=args.perplexity, seed=args.seed,
                            max_iter=args.iterations, overwrite=args.overwrite)
        import numpy as np

        counts = np.bincount(res.assignment, minlength=len(res.items))
        print(f"wrote {res.path}: {len(res.queries)} queries; per item {counts.tolist()}")
    return 0


def run_grid(args: argparse.Namespace, out: Path) -> int:
    import torch

    from memderain.inference.predictor import Derainer
    from memderain.visualize.derain_grid import derain_grid

    path = weights_path(args.weights)
    if args.clean and len(args.clean) != len(args.images):
        raise MemderainError(f"--clean lists {len(args.clean)} files for {len(args.images)} "
                             "images; give one per image, in the same order")
    if out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir():  # -o figs/grid.png: the file
        if out.suffix.lower() != ".png":
            raise MemderainError(f"-o {out}: the grid is a PNG file; name it .png")
        if args.name:
            raise MemderainError(f"-o {out} names the file already; leave out --name "
                                 f"{args.name}")
        target = out
    else:
        target = out / (args.name or "grid.png")
    if target.suffix.lower() != ".png":
        raise MemderainError(f"--name must end in .png, got {args.name!r}")
    check_writable(target, name=f"-o {out}")  # before the images are read and de-rained
    images = [(f"{Path(p).parent.name}/{Path(p).stem}", load_image01(p, args.max_side))
              for p in args.images]
    clean = [load_image01(p, args.max_side) for p in args.clean] if args.clean else None
    if clean is not None:
        for (name, x), c in zip(images, clean):
            if c.shape != x.shape:
                raise MemderainError(f"clean image for {name} is {tuple(c.shape[1:])}, the "
                                     f"rainy one {tuple(x.shape[1:])}: sizes must match")
    peer = None
    if args.peer:
        peer = []
        for p, (name, x) in zip(args.images, images):
            other = Path(args.peer) / Path(p).name
            if not other.is_file():
                raise MemderainError(f"--peer {args.peer}: no {Path(p).name} for {name}")
            y = load_image01(other, args.max_side)
            if y.shape != x.shape:
                y = torch.nn.functional.interpolate(y[None], size=x.shape[1:], mode="bilinear",
                                                    antialias=True, align_corners=False)[0]
            peer.append(y)
    target.parent.mkdir(parents=True, exist_ok=True)
    target = derain_grid(Derainer(path, device=args.device), images, target, clean,
                         overwrite=args.overwrite, peer=peer, peer_label=args.peer_label)
    print(f"wrote {target} ({len(images)} rows)")
    return 0
