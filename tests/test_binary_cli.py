"""Binary (background/foreground) training as a first-class case: `kerasseg train --binary` on a
`folder` set of 0/255 masks gives a one-channel sigmoid checkpoint that `evaluate` and `predict`
read as two classes; the same set stored as 0/1 trains identically. Also: the folder options that
change the class set reach `datasets.info`, the loader's files are declared on its dataset, and
OpenCV stays quiet on a corrupt file."""

import csv
import json
import os
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

import kerasseg
from kerasseg import cli, datasets, inference, training
from kerasseg.cli.checkpoint import load_checkpoint
from kerasseg.datasets import _io, files_of
from tests import folder_cli

TIMEOUT = 300  # a subprocess that reaches it has hung
SIZE = 64
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
    "--no-tensorboard",
    "--optimizer",
    "adam",
]


def square_set(root, foreground, n_train=10, n_val=2, seed=0):
    """train/ and val/ folders of dark-noise images with one bright square; masks 0/foreground.
    The same seed gives the same images and squares whatever `foreground` is."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        folder_cli.write_squares(
            os.path.join(root, split), foreground, n, rng, size=SIZE, name="im{i:02d}"
        )
    return str(root)


def losses_of(history_path):
    with open(history_path) as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in row.items() if "loss" in k} for row in rows]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The 0/255 and the 0/1 set, each trained once from the CLI the same way."""
    root = tmp_path_factory.mktemp("binary_cli")
    sets = {}
    for name, foreground in (("a", 255), ("b", 1)):
        sets[name] = (square_set(root / f"data_{name}", foreground), str(root / f"run_{name}"))
    procs = folder_cli.run_cli_together(
        *[
            (
                "train",
                "--dataset",
                "folder",
                "--data-dir",
                data_dir,
                "--binary",
                "--loss",
                "binary_cross_entropy+dice",
                *TINY,
                "--output",
                output,
            )
            for data_dir, output in sets.values()
        ],
        timeout=TIMEOUT,
    )
    return {name: (*sets[name], proc) for name, proc in zip(sets, procs)}


def test_cli_binary_training_writes_a_one_channel_sigmoid_checkpoint(runs):
    data_dir, output, proc = runs["a"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = load_checkpoint(os.path.join(output, "last.keras"))
    assert tuple(model.outputs[0].shape) == (None, None, None, 1)
    assert inference.output_kind(model) == "sigmoid"
    assert os.path.exists(os.path.join(output, "best.keras"))  # val mIoU was monitored
    with open(os.path.join(output, "run.json")) as f:
        run = json.load(f)
    assert run["binary"] is True and run["num_classes"] == 2
    assert run["class_names"] == ["background", "foreground"]
    # The model itself names its one channel: the foreground, with its colour.
    assert model.class_names == ["foreground"] and model.palette == [run["palette"][1]]
    with open(os.path.join(output, "history.csv")) as f:
        header = next(csv.reader(f))
    for column in (
        "loss",
        "mean_iou",
        "foreground_iou",
        "pixel_accuracy",
        "val_mean_iou",
        "val_foreground_iou",
    ):
        assert column in header, header
    # The 0/255 reading is said once, on one line, without Python's source-line echo.
    said = [line for line in proc.stderr.splitlines() if "0 and 255" in line]
    assert len(said) == 1 and said[0].startswith("kerasseg: warning: folder: "), proc.stderr
    assert "warnings.warn" not in proc.stderr and "BinaryMaskWarning" not in proc.stderr


def test_cli_evaluate_and_predict_read_the_binary_checkpoint_as_two_classes(runs, tmp_path, capsys):
    data_dir, output, proc = runs["a"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = os.path.join(output, "last.keras")
    # In this process (the console's own start-up is the training runs' subprocesses).
    code, out, err = run_main(
        capsys,
        "evaluate",
        "--checkpoint",
        checkpoint,
        "--data-dir",
        data_dir,
        "--json",
        tmp_path / "scores.json",
    )
    assert code == 0, err[-3000:]
    assert "folder val: mIoU " in out
    assert "background" in out and "foreground" in out
    with open(tmp_path / "scores.json") as f:
        scores = json.load(f)

    # The same scores, by hand: predict gives 0/1 maps, p > 0.5 of the sigmoid output.
    model = load_checkpoint(checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 0/255 reading, said by the loader
        pairs = [
            (x, y)
            for x, y in datasets.load("folder", data_dir=data_dir, split="val").as_numpy_iterator()
        ]
    cm = np.zeros((2, 2))
    for image, truth in pairs:
        labels = inference.predict(model, image)
        assert labels.shape == truth.shape and set(np.unique(labels)) <= {0, 1}
        probs = np.asarray(model(image[None].astype("float32"), training=False))[0, ..., 0]
        np.testing.assert_array_equal(labels, (probs > 0.5).astype(labels.dtype))
        np.add.at(cm, (truth.ravel(), labels.ravel()), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = training.evaluate(model, "folder", data_dir=data_dir, verbose=0)
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    present = (cm.sum(0) + cm.sum(1)) > 0
    assert summary["mean_iou"] == pytest.approx(iou[present].mean(), abs=1e-9)
    assert scores["mean_iou"] == pytest.approx(summary["mean_iou"], abs=1e-9)
    assert summary["total_pixels"] == 2 * SIZE * SIZE and summary["num_classes"] == 2
    assert [c["name"] for c in summary["classes"]] == ["background", "foreground"]
    assert [c["gt_pixels"] for c in summary["classes"]] == cm.sum(1).tolist()
    assert [c["pred_pixels"] for c in summary["classes"]] == cm.sum(0).tolist()

    # `predict` writes label PNGs of 0/1 with the two-colour palette.
    image_path = os.path.join(data_dir, "val", "images", "im00.png")
    code, _, err = run_main(
        capsys, "predict", "--checkpoint", checkpoint, image_path, "--output", tmp_path / "pred"
    )
    assert code == 0, err[-3000:]
    written = np.asarray(Image.open(tmp_path / "pred" / "im00_labels.png"))
    np.testing.assert_array_equal(written, inference.predict(model, pairs[0][0]))


def test_0_255_and_0_1_sets_train_to_the_same_history(runs):
    (_, out_a, proc_a), (_, out_b, proc_b) = runs["a"], runs["b"]
    assert proc_a.returncode == 0, proc_a.stderr[-3000:]
    assert proc_b.returncode == 0, proc_b.stderr[-3000:]
    assert "0 and 255" not in proc_b.stderr  # 0/1 masks need no mapping, nothing to say
    # Same images, same classes, same seed: training on the CPU is reproducible, exactly.
    history_a = losses_of(os.path.join(out_a, "history.csv"))
    history_b = losses_of(os.path.join(out_b, "history.csv"))
    assert history_a == history_b and len(history_a) == 1
    assert set(history_a[0]) == {"loss", "val_loss"}


# --------------------------------------------------------------------------- errors, in-process


def run_main(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def three_class_set(root):
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            root / "images" / f"im{i}.png"
        )
        Image.fromarray(rng.integers(0, 3, (32, 32), dtype=np.uint8)).save(
            root / "masks" / f"im{i}.png"
        )
    (root / "classes.txt").write_text("sky\nroad\ncar\n")
    return root


@pytest.mark.parametrize(
    "flags", [["--binary"], ["--loss", "bce"], ["--binary", "--loss", "cross_entropy+dice"]]
)
def test_binary_on_a_three_class_set_is_one_line(capsys, tmp_path, flags):
    data_dir = three_class_set(tmp_path / "data")
    code, out, err = run_main(
        capsys,
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        data_dir,
        *flags,
        *TINY,
        "--val-split",
        "none",
        "--output",
        tmp_path / "run",
    )
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kerasseg train: error: binary training")
    assert "needs 2 classes" in lines[0] and "has 3 (sky, road, car)" in lines[0]
    assert ("the loss is binary" in lines[0]) == ("--binary" not in flags)
    assert not (tmp_path / "run").exists()


def test_binary_with_another_activation_is_refused(tmp_path):
    data_dir = square_set(tmp_path / "d", 255, n_train=2, n_val=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="activation 'sigmoid'"):
            training.train(
                "unet",
                "folder",
                data_dir=data_dir,
                output=tmp_path / "run",
                binary=True,
                backbone=None,
                weights=None,
                model_options={"activation": "softmax"},
            )


def test_evaluate_refuses_a_one_channel_model_on_a_three_class_set(tmp_path):
    data_dir = three_class_set(tmp_path / "data")
    model = kerasseg.unet(1, backbone=None, weights=None, filters=4, depth=2, activation="sigmoid")
    with pytest.raises(ValueError, match="one output channel .* has 3 classes"):
        training.evaluate(model, "folder", data_dir=str(data_dir), split="all", verbose=0)


# --------------------------------------------------------------------------- folder options


def test_folder_options_that_change_the_class_set_reach_info(tmp_path):
    data_dir = square_set(tmp_path / "d", 255, n_train=3, n_val=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = training.dataset_meta("folder", data_dir, {})
    assert meta.num_classes == 2 and meta.class_names == ("background", "foreground")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # ignore_index=255: 255 is ignore, and the class count comes from the masks (only 0).
        meta = training.dataset_meta("folder", data_dir, {"ignore_index": 255})
        labels = [
            y
            for _, y in datasets.load(
                "folder", data_dir=data_dir, split="train", ignore_index=255
            ).as_numpy_iterator()
        ]
        assert meta.num_classes == 1 and all(set(np.unique(y)) == {0, 255} for y in labels)
        # binary=False: the same.
        assert training.dataset_meta("folder", data_dir, {"binary": False}).num_classes == 1
        # With two names in classes.txt, ignore_index=255 keeps the names and 255 as ignore.
        (tmp_path / "d" / "classes.txt").write_text("water\nland\n")
        meta = training.dataset_meta("folder", data_dir, {"ignore_index": 255})
        assert meta.class_names == ("water", "land") and meta.ignore_index == 255
    assert not [w for w in caught if "0 and 255" in str(w.message)]
    # --binary where ignore_index=255 leaves one class: the one-line error, before any model.
    with pytest.raises(ValueError, match="needs 2 classes .* has 1"):
        (tmp_path / "d" / "classes.txt").unlink()
        training.train(
            "unet",
            "folder",
            data_dir=data_dir,
            output=tmp_path / "run",
            binary=True,
            dataset_options={"ignore_index": 255},
        )
    # mask_suffix reaches info too: masks named <stem>_mask.png.
    for split in ("train", "val"):
        folder = tmp_path / "d" / split / "masks"
        for path in list(folder.iterdir()):
            path.rename(folder / (path.stem + "_mask.png"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = training.dataset_meta("folder", data_dir, {"mask_suffix": "_mask"})
    assert meta.num_classes == 2 and meta.class_names == ("background", "foreground")


def test_folder_binary_true_without_ignore_index_reads_0_255_and_0_1_sets(tmp_path):
    a = square_set(tmp_path / "a", 255, n_train=3, n_val=1)
    b = square_set(tmp_path / "b", 1, n_train=3, n_val=1)
    mask = np.asarray(Image.open(os.path.join(b, "train", "masks", "im00.png"))).copy()
    mask[0, 0] = 255  # in a 0/1 set, 255 still means ignore
    Image.fromarray(mask).save(os.path.join(b, "train", "masks", "im00.png"))
    ya = [
        y
        for _, y in datasets.load(
            "folder", data_dir=a, split="train", binary=True
        ).as_numpy_iterator()
    ]
    yb = [
        y.copy()
        for _, y in datasets.load(
            "folder", data_dir=b, split="train", binary=True
        ).as_numpy_iterator()
    ]
    assert all(set(np.unique(y)) == {0, 1} for y in ya)
    assert yb[0][0, 0] == 255
    yb[0][0, 0] = ya[0][0, 0]
    for y1, y2 in zip(ya, yb):
        np.testing.assert_array_equal(y1, y2)


# --------------------------------------------------------------------------- files, OpenCV


def test_paths_dataset_declares_its_files_and_decoder(tmp_path):
    data_dir = square_set(tmp_path / "d", 1, n_train=3, n_val=1)
    ds = datasets.load("folder", data_dir=data_dir, split="train", shuffle_files=True, seed=1)
    want = [
        (
            os.path.join(data_dir, "train", "images", f"im{i:02d}.png"),
            os.path.join(data_dir, "train", "masks", f"im{i:02d}.png"),
        )
        for i in range(3)
    ]
    assert ds.kerasseg_files == want
    files = files_of(ds)
    assert files.items == want
    image, label = files.decode(*want[0])
    assert image.shape == (SIZE, SIZE, 3) and label.dtype == np.int32
    assert training.check_files(ds, 2, 255) == 3


def test_read_rgb_keeps_opencv_quiet_on_a_corrupt_file(tmp_path, capfd):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    level = cv2.utils.logging.getLogLevel()
    capfd.readouterr()
    with pytest.raises(ValueError, match="cannot decode image file .*bad.png"):
        _io.read_rgb(str(bad))
    out, err = capfd.readouterr()
    assert "grfmt_png" not in err and "WARN" not in err and "ERROR" not in err
    assert cv2.utils.logging.getLogLevel() == level  # restored


def test_train_help_documents_binary(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[--binary]" in text and "sigmoid model" in text
    assert "binary_cross_entropy" in text
    assert "binary" in training.train.__doc__ and "ForegroundIoU" in training.train.__doc__
