"""`memderain derain`: batches with good and bad files, output naming, overwrite protection."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from memderain.checkpoint import save_checkpoint
from memderain.cli import main
from memderain.config import ModelConfig
from memderain.errors import MemderainError
from memderain.inference import batch, png16, predictor
from memderain.inference.io import imagedata_to_samples, read_image
from memderain.inference.predictor import load_model
from memderain.model import MemDerain


@pytest.fixture
def ckpt(tmp_path):
    return save_checkpoint(
        tmp_path / "w" / "tiny.pt", MemDerain(ModelConfig(channels=8, num_items=4))
    )


@pytest.fixture
def photos(tmp_path):
    """A folder of small images of every kind, two bad files, a text file and a sub-folder."""
    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(d / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (18, 16), dtype=np.uint8)).save(d / "grey.png")
    Image.fromarray(rng.integers(0, 256, (16, 20, 4), dtype=np.uint8)).save(d / "rgba.png")
    (d / "deep.png").write_bytes(
        png16.encode_png16(rng.integers(0, 65536, (16, 16, 3), dtype=np.uint16))
    )
    Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(
        d / "photo.jpg", quality=90
    )
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(d / "sub" / "inner.png")
    good = (d / "rgb.png").read_bytes()
    (d / "corrupt.png").write_bytes(good[: len(good) // 2])
    (d / "fake.jpg").write_text("not an image at all\n")
    (d / "notes.txt").write_text("ignored: not an image extension\n")
    return d


def _run(capsys, *args):
    code = main(["derain", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_temp_files(folder):
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_mixed_folder_good_outputs_one_line_per_bad_file(capsys, tmp_path, photos, ckpt):
    before = _snapshot(photos)
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, photos, "-o", out, "--weights", ckpt, "--device", "cpu")
    assert code != 0
    assert "Traceback" not in stderr + stdout
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert len(errors) == 2, stderr
    assert any("corrupt.png" in e for e in errors) and any("fake.jpg" in e for e in errors)
    assert "notes.txt" not in stderr and f"weights: {ckpt}" in stderr
    assert "5 file(s)" in stdout and "2 failed" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "deep.png",
        "grey.png",
        "photo.jpg",
        "rgb.png",
        "rgba.png",
    ]
    assert _snapshot(photos) == before  # inputs untouched
    assert _no_temp_files(out)

    d = load_model(ckpt)  # what the CLI uses: backend and precision auto
    rgb = np.asarray(Image.open(photos / "rgb.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "rgb.png")), d.derain(rgb))
    grey = Image.open(out / "grey.png")
    assert grey.mode == "L"
    np.testing.assert_array_equal(
        np.asarray(grey), d.derain(np.asarray(Image.open(photos / "grey.png")))
    )
    rgba_in, rgba_out = (
        np.asarray(Image.open(photos / "rgba.png")),
        np.asarray(Image.open(out / "rgba.png")),
    )
    assert rgba_out.shape == rgba_in.shape
    np.testing.assert_array_equal(rgba_out[..., 3], rgba_in[..., 3])
    deep = read_image(out / "deep.png")
    assert deep.bit_depth == 16
    expected16 = d.derain(imagedata_to_samples(read_image(photos / "deep.png")))
    np.testing.assert_array_equal(imagedata_to_samples(deep), expected16)
    assert Image.open(out / "photo.jpg").format == "JPEG"


def test_recursive_keeps_subfolders(capsys, tmp_path, photos, ckpt):
    (photos / "corrupt.png").unlink()
    (photos / "fake.jpg").unlink()
    out = tmp_path / "out"
    code, _, stderr = _run(
        capsys, photos, "-o", out, "--weights", ckpt, "--recursive", "--suffix", "_d"
    )
    assert code == 0, stderr
    assert (out / "sub" / "inner_d.png").is_file() and (out / "rgb_d.png").is_file()


def test_existing_outputs_need_overwrite(capsys, tmp_path, photos, ckpt):
    src = photos / "rgb.png"
    out = tmp_path / "out"
    out.mkdir()
    (out / "rgb.png").write_bytes(b"keep me")
    code, stdout, stderr = _run(capsys, src, "-o", out, "--weights", ckpt)
    # an existing output is work done: skipped, kept, counted, and not a failure (re-runs and
    # resumed batches under `set -e` succeed)
    assert code == 0 and "exists" in stderr and "--overwrite" in stderr and "1 skipped" in stdout
    assert (out / "rgb.png").read_bytes() == b"keep me"
    code, _, stderr = _run(capsys, src, "-o", out, "--weights", ckpt, "--overwrite")
    assert code == 0, stderr
    assert Image.open(out / "rgb.png").size == (24, 20)
    assert _no_temp_files(out)


def test_double_star_needs_recursive(capsys, tmp_path, photos, ckpt):
    out = tmp_path / "out"
    code, _, stderr = _run(capsys, str(photos / "**" / "*.png"), "-o", out, "--weights", ckpt)
    assert code == 1 and "'**' matches sub-folders only with --recursive" in stderr
    assert not (out / "inner.png").exists()  # nothing written flat from a sub-folder
    code, _, stderr = _run(capsys, str(photos / "**" / "inner.png"), "-o", out, "--weights",
                           ckpt, "--recursive")
    assert code == 0, stderr
    assert (out / "sub" / "inner.png").is_file() and not (out / "inner.png").exists()


def test_rerunning_a_batch_succeeds_and_skips_what_is_done(capsys, tmp_path, photos, ckpt):
    out = tmp_path / "out"
    code, first, _ = _run(capsys, photos / "rgb.png", photos / "grey.png", "-o", out,
                          "--weights", ckpt)
    assert code == 0 and "derained 2 file(s)" in first
    before = (out / "rgb.png").read_bytes()
    code, again, _ = _run(capsys, photos / "rgb.png", photos / "grey.png", "-o", out,
                          "--weights", ckpt)
    assert code == 0 and "derained 0 file(s)" in again and "2 skipped (output exists)" in again
    assert (out / "rgb.png").read_bytes() == before


def test_inputs_are_never_overwritten_even_with_overwrite(capsys, photos, ckpt):
    before = _snapshot(photos)
    code, _, stderr = _run(
        capsys,
        photos / "rgb.png",
        photos / "grey.png",
        "-o",
        photos,
        "--weights",
        ckpt,
        "--overwrite",
    )
    assert code == 1 and stderr.count("refusing to overwrite") == 2
    code, _, stderr = _run(
        capsys, photos / "rgb.png", "-o", photos / "rgb.png", "--weights", ckpt, "--overwrite"
    )
    assert code == 1 and "refusing to overwrite" in stderr
    assert _snapshot(photos) == before


def test_single_file_to_named_output_file_and_glob_patterns(capsys, tmp_path, photos, ckpt):
    target = tmp_path / "result" / "clean.png"
    code, _, stderr = _run(capsys, photos / "photo.jpg", "-o", target, "--weights", ckpt)
    assert code == 0, stderr
    assert Image.open(target).format == "PNG"  # the named file's extension wins
    out = tmp_path / "globbed"
    code, _, stderr = _run(
        capsys,
        str(photos / "r*.png"),
        "-o",
        out,
        "--weights",
        ckpt,
        "--tile",
        "8",
        "--overlap",
        "0",
    )
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["rgb.png", "rgba.png"]


def test_missing_inputs_are_reported_and_the_rest_runs(capsys, tmp_path, photos, ckpt):
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        capsys,
        tmp_path / "nope.png",
        str(photos / "*.webp"),
        photos / "rgb.png",
        "-o",
        out,
        "--weights",
        ckpt,
    )
    assert code == 1
    assert "nope.png: no such file" in stderr and "matched no image files" in stderr
    assert (out / "rgb.png").is_file() and "2 failed" in stdout


def test_no_weights_is_a_one_line_error(capsys, monkeypatch, tmp_path, photos):
    monkeypatch.setattr(predictor, "default_weights_path", lambda: None)
    out = tmp_path / "out"
    code, _, stderr = _run(capsys, photos / "rgb.png", "-o", out)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "no default model" in lines[0] and "--weights" in lines[0]
    assert not out.exists()


def test_video_files_go_to_the_video_dispatch(capsys, monkeypatch, tmp_path, photos, ckpt):
    (photos / "clip.mp4").write_bytes(b"\x00" * 10)
    calls = []

    def fake_video(derainer, src, dst, *, overwrite, tile):
        calls.append((src.name, dst.name, overwrite))

    monkeypatch.setattr(batch, "derain_video_file", fake_video)
    code, _, stderr = _run(
        capsys, photos / "clip.mp4", photos / "rgb.png", "-o", tmp_path / "out", "--weights", ckpt
    )
    assert code == 0, stderr
    assert calls == [("clip.mp4", "clip.mp4", False)]


def test_duplicate_output_names_are_not_silently_clobbered(capsys, tmp_path, photos, ckpt):
    other = tmp_path / "other"
    other.mkdir()
    (other / "rgb.png").write_bytes((photos / "rgb.png").read_bytes())
    out = tmp_path / "out"
    code, _, stderr = _run(
        capsys, photos / "rgb.png", other / "rgb.png", "-o", out, "--weights", ckpt
    )
    assert code == 1 and "would also be written" in stderr
    assert "different -o" in stderr and "--recursive" not in stderr  # a hint that helps
    assert os.listdir(out) == ["rgb.png"]


def test_awkward_folder_entries_each_get_one_line(capsys, tmp_path, photos, ckpt):
    """Dangling links and link loops are named with their reason; non-image files are counted;
    the rest of the batch runs and the exit code is 1."""
    (photos / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (photos / "loop.jpg").symlink_to(photos / "loop.jpg")
    (photos / "link_ok.png").symlink_to(photos / "rgb.png")
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, photos, "-o", out, "--weights", ckpt)
    assert code == 1
    lines = err.splitlines()
    assert any("gone.png" in x and "broken symbolic link" in x for x in lines), err
    assert any("loop.jpg" in x and "symbolic link loop" in x for x in lines), err
    assert "Traceback" not in err
    assert (out / "link_ok.png").is_file() and (out / "rgb.png").is_file()
    assert "1 non-image file(s) passed over" in stdout  # notes.txt


def test_animated_gif_is_derained_frame_by_frame(capsys, tmp_path, ckpt):
    rng = np.random.default_rng(1)
    d = tmp_path / "gifs"
    d.mkdir()
    frames = [Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:],
                   duration=[40, 120, 70], loop=2)
    code, _, err = _run(capsys, d, "-o", tmp_path / "out", "--weights", ckpt)
    assert code == 0, err
    with Image.open(tmp_path / "out" / "anim.gif") as im:
        assert im.n_frames == 3 and im.info.get("loop") == 2
        durations, got = [], []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            got.append(np.asarray(im.convert("RGB"), dtype=np.float32))
    assert durations == [40, 120, 70]
    # each frame is the model's output for that frame (up to GIF palette quantisation)
    model = load_model(ckpt)
    with Image.open(d / "anim.gif") as src:
        for i, frame in enumerate(got):
            src.seek(i)
            want = model.derain(np.asarray(src.convert("RGB"))).astype(np.float32)
            assert np.abs(frame - want).mean() < 6, i


def test_outputs_inside_the_input_folder_are_not_inputs(capsys, tmp_path, photos, ckpt):
    """`derain photos -o photos/out --recursive`, twice: the second run must not de-rain the
    first run's outputs into photos/out/out."""
    args = (photos, "-o", photos / "out", "--recursive", "--weights", ckpt)
    _run(capsys, *args)
    first = sorted(p.relative_to(photos / "out") for p in (photos / "out").rglob("*.png"))
    assert first and not (photos / "out" / "out").exists()
    code, stdout, err = _run(capsys, *args)
    assert not (photos / "out" / "out").exists()
    assert sorted(p.relative_to(photos / "out") for p in (photos / "out").rglob("*.png")) == first
    assert f"{len(list((photos / 'out').rglob('*.*')))} file(s) inside the output folder" in stdout
    assert "out/out" not in err
    # the output folder as the input folder itself (with --suffix) still takes its files
    code, stdout, err = _run(capsys, photos / "sub", "-o", photos / "sub", "--suffix", "_dr",
                             "--weights", ckpt)
    assert code == 0 and (photos / "sub" / "inner_dr.png").is_file(), err


def test_python_api_derains_paths_with_the_cli_rules(tmp_path, photos, ckpt):
    d = load_model(ckpt, backend="torch")
    out = tmp_path / "api"
    res = d.derain_path(photos, out)
    assert res.ok is False and any("corrupt.png" in f for f in res.failed)  # bad file listed
    assert (out / "rgb.png") in res.written and (out / "rgb.png").is_file()
    again = d.derain_path(photos / "rgb.png", out)
    assert again.ok and again.written == [] and again.skipped == [out / "rgb.png"]
    one = d.derain_path(photos / "rgb.png", tmp_path / "single.png")
    assert one.written == [tmp_path / "single.png"]
    with pytest.raises(MemderainError, match="derain_path"):
        d.derain(str(photos / "rgb.png"))


def test_folders_read_and_write_beside_the_network(tmp_path, photos, ckpt, monkeypatch):
    """Reading the next photo and writing the last one run in I/O threads while the network
    works; every output still lands, in order, equal to a one-by-one run."""
    import threading

    seen: set[str] = set()
    real_read = batch.read_image

    def read(path, **kwargs):
        seen.add(threading.current_thread().name)
        return real_read(path, **kwargs)

    d = load_model(ckpt, backend="torch")
    monkeypatch.setattr(batch, "read_image", read)
    res = d.derain_path(photos, tmp_path / "a")
    assert seen and all(name.startswith("memderain-io") for name in seen)
    monkeypatch.undo()
    assert len(res.written) >= 2 and any("corrupt" in f for f in res.failed)
    for dst in res.written:
        (src,) = [p for p in photos.iterdir() if p.stem == dst.stem]
        alone = tmp_path / "b" / dst.name
        d.derain_path(src, alone)
        assert np.array_equal(np.asarray(Image.open(dst)), np.asarray(Image.open(alone)))


def test_each_subcommand_parses_alone_and_derain_starts_without_training_modules():
    """main() builds only the named subcommand's parser: every subcommand is found that way,
    and a fresh `memderain derain` process imports neither the trainer, the adaptation code
    (its options' defaults come from plain constants) nor scipy."""
    import subprocess
    import sys

    from memderain.cli import SUBCOMMANDS, build_parser

    full = build_parser()
    sub = next(a for a in full._actions if a.__class__.__name__ == "_SubParsersAction")
    for module in SUBCOMMANDS:
        name = module.rsplit(".", 1)[1].replace("_", "-")
        alone = build_parser(only=name)
        action = next(a for a in alone._actions
                      if a.__class__.__name__ == "_SubParsersAction")
        assert list(action.choices) == [name] and name in sub.choices
    code = ("import sys; from memderain.cli import build_parser; build_parser(only='derain'); "
            "print(sorted(m for m in ('memderain.training.trainer', 'scipy.ndimage', "
            "'memderain.evaluation.metrics', 'memderain.training.adapt', "
            "'memderain.training.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "[]"


def _noise(path, size=(16, 16), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_in_place_suffix_rerun_skips_its_own_outputs(capsys, tmp_path, ckpt):
    """Issue 33.1: `derain photos -o photos --suffix _d`, run again, must not de-rain x_d.png
    into x_d_d.png: a file named as another input's output is an earlier output."""
    d = tmp_path / "photos"
    d.mkdir()
    _noise(d / "a.png")
    _noise(d / "b.jpg", seed=1)
    args = (d, "-o", d, "--suffix", "_d", "--weights", ckpt)
    code, out, err = _run(capsys, *args)
    assert code == 0 and "derained 2 file(s)" in out, err
    assert sorted(p.name for p in d.iterdir()) == ["a.png", "a_d.png", "b.jpg", "b_d.jpg"]
    before = _snapshot(d)
    for extra in ((), ("--overwrite",)):
        code, out, err = _run(capsys, *args, *extra)
        assert code == 0, err
        assert "2 earlier output(s) not taken as inputs" in out, out
        assert "is an input file" not in err and "failed" not in out
        assert sorted(p.name for p in d.iterdir()) == ["a.png", "a_d.png", "b.jpg", "b_d.jpg"]
    assert "2 skipped (output exists)" not in out and "derained 2 file(s)" in out  # --overwrite
    assert {p: b for p, b in _snapshot(d).items() if "_d" not in p.name} == {
        p: b for p, b in before.items() if "_d" not in p.name}  # inputs untouched
    # only a name with its original beside it is an earlier output: c_d.png alone is a photo
    _noise(d / "c_d.png", seed=2)
    code, out, err = _run(capsys, *args)
    assert code == 0 and "derained 1 file(s)" in out and (d / "c_d_d.png").is_file(), err


def test_animated_gif_to_another_format_is_refused_before_work(capsys, tmp_path, ckpt):
    """Issue 33.5: an animated GIF with -o r.mp4 / r.png / r.webp used to get GIF data in
    that file; now refused in one line. A one-frame GIF is an image: written as -o names."""
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
              for _ in range(3)]
    anim = tmp_path / "rain.gif"
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=50, loop=0)
    for name in ("r.mp4", "r.png", "r.webp"):
        code, _, err = _run(capsys, anim, "-o", tmp_path / name, "--weights", ckpt)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert "animated GIF" in err and ".gif" in err and not (tmp_path / name).exists()
    with pytest.raises(MemderainError, match="animated GIF"):
        load_model(ckpt, backend="torch").derain_path(anim, tmp_path / "r.png")
    still = tmp_path / "still.gif"
    frames[0].save(still)
    code, _, err = _run(capsys, still, "-o", tmp_path / "still.png", "--weights", ckpt,
                        "--backend", "torch")
    assert code == 0, err
    with Image.open(tmp_path / "still.png") as im, Image.open(still) as src:
        assert im.format == "PNG"
        want = load_model(ckpt, backend="torch").derain(np.asarray(src.convert("RGB")))
        assert np.abs(np.asarray(im.convert("RGB"), np.int16) - want).max() <= 1
    # a photo as a video file and a video as a photo: refused before the model loads
    (tmp_path / "clip.mp4").write_bytes(b"not read: refused by its name first")
    for src, dst in ((still, "x.mp4"), (tmp_path / "clip.mp4", "x.png")):
        code, _, err = _run(capsys, src, "-o", tmp_path / dst, "--weights", tmp_path / "no.pt")
        assert code == 1 and f"-o {tmp_path / dst}:" in err and "no.pt" not in err, err


def test_several_inputs_with_a_file_name_for_o_are_refused(capsys, tmp_path, photos, ckpt):
    """Issue 33.8: `derain a.png b.png -o two.png` made a folder named two.png."""
    for inputs in ((photos / "rgb.png", photos / "grey.png"), (photos,),
                   (str(photos / "*.png"),)):
        code, _, err = _run(capsys, *inputs, "-o", tmp_path / "two.png", "--weights", ckpt)
        assert code == 1 and "need an output folder" in err, err
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "two.png").exists()
    (tmp_path / "odd.png").mkdir()  # a folder that exists is a folder, whatever its name
    code, _, err = _run(capsys, photos / "rgb.png", photos / "grey.png", "-o",
                        tmp_path / "odd.png", "--weights", ckpt)
    assert code == 0 and (tmp_path / "odd.png" / "rgb.png").is_file(), err


def test_recursive_hint_only_when_sub_folders_hold_images(capsys, tmp_path, ckpt):
    """Issue 33.9: an empty folder, or one holding only a .txt, suggested --recursive."""
    hint = "no image files in this folder (its sub-folders have some: add --recursive)"
    empty, text, nested = tmp_path / "empty", tmp_path / "text", tmp_path / "nested"
    for d in (empty, text / "sub", nested / "sub"):
        d.mkdir(parents=True)
    (text / "notes.txt").write_text("no image\n")
    (text / "sub" / "more.txt").write_text("no image either\n")
    _noise(nested / "sub" / "deep.png")
    for folder, want in ((empty, "empty folder"), (text, "no image or video files"),
                         (nested, hint)):
        code, _, err = _run(capsys, folder, "-o", tmp_path / "out", "--weights", ckpt)
        assert code == 1 and f"{folder}: {want}" in err, err
        assert ("--recursive" in err) == (folder == nested), err


def test_adapt_on_a_photo_says_a_photo_is_not_a_clip(capsys, tmp_path, photos, ckpt):
    """Issue 33.9: `derain photo.png --adapt` said "needs exactly one INPUT" for one INPUT."""
    code, _, err = _run(capsys, photos / "rgb.png", "-o", tmp_path / "o", "--adapt")
    assert code == 1 and "rgb.png: a photo is not a clip; --adapt needs" in err, err
    assert "exactly one" not in err
    code, _, err = _run(capsys, photos / "rgb.png", photos / "grey.png", "-o", tmp_path / "o",
                        "--adapt")
    assert code == 1 and "--adapt needs exactly one INPUT" in err and "got 2" in err, err
