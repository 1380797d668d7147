"""Visualisations: files are valid PNGs of the expected size and show what the model computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from memderain.checkpoint import save_checkpoint
from memderain.cli import main
from memderain.cli.visualize import load_image01
from memderain.errors import MemderainError
from memderain.model import build_model
from memderain.visualize import capture_features, plot_features, plot_read_maps, tsne_plot
from memderain.visualize.common import PANEL_PX, TITLE_PX

H, W = 44, 60  # not multiples of 8


@pytest.fixture
def model(tiny_config):
    return build_model(tiny_config).eval()


@pytest.fixture
def image01():
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(0, 1, W).expand(H, W)
    img = torch.stack([ramp, ramp.t().flip(0)[:H, :W] if H == W else ramp.flip(1), 0.5 * ramp])
    return (0.7 * img + 0.3 * torch.rand(3, H, W, generator=g)).clamp(0, 1)


@pytest.fixture
def image_file(image01, tmp_path) -> Path:
    """``image01`` saved as an 8-bit PNG (tmp_path/rain.png)."""
    img = tmp_path / "rain.png"
    Image.fromarray((image01.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(img)
    return img


def png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.load()  # fully decodes: fails on a truncated file
        assert im.format == "PNG"
        return im.size


def test_read_maps(model, image01, tmp_path):
    res = plot_read_maps(model, image01, tmp_path, "x", top=2)
    with torch.no_grad():
        alpha = model(image01[None] * 2 - 1).read_weights[0]  # (M, h, w)
    expected_items = torch.argsort(alpha.mean(dim=(1, 2)), descending=True)[:2].tolist()
    assert res["items"] == expected_items
    maps = res["maps"]
    assert maps.shape == (alpha.shape[0], H, W)
    # Bilinear up-sampling of a softmax over items keeps the sum over items at 1 per pixel.
    np.testing.assert_allclose(maps.sum(axis=0), 1.0, atol=1e-5)
    # Inside each 8x8 block the up-sampled map stays between the neighbouring alphas.
    assert maps.min() >= alpha.min().item() - 1e-6 and maps.max() <= alpha.max().item() + 1e-6
    assert png_size(res["figure"]) == ((2 + 2) * PANEL_PX, PANEL_PX + TITLE_PX)
    assert [p.name for p in res["overlays"]] == [f"x_memory_item{m:02d}.png" for m in res["items"]]
    for p in res["overlays"]:
        assert png_size(p) == (W, H)
    with pytest.raises(MemderainError, match="exists"):
        plot_read_maps(model, image01, tmp_path, "x", top=2)
    with pytest.raises(MemderainError, match="out of range"):
        plot_read_maps(model, image01, tmp_path, "y", items=[99])


def test_feature_hooks_capture_the_named_layers(model, image01):
    x = image01[None] * 2 - 1
    feats, background = capture_features(model, x)
    # conv_E1a computed independently: ReLU(conv3x3(reflect-padded input)).
    padded = F.pad(x, (0, (-W) % 8, 0, (-H) % 8), mode="reflect")
    conv = model.encoder.conv_E1[0][0]
    expected = F.relu(F.conv2d(padded, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(feats["conv_E1a"], expected, atol=1e-5, rtol=1e-5)
    # conv_D1b is what the output conv turns into the rain layer R_hat.
    with torch.no_grad():
        out = model(x)
        rain = model.decoder.output(feats["conv_D1b"])[..., :H, :W]
    torch.testing.assert_close(rain, out.rain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(background, out.background)
    assert not model.encoder.conv_E1[0]._forward_hooks  # hooks removed


def test_feature_figure(model, image01, tmp_path):
    res = plot_features(model, image01, tmp_path / "f.png", count=3)
    assert png_size(res["figure"]) == (4 * PANEL_PX, 2 * (PANEL_PX + TITLE_PX))
    for chans in res["channels"].values():
        assert len(chans) == 3 and len(set(chans)) == 3
    res = plot_features(model, image01, tmp_path / "g.png", channels=[0, 5])
    assert res["channels"] == {"conv_E1a": [0, 5], "conv_D1b": [0, 5]}


def test_tsne_colours_are_nearest_items(model, image01, tmp_path):
    res = tsne_plot(model, [image01, image01.flip(2)], tmp_path / "t.png", max_points=80, seed=3,
                    max_iter=250)
    assert png_size(res.path) == (700, 600)
    with torch.no_grad():
        q_all = torch.cat([model(im[None] * 2 - 1).query[0].flatten(1).t()
                           for im in (image01, image01.flip(2))]).numpy()
    assert len(res.queries) == 80
    # every sampled query is a query vector the model computed for one of the two inputs
    dist = np.abs(res.queries[:, None, :] - q_all[None]).sum(axis=2).min(axis=1)
    assert dist.max() < 1e-4
    # independent nearest item: argmax of cosine similarity, in numpy
    qn = res.queries / np.maximum(np.linalg.norm(res.queries, axis=1, keepdims=True), 1e-12)
    items = model.memory.items.numpy()
    pn = items / np.linalg.norm(items, axis=1, keepdims=True)
    sim = qn @ pn.T
    top2 = np.sort(sim, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5  # skip numerical ties
    assert clear.sum() > 40
    np.testing.assert_array_equal(res.assignment[clear], sim.argmax(axis=1)[clear])
    np.testing.assert_array_equal(res.items, items)
    # the colour drawn for each point is the colour of the star of its item
    np.testing.assert_allclose(res.point_colors, res.item_colors[res.assignment])
    assert len(np.unique(res.item_colors, axis=0)) == len(items)
    assert res.embedding.shape == (80, 2) and res.item_embedding.shape == (len(items), 2)


def test_cli_writes_all_three(model, image_file, tmp_path):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model)
    img = image_file
    out = tmp_path / "figs"
    base = ["--weights", str(ckpt), "-o", str(out)]
    assert main(["visualize", "memory", str(img), "--items", "0", "3", *base]) == 0
    assert main(["visualize", "features", str(img), *base]) == 0
    assert main(["visualize", "tsne", str(img), "--points", "60", "--iterations", "250",
                 *base]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["rain_features.png", "rain_memory.png", "rain_memory_item00.png",
                     "rain_memory_item03.png", "tsne.png"]
    assert png_size(out / "rain_memory_item03.png") == (W, H)
    # each overlay shows its own item's read weights: the pictures differ where the maps do
    item0, item3 = (np.asarray(Image.open(out / f"rain_memory_item0{m}.png").convert("RGB"),
                               dtype=np.float32) for m in (0, 3))
    with torch.no_grad():
        alpha = model(load_image01(img, 512)[None] * 2 - 1).read_weights[0]
    assert float((alpha[0] - alpha[3]).abs().max()) > 1e-3
    assert np.abs(item0 - item3).mean() > 1.0
    assert main(["visualize", "memory", str(tmp_path / "missing.png"), *base]) == 1
    small = ["--weights", str(ckpt), "-o", str(tmp_path / "small"), "--max-side", "30"]
    assert main(["visualize", "memory", str(img), "--items", "1", *small]) == 0
    assert png_size(tmp_path / "small" / "rain_memory_item01.png") == (30, 22)  # 60x44 halved


def test_derain_grid_rows_match_the_derainer(model, image01, tmp_path):
    from memderain.inference.predictor import Derainer
    from memderain.visualize.derain_grid import derain_rows

    ckpt = save_checkpoint(tmp_path / "tiny.pt", model)
    derainer = Derainer(ckpt)
    rows = derain_rows(derainer, [("a", image01), ("b", image01.flip(-1))],
                       clean=[image01, None])
    assert [len(r) for r in rows] == [4, 3]  # the clean column only where one is given
    background, rain = derainer.derain_tensor(image01[None])
    np.testing.assert_allclose(rows[0][1][0], background[0].permute(1, 2, 0).numpy(), atol=1e-6)
    mag = rows[0][2][0]
    assert mag.shape == (H, W) and mag.min() == 0.0 and mag.max() == pytest.approx(1.0)
    # brightest rain pixel in the panel is where |R| (channel mean) is largest
    flat = rain[0].abs().mean(0).flatten().argmax().item()
    assert mag.flatten()[flat] == pytest.approx(1.0)


def test_cli_grid(model, image_file, tmp_path):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model)
    img = image_file
    out = tmp_path / "figs"
    base = ["--weights", str(ckpt), "-o", str(out)]
    assert main(["visualize", "grid", str(img), str(img), "--clean", str(img), str(img),
                 *base]) == 0
    assert png_size(out / "grid.png") == (4 * PANEL_PX, 2 * (PANEL_PX + TITLE_PX))
    before = (out / "grid.png").read_bytes()
    assert main(["visualize", "grid", str(img), *base]) == 1  # exists: refused, kept
    assert (out / "grid.png").read_bytes() == before
    assert main(["visualize", "grid", str(img), *base, "--overwrite"]) == 0
    assert png_size(out / "grid.png") == (3 * PANEL_PX, PANEL_PX + TITLE_PX)
    assert main(["visualize", "grid", str(img), "--clean", str(img), str(img), *base]) == 1
    # --peer: a column with the peer's output (here pure red) between ours and |R|
    peer = tmp_path / "peer"
    peer.mkdir()
    Image.fromarray(np.full((H, W, 3), (255, 0, 0), np.uint8)).save(peer / img.name)
    assert main(["visualize", "grid", str(img), "--peer", str(peer), "--peer-label", "MOSS",
                 *base, "--overwrite"]) == 0
    grid = np.asarray(Image.open(out / "grid.png").convert("RGB")).astype(int)
    assert grid.shape[1] == 4 * PANEL_PX
    centre = lambda c: grid[TITLE_PX + PANEL_PX // 2, c * PANEL_PX + PANEL_PX // 2]
    assert tuple(centre(2)) == (255, 0, 0)  # the peer panel
    assert all(tuple(centre(c)) != (255, 0, 0) for c in (0, 1, 3))
    (peer / img.name).unlink()
    assert main(["visualize", "grid", str(img), "--peer", str(peer), *base,
                 "--overwrite"]) == 1  # no peer output for the image: one-line error


def test_cli_grid_takes_a_png_path_as_the_file(model, image_file, tmp_path, capsys):
    """Issue 33.8: `visualize grid ... -o figs/grid.png` wrote figs/grid.png/grid.png."""
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model)
    target = tmp_path / "figs" / "mine.png"
    argv = ["visualize", "grid", str(image_file), "--weights", str(ckpt)]
    assert main([*argv, "-o", str(target)]) == 0
    assert target.is_file() and png_size(target) == (3 * PANEL_PX, PANEL_PX + TITLE_PX)
    assert sorted(p.name for p in target.parent.iterdir()) == ["mine.png"]
    capsys.readouterr()
    for extra in (["-o", str(tmp_path / "two.png"), "--name", "x.png"],
                  ["-o", str(tmp_path / "grid.jpg")]):
        assert main([*argv, *extra]) == 1
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["visualize", "memory", str(image_file), "--weights", str(ckpt), "-o",
                 str(tmp_path / "maps.png")]) == 1
    assert "name a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["figs", "tiny.pt",
                                                                  image_file.name])
