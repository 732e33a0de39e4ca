"""What `kerasseg predict` and `kerasseg export` write: TFLite at the run's training crop, output
names that never collide, palette label PNGs, folders and globs as inputs, run folders as
checkpoints; and the title and legend drawing they share with the demo."""

import os
import shutil
import warnings

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasseg import cli, datasets, inference, visualize
from kerasseg.cli import predict
from kerasseg.cli.checkpoint import labels_of, load_checkpoint
from kerasseg.cli.predict import output_stems
from kerasseg.datasets._io import IMAGE_EXTENSIONS
from tests.test_cli import TINY, run_cli

CROP = (32, 48)  # not square: a TFLite file of the wrong orientation would show


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of a tiny U-Net on `shapes`, at a CROP training crop."""
    out = tmp_path_factory.mktemp("outputs") / "run"
    argv = ["train", *TINY, "--crop-size", *map(str, CROP), "--epochs", "1", "--output", str(out)]
    assert cli.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def model(trained):
    return load_checkpoint(str(trained / "best.keras"))


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def photos():
    """Three different `shapes` test images (RGB uint8)."""
    return [image.numpy() for image, _ in datasets.load("shapes", split="test", num_images=3)]


def _one_line_error(capsys, *argv):
    code, _, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- export


def test_tflite_takes_the_runs_crop_and_says_so(capsys, trained, tmp_path):
    target = tmp_path / "model.tflite"
    code, out, err = run_cli(
        capsys, "export", "--checkpoint", trained, "--format", "tflite", "--output", target
    )
    assert code == 0, err
    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated"
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(target))
    (images,) = interpreter.get_input_details()
    assert list(images["shape"]) == [1, *CROP, 3]
    assert f"exported tflite to {target} (input 1x{CROP[0]}x{CROP[1]}x3)" in out


def test_tflite_without_a_recorded_size_asks_for_one(capsys, trained, tmp_path):
    alone = tmp_path / "alone.keras"  # no run.json beside it, and the model takes any size
    shutil.copy(trained / "best.keras", alone)
    line = _one_line_error(
        capsys, "export", "--checkpoint", alone, "--format", "tflite", "--output", tmp_path / "x"
    )
    assert "--input-size H W" in line and str(alone) in line
    line = _one_line_error(
        capsys, "export", "--checkpoint", alone, "--input-size", 64, "--output", tmp_path / "s"
    )
    assert "--input-size" in line and "SavedModel" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.keras"]


# --------------------------------------------------------------------------- predict


def test_output_stems_never_collide():
    paths = ["in/a/x.png", "in/b/x.png", "in/b/y.png", "in/b/y.jpg"]
    stems = output_stems(paths, "out")
    assert stems == {
        "in/a/x.png": os.path.join("out", "a", "x"),
        "in/b/x.png": os.path.join("out", "b", "x"),
        "in/b/y.png": os.path.join("out", "b", "y.png"),
        "in/b/y.jpg": os.path.join("out", "b", "y.jpg"),
    }
    assert output_stems(["in/a/x.png", "in/a/y.png"], "out")["in/a/y.png"] == os.path.join(
        "out", "y"
    )
    # The --help lists the extensions a folder's images are found by (without importing them).
    assert all(ext in predict.DESCRIPTION for ext in IMAGE_EXTENSIONS)


def test_same_names_in_two_folders_and_palette_labels(capsys, trained, model, photos, tmp_path):
    inputs = [_write(tmp_path / "in" / d / "x.png", p) for d, p in zip("ab", photos)]
    out_dir = tmp_path / "preds"
    code, out, err = run_cli(
        capsys, "predict", "--checkpoint", trained / "best.keras", *inputs, "--output", out_dir
    )
    assert code == 0, err
    names, colours = labels_of(model, str(trained / "best.keras"))
    for folder, image in zip("ab", photos):
        stem = out_dir / folder / "x"
        expected = inference.predict(model, image)
        labels = Image.open(f"{stem}_labels.png")
        assert labels.mode == "P"
        assert labels.getpalette()[: colours.size] == colours.ravel().tolist()
        np.testing.assert_array_equal(np.array(labels), expected)
        mask = cv2.cvtColor(cv2.imread(f"{stem}_mask.png"), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(mask, colours[expected])  # the image's exact size
        overlay = cv2.cvtColor(cv2.imread(f"{stem}_overlay.png"), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        np.testing.assert_array_equal(
            overlay[:height, :width], visualize.overlay(image, expected, colours)
        )
        below = overlay[height:]
        assert below.shape[0] > 0 and (below != 255).any()  # the legend strip
        assert f"{stem}_overlay.png" in out
    assert not np.array_equal(
        np.array(Image.open(out_dir / "a" / "x_labels.png")),
        np.array(Image.open(out_dir / "b" / "x_labels.png")),
    )
    assert sorted(os.listdir(out_dir)) == ["a", "b"]


def test_folder_glob_and_run_folder_inputs(capsys, trained, photos, tmp_path):
    folder = tmp_path / "photos"
    for i, image in enumerate(photos[:2]):
        _write(folder / f"p{i}.png", image)
    _write(tmp_path / "other" / "q.jpg", photos[2])
    (folder / "notes.txt").write_text("not an image")
    out_dir = tmp_path / "preds"
    glob = str(tmp_path / "other" / "*.jpg")  # as a quoted pattern reaches the command
    code, out, err = run_cli(
        capsys, "predict", "--checkpoint", trained, folder, glob, "--output", out_dir
    )
    assert code == 0, err
    assert f"checkpoint: {trained / 'best.keras'}" in out
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*_labels.png"))
    assert written == ["other/q_labels.png", "photos/p0_labels.png", "photos/p1_labels.png"]


def test_empty_inputs_and_checkpoint_folders_are_one_line(capsys, trained, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = ["--output", tmp_path / "preds"]
    line = _one_line_error(capsys, "predict", "--checkpoint", trained, empty, *out)
    assert f"no images in folder '{empty}'" in line
    pattern = str(tmp_path / "*.png")
    line = _one_line_error(capsys, "predict", "--checkpoint", trained, pattern, *out)
    assert f"no images match '{pattern}'" in line
    line = _one_line_error(capsys, "predict", "--checkpoint", empty, pattern, *out)
    assert str(empty) in line and "best.keras" in line and "last.keras" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    shutil.copy(trained / "last.keras", empty / "last.keras")  # a folder without best.keras
    code, said, _ = run_cli(capsys, "predict", "--checkpoint", empty, pattern, *out)
    assert code == 2 and f"checkpoint: {empty / 'last.keras'}" in said


def test_evaluate_takes_a_run_folder(capsys, trained):
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", trained, "--steps", 1)
    assert code == 0, err
    assert f"checkpoint: {trained / 'best.keras'}" in out and "shapes val: mIoU" in out


# --------------------------------------------------------------------------- drawing


def test_title_row_and_legend_sizes():
    strip = visualize.title_row(["image", "ground truth", "prediction"], [256, 256, 256], gap=4)
    assert strip.shape[1] == 3 * 256 + 2 * 4 and 10 < strip.shape[0] < 60
    for column in range(3):  # each title drawn over its own column
        assert (strip[:, column * 260 : column * 260 + 256] != 255).any()
    colours = visualize.palette(4)
    names = ["background", "circle", "rectangle", "triangle"]
    labels = np.full((40, 300), 2, np.int64)
    labels[:, 200:] = 3
    picture = visualize.overlay(np.full((40, 300, 3), 90, np.uint8), labels, colours)
    shown = visualize.with_legend(picture, labels, names, colours)
    assert shown.shape[1] == 300 and shown.shape[0] > 40
    np.testing.assert_array_equal(shown[:40], picture)
    strip = shown[44:]  # below the gap
    for index in (2, 3):  # swatches of the classes present, and only those (text is grey)
        assert (strip == colours[index]).all(axis=-1).any()
    assert not (strip == colours[1]).all(axis=-1).any()


def test_grid_titles_legend_and_enlarged_cells():
    colours = visualize.palette(4)
    image, labels = np.full((20, 30, 3), 90, np.uint8), np.zeros((20, 30), np.int64)
    labels[5:, 10:] = 2
    big_image, big_labels = visualize.enlarge(image, labels, min_side=64)
    assert big_image.shape == (80, 120, 3)  # the smallest whole factor: 4
    np.testing.assert_array_equal(big_labels[::4, ::4], labels)
    plain = visualize.grid([big_image], [big_labels], [big_labels], colours)
    titled = visualize.grid(
        [big_image],
        [big_labels],
        [big_labels],
        colours,
        titles=("image", "ground truth", "prediction"),
        class_names=["a", "b", "c", "d"],
    )
    assert titled.shape[1] == plain.shape[1] and titled.shape[0] > plain.shape[0]
    title_height = titled.shape[0] - plain.shape[0]
    # The cells sit below the title strip, unchanged; the strip holds text.
    start = next(y for y in range(titled.shape[0]) if (titled[y] == plain[0]).all())
    assert 0 < start < title_height
    np.testing.assert_array_equal(titled[start : start + plain.shape[0]], plain)
    assert (titled[: start - 4] != 255).any()
