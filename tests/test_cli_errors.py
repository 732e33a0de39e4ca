"""Bad data files end `kerasseg train` / `evaluate` with one line naming the file and the problem,
exit status 2, no traceback, and a prompt exit: found by the scan of the split's files before the
model is built, or (scan skipped, or a file it did not sample) by the input pipeline mid-fit."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasseg import cli, datasets, training
from kerasseg.datasets import DataError, files_of, pipeline_error_message
from tests import folder_cli

TIMEOUT = 150  # a subprocess that reaches it has hung: the test fails on the timeout
TINY = [
    "--model",
    "unet",
    "--backbone",
    "none",
    "--model-option",
    "filters=4",
    "--model-option",
    "depth=2",
    "--weights",
    "none",
    "--crop-size",
    "32",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "--batch-size",
    "2",
    "--val-steps",
    "1",
    "--no-tensorboard",
]
H, W = 40, 48


def make_folder(root, bad=None):
    """A `folder` set (train/ and val/, 4 samples each, 3 classes in classes.txt) with one bad
    file, train/.../img_01, of kind `bad`; returns the path of that file."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(
                root / split / "images" / f"img_{i:02d}.png"
            )
            Image.fromarray(rng.integers(0, 3, (H, W), dtype=np.uint8)).save(
                root / split / "masks" / f"img_{i:02d}.png"
            )
    (root / "classes.txt").write_text("sky\nroad\ncar\n")
    image = root / "train" / "images" / "img_01.png"
    mask = root / "train" / "masks" / "img_01.png"
    if bad == "rgb":
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(mask)
        return mask
    if bad == "jpeg":
        mask.unlink()
        mask = mask.with_suffix(".jpg")
        Image.fromarray(rng.integers(0, 3, (H, W), dtype=np.uint8)).save(mask, quality=95)
        return mask
    if bad == "corrupt":
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
        return image
    if bad == "truncated":  # a valid header, then the data stops
        data = image.read_bytes()
        image.write_bytes(data[: len(data) // 3])
        return image
    if bad == "value":
        label = np.zeros((H, W), np.uint8)
        label[5, 7] = 7
        Image.fromarray(label).save(mask)
        return mask
    if bad == "size":
        Image.fromarray(np.zeros((H, W + 2), np.uint8)).save(mask)
        return mask
    return None


PROBLEMS = {
    "rgb": "is a colour (RGB) image; expected single-channel class indices",
    "jpeg": "is a JPEG: its lossy compression changes class indices",
    "corrupt": "(corrupt or not an image)",
    "truncated": "(corrupt or not an image)",
    "value": "label value(s) [7] in",
}


class Outcome:
    """A command's exit status and output, from a subprocess or from `cli.main` in this one."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


# The console runs (subprocesses, side by side): (case, bad file) -> extra arguments.
CONSOLE_CASES = {
    ("scan", "rgb"): (),
    ("fit", "rgb"): ("--no-file-check",),
    ("fit", "corrupt"): ("--no-file-check",),
    ("fit", "value"): ("--no-file-check",),
}


@pytest.fixture(scope="module")
def console_runs(tmp_path_factory):
    """`kerasseg train` as the console runs it, once per case of CONSOLE_CASES, each on its own
    `folder` set with one bad file: {case: (bad file, run folder, CompletedProcess)}. A process
    that does not end within TIMEOUT has hung (after a failed pipeline: the test fails)."""
    runs, argvs = {}, []
    for (case, bad), extra in CONSOLE_CASES.items():
        root = tmp_path_factory.mktemp(f"{case}_{bad}")
        runs[case, bad] = (make_folder(root / "data", bad), root / "run")
        argvs.append(
            (
                "train",
                *TINY,
                *extra,
                "--dataset",
                "folder",
                "--data-dir",
                root / "data",
                "--output",
                root / "run",
            )
        )
    procs = folder_cli.run_cli_together(*argvs, timeout=TIMEOUT)
    return {key: (*runs[key], proc) for key, proc in zip(runs, procs)}


@pytest.fixture
def run_here(capfd):
    """`cli.main(ARGV)` in this process, its output captured at the file descriptors (so that
    TensorFlow's or OpenCV's C++ log lines would show too). The console's own start-up, in a
    fresh process, is checked by the console runs."""
    tf.config.list_physical_devices("GPU")  # TensorFlow's CUDA probe, before the capture

    def run(*argv):
        capfd.readouterr()
        code = cli.main([str(a) for a in argv])
        out, err = capfd.readouterr()
        return Outcome(code, out, err)

    return run


def assert_one_line_error(proc, command, path, problem):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # no TensorFlow, CUDA or OpenCV log lines either
    assert lines[0].startswith(f"kerasseg {command}: error: ")
    assert repr(str(path)) in lines[0] and problem in lines[0]


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("bad", ["rgb", "jpeg", "corrupt", "value"])
def test_train_scan_stops_on_a_bad_file_before_building(tmp_path, run_here, console_runs, bad):
    if ("scan", bad) in console_runs:
        path, out, proc = console_runs["scan", bad]
    else:  # the scan runs before TensorFlow does anything: the same in this process
        path, out = make_folder(tmp_path / "data", bad), tmp_path / "run"
        proc = run_here(
            "train", *TINY, "--dataset", "folder", "--data-dir", tmp_path / "data", "--output", out
        )
    assert_one_line_error(proc, "train", path, PROBLEMS[bad])
    if bad == "value":
        assert "outside the classes 0..2 and ignore_index 255" in proc.stderr
    assert "Epoch" not in proc.stdout  # stopped before training started
    assert not out.exists()  # ... and before the run folder was written


@pytest.mark.parametrize("bad", ["rgb", "corrupt", "value"])
def test_train_pipeline_error_mid_fit_is_one_line_and_exits(console_runs, bad):
    path, _, proc = console_runs["fit", bad]
    assert_one_line_error(proc, "train", path, PROBLEMS[bad])


def test_evaluate_scans_before_loading_the_checkpoint(tmp_path, run_here):
    path = make_folder(tmp_path / "data", "value")
    # The bad file is in train/: evaluate the train split. The checkpoint is never loaded (the
    # scan comes first), so any existing file stands in for it.
    proc = run_here(
        "evaluate",
        "--checkpoint",
        __file__,
        "--dataset",
        "folder",
        "--data-dir",
        tmp_path / "data",
        "--split",
        "train",
    )
    assert_one_line_error(proc, "evaluate", path, PROBLEMS["value"])


def test_debug_flag_raises_instead_of_one_line(tmp_path):
    """--debug lets the error through (the console then prints its traceback)."""
    path = make_folder(tmp_path / "data", "rgb")
    argv = ["--debug", "train", *TINY, "--dataset", "folder", "--data-dir", tmp_path / "data"]
    with pytest.raises(DataError) as caught:
        cli.main([str(a) for a in argv + ["--output", tmp_path / "run"]])
    assert repr(str(path)) in str(caught.value) and PROBLEMS["rgb"] in str(caught.value)


# --------------------------------------------------------------------------- in process


def test_files_of_lists_the_split_and_decodes_with_the_loader(tmp_path):
    make_folder(tmp_path / "data")
    ds = datasets.load("folder", data_dir=tmp_path / "data", split="val", shuffle_files=True)
    files = files_of(ds)
    assert [os.path.basename(item[0]) for item in files.items] == [
        f"img_{i:02d}.png" for i in range(4)
    ]
    assert all(
        item[1].endswith(os.path.join("val", "masks", os.path.basename(item[0])))
        for item in files.items
    )
    image, label = files.decode(*files.items[2])
    want = np.asarray(Image.open(files.items[2][1]))
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(label, want)
    assert files_of(datasets.load("shapes", split="val", num_images=2)) is None


@pytest.mark.parametrize("bad", ["rgb", "jpeg", "corrupt", "truncated", "value", "size"])
def test_check_files_names_the_file_and_the_problem(tmp_path, bad):
    path = make_folder(tmp_path / "data", bad)
    ds = datasets.load("folder", data_dir=tmp_path / "data", split="train")
    with pytest.raises(DataError) as caught:
        training.check_files(ds, 3, 255)
    message = str(caught.value)
    assert repr(str(path)) in message and "\n" not in message
    if bad == "size":
        assert "size mismatch" in message and "48x40" in message and "50x40" in message
    else:
        assert PROBLEMS[bad] in message


def test_check_files_checks_class_indices_the_loader_passes_through(tmp_path):
    # Without classes.txt the loader passes values through; the caller's class count decides.
    make_folder(tmp_path / "data")
    (tmp_path / "data" / "classes.txt").unlink()
    ds = datasets.load("folder", data_dir=tmp_path / "data", split="train", ignore_index=255)
    assert training.check_files(ds, 3, 255) == 4
    with pytest.raises(DataError, match=r"label value\(s\) \[2\] in .* outside the classes 0..1"):
        training.check_files(ds, 2, 255)


def test_pipeline_error_message_recovers_the_loaders_text(tmp_path):
    path = make_folder(tmp_path / "data", "value")
    ds = datasets.load("folder", data_dir=tmp_path / "data", split="train")
    with pytest.raises(tf.errors.OpError) as caught:
        for _ in ds.prefetch(2):
            pass
    assert pipeline_error_message(caught.value) == (
        f"label value(s) [7] in {str(path)!r} outside the classes 0..2 and ignore_index 255"
    )

    @tf.function
    def check(x):
        tf.debugging.Assert(x < 0, ["CrossEntropy: labels must lie in [0, 3); found", x])
        return x

    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        check(tf.constant(5))
    assert pipeline_error_message(caught.value) == (
        "CrossEntropy: labels must lie in [0, 3); found 5"
    )
    assert pipeline_error_message(tf.errors.UnknownError(None, None, "device lost")) is None


def test_train_api_raises_data_error_mid_fit(tmp_path):
    path = make_folder(tmp_path / "data", "rgb")
    with pytest.raises(DataError) as caught:
        training.train(
            "unet",
            "folder",
            data_dir=tmp_path / "data",
            output=tmp_path / "run",
            backbone=None,
            weights=None,
            model_options={"filters": 4, "depth": 2},
            epochs=1,
            batch_size=2,
            crop_size=32,
            steps_per_epoch=2,
            tensorboard=False,
            verbose=0,
            check=False,
        )
    assert str(caught.value) == (
        f"label file {str(path)!r} is a colour (RGB) image; expected single-channel class "
        f"indices (grey or palette PNG)"
    )
    assert not caught.value.__context__  # nothing holds the failed pipeline
