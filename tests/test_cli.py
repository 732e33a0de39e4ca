"""The `kerasseg` console script: listings, the train -> evaluate -> predict -> export chain on
`shapes`, and the one-line errors (exit status 2) for bad names and paths."""

import json
import os
import re
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasseg import cli, datasets, inference
from kerasseg.cli.demo import prepare_folder
from kerasseg.cli.train import parse_loss

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES_CLASSES = ["background", "circle", "rectangle", "triangle"]

TINY = [
    "--model",
    "unet",
    "--backbone",
    "none",
    "--weights",
    "none",
    "--model-option",
    "filters=4",
    "--model-option",
    "depth=2",
    "--dataset",
    "shapes",
    "--dataset-option",
    "num_images=8",
    "--batch-size",
    "4",
    "--crop-size",
    "32",
    "--steps-per-epoch",
    "2",
    "--val-batch-size",
    "4",
    "--val-crop-size",
    "128",
    "--optimizer",
    "adam",
    "--lr",
    "0.01",
    "--no-tensorboard",
]


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run shared by the evaluate/predict/export tests."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = cli.main(["train", *TINY, "--epochs", "2", "--output", str(out)])
    assert code == 0
    return out


# --------------------------------------------------------------------------- listings


def test_models_lists_names_and_default_backbones(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    rows = dict(
        line.split(None, 1)
        for line in out.splitlines()[1:]
        if line.strip() and not line.startswith("backbones:")
    )
    import kerasseg

    assert set(kerasseg.list_models()) <= set(rows)
    assert rows["unet"].startswith("(none")
    assert "backbones: " in out and "resnet50" in out
    for name, text in rows.items():
        default = cli_model_default(name)
        if default is not None:
            assert text.strip() == default


def cli_model_default(name):
    from kerasseg.training import model_defaults

    return model_defaults(name).get("backbone")


def test_datasets_lists_registered_names(capsys):
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0
    out, footer = out.split("\n\n")  # the table, then where to read about your own data
    assert "kerasseg datasets --help" in footer
    folder_row = next(line for line in out.splitlines() if line.startswith("folder"))
    assert folder_row.split()[1] == "yours" and "your own images" in folder_row
    names = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
    assert names == datasets.list_datasets()
    shapes_row = next(line for line in out.splitlines() if line.startswith("shapes"))
    assert shapes_row.split()[1] == "4" and "generated" in shapes_row
    # one column each: every class count ends where the header's "classes" ends
    end = out.splitlines()[0].index("classes") + len("classes")
    lines = [line for line in out.splitlines() if line]
    assert all(line[end - 1] != " " and line[end] == " " for line in lines), out


def test_loss_spec_parses_weighted_sums():
    from kerasseg import losses

    loss = parse_loss("ce+0.5*dice", "shapes", None)
    assert isinstance(loss, losses.CombinedLoss)
    assert [type(l).__name__ for l in loss.losses] == ["CrossEntropy", "DiceLoss"]
    assert list(loss.weights) == [1.0, 0.5]
    assert all(l.ignore_index == 255 for l in loss.losses)
    assert isinstance(parse_loss("focal", "shapes", None), losses.FocalLoss)
    with pytest.raises(cli.UsageError, match="dice"):
        parse_loss("cross_entropy+dicee", "shapes", None)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "argv, bad, choices",
    [
        (["train", "--model", "unet_xxl", "--dataset", "shapes"], "'unet_xxl'", "deeplabv3plus"),
        (
            ["train", "--model", "fpn", "--backbone", "resnet5", "--dataset", "shapes"],
            "'resnet5'",
            "resnet50",
        ),
        (["train", "--dataset", "pascal"], "'pascal'", "shapes"),
    ],
)
def test_unknown_names_exit_2_naming_value_and_choices(capsys, tmp_path, argv, bad, choices):
    code, out, err = run_cli(capsys, *argv, "--output", tmp_path / "run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert bad in lines[0] and choices in lines[0] and "valid" in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_missing_data_folder_exits_2(capsys, tmp_path):
    missing = tmp_path / "no_such_folder"
    code, _, err = run_cli(
        capsys, "train", "--dataset", "folder", "--data-dir", missing, "--output", tmp_path / "run"
    )
    assert code == 2 and str(missing) in err and "not found" in err
    code, _, err = run_cli(capsys, "train", "--dataset", "folder", "--output", tmp_path / "run")
    assert code == 2 and "--data-dir" in err
    code, _, err = run_cli(
        capsys, "evaluate", "--checkpoint", __file__, "--dataset", "folder", "--data-dir", missing
    )
    assert code == 2 and str(missing) in err


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--dataset", "shapes"],
        ["predict", "image.png", "--output", "preds"],
        ["export", "--format", "savedmodel", "--output", "exported"],
    ],
)
def test_missing_checkpoint_exits_2(capsys, tmp_path, command):
    missing = tmp_path / "runs" / "best.keras"
    code, _, err = run_cli(capsys, *command, "--checkpoint", missing)
    assert code == 2
    assert f"checkpoint not found: '{missing}'" in err
    assert "Traceback" not in err


def test_console_script_error_is_one_line_without_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kerasseg.cli",
            "train",
            "--model",
            "segnett",
            "--dataset",
            "shapes",
            "--output",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("kerasseg train: error: unknown model 'segnett'")
    assert "Did you mean" in last or "segnet" in last


def test_demo_refuses_a_non_empty_folder_it_did_not_make(capsys, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    code, out, err = run_cli(capsys, "demo", "--output", folder)
    assert code == 2
    assert str(folder) in err and "--overwrite" in err
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.txt"]
    assert (folder / "thesis.txt").read_text() == "precious"


@pytest.mark.slow
def test_demo_writes_everything_it_lists(capsys, tmp_path):
    folder = tmp_path / "demo"
    # One short epoch on a few images (hidden options): the files and the summary, not the
    # demo's mIoU.
    code, out, err = run_cli(
        capsys,
        "demo",
        "--output",
        folder,
        "--epochs",
        "1",
        "--steps-per-epoch",
        "10",
        "--train-images",
        "80",
        "--val-images",
        "8",
        "--samples",
        "2",
    )
    assert code == 0, err
    scores = json.loads((folder / "validation.json").read_text())
    match = re.search(r"validation mIoU: ([0-9.]+)", out)
    assert match and float(match.group(1)) == pytest.approx(scores["mean_iou"], abs=1e-4)
    assert [c["name"] for c in scores["classes"]] == SHAPES_CLASSES
    for path in (
        "run/best.keras",
        "run/last.keras",
        "run/history.csv",
        "run/curves.png",
        "overlays/val_00.png",
        "overlays/val_01.png",
        "predictions.png",
        "savedmodel/saved_model.pb",
        cli.DEMO_MARKER,
    ):
        assert (folder / path).exists(), path
        if not path.startswith("."):
            assert str(folder / path.split("/")[0]) in out  # the summary says where it went
    assert re.search(r"time: \d+ s", out)
    # The folder is the demo's own now: a second run may write into it without --overwrite.
    prepare_folder(str(folder), overwrite=False)


def test_train_refuses_a_finished_run(capsys, trained):
    before = (trained / "last.keras").stat().st_mtime_ns
    code, _, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--output", trained)
    assert code == 2 and "already holds a finished run" in err and "--overwrite" in err
    assert (trained / "last.keras").stat().st_mtime_ns == before


# --------------------------------------------------------------------------- the chain


def test_train_writes_the_run(trained):
    for name in ("best.keras", "last.keras", "history.csv", "curves.png", "run.json", "best.json"):
        assert (trained / name).is_file(), name
    rows = (trained / "history.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3
    header = rows[0].split(",")
    for row in rows[1:]:
        values = dict(zip(header, row.split(",")))
        assert 0.0 <= float(values["val_mean_iou"]) <= 1.0
        assert float(values["loss"]) > 0
    best = json.loads((trained / "best.json").read_text())
    ious = [float(dict(zip(header, r.split(",")))["val_mean_iou"]) for r in rows[1:]]
    assert best["value"] == pytest.approx(max(ious))


def _reference_confusion(model, split="val", num_images=8):
    """Confusion matrix computed by hand: pad each image to a multiple of the model's input
    multiple (its own description: 4 for a depth-2 U-Net) at the bottom/right by repeating its
    edge pixels (as inference.predict does), argmax, crop back, count."""
    from kerasseg.models.segmenter import describe

    m = describe(model)["input_multiple"]
    cm = np.zeros((4, 4), np.int64)
    for image, mask in datasets.load("shapes", split=split, num_images=num_images):
        image, mask = image.numpy(), mask.numpy()
        h, w = mask.shape
        ph, pw = -(-h // m) * m, -(-w // m) * m
        padded = np.pad(image.astype(np.float32), ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        scores = model(padded[None], training=False).numpy()[0, :h, :w]
        pred = scores.argmax(-1)
        np.add.at(cm, (mask.ravel(), pred.ravel()), 1)
    return cm


def _miou(cm):
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / union
    return float(np.nanmean(iou)), float(tp.sum() / cm.sum()), iou


def test_evaluate_prints_and_writes_the_right_numbers(capsys, trained, tmp_path):
    report = tmp_path / "eval" / "val.json"
    code, out, err = run_cli(
        capsys,
        "evaluate",
        "--checkpoint",
        trained / "best.keras",
        "--split",
        "val",
        "--json",
        report,
    )
    assert code == 0, err
    match = re.search(r"mIoU ([0-9.]+)\s+pixel accuracy ([0-9.]+)", out)
    assert match, out
    for name in SHAPES_CLASSES:
        assert name in out  # the per-class table
    record = json.loads(report.read_text())
    assert [c["name"] for c in record["classes"]] == SHAPES_CLASSES
    assert record["dataset"] == "shapes" and record["split"] == "val"
    model = keras.models.load_model(str(trained / "best.keras"), compile=False)
    cm = _reference_confusion(model)
    miou, accuracy, iou = _miou(cm)
    assert record["total_pixels"] == cm.sum()
    assert record["mean_iou"] == pytest.approx(miou, abs=1e-9)
    assert record["pixel_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert float(match.group(1)) == pytest.approx(miou, abs=1e-4)
    assert float(match.group(2)) == pytest.approx(accuracy, abs=1e-4)
    for entry, value in zip(record["classes"], iou):
        assert (entry["iou"] is None) == bool(np.isnan(value))
        if entry["iou"] is not None:
            assert entry["iou"] == pytest.approx(value, abs=1e-9)


def _write_images(folder):
    folder.mkdir(parents=True, exist_ok=True)
    paths, images = [], []
    for i, (image, _) in enumerate(datasets.load("shapes", split="test", num_images=2)):
        rgb = image.numpy()
        path = folder / f"photo{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths.append(path)
        images.append(rgb)
    return paths, images


def test_predict_writes_masks_and_overlays(capsys, trained, tmp_path):
    paths, images = _write_images(tmp_path / "in")
    out_dir = tmp_path / "preds"
    code, out, err = run_cli(
        capsys, "predict", "--checkpoint", trained / "best.keras", *paths, "--output", out_dir
    )
    assert code == 0, err
    model = keras.models.load_model(str(trained / "best.keras"), compile=False)
    palette = np.asarray(datasets.info("shapes").palette)
    for path, image in zip(paths, images):
        stem = path.stem
        # A palette PNG: PIL reads its class indices (OpenCV would read the colours).
        labels = np.array(Image.open(out_dir / f"{stem}_labels.png"))
        np.testing.assert_array_equal(labels, inference.predict(model, image))
        colour = cv2.cvtColor(cv2.imread(str(out_dir / f"{stem}_mask.png")), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(colour, palette[labels])
        overlay = cv2.imread(str(out_dir / f"{stem}_overlay.png"))
        height, width = image.shape[:2]
        assert overlay.shape[0] > height and overlay.shape[1] >= width  # a legend below
        assert overlay[:height, :width].shape == image.shape
        assert str(out_dir / f"{stem}_overlay.png") in out


def test_predict_missing_image_exits_2(capsys, trained, tmp_path):
    code, _, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        trained / "best.keras",
        tmp_path / "nope.jpg",
        "--output",
        tmp_path / "preds",
    )
    assert code == 2 and "image not found" in err and "nope.jpg" in err
    assert not (tmp_path / "preds").exists()


def test_export_savedmodel_serves_the_same_labels(capsys, trained, tmp_path):
    target = tmp_path / "exported"
    code, out, err = run_cli(
        capsys,
        "export",
        "--checkpoint",
        trained / "best.keras",
        "--format",
        "savedmodel",
        "--output",
        target,
    )
    assert code == 0, err
    assert (target / "saved_model.pb").is_file()
    # Refused the second time, accepted with --overwrite.
    code, _, err = run_cli(
        capsys,
        "export",
        "--checkpoint",
        trained / "best.keras",
        "--format",
        "savedmodel",
        "--output",
        target,
    )
    assert code == 2 and "--overwrite" in err
    code, _, err = run_cli(
        capsys,
        "export",
        "--checkpoint",
        trained / "best.keras",
        "--format",
        "savedmodel",
        "--output",
        target,
        "--overwrite",
    )
    assert code == 0, err
    served = tf.saved_model.load(str(target))
    _, images = _write_images(tmp_path / "in")
    model = keras.models.load_model(str(trained / "best.keras"), compile=False)
    result = served.signatures["serving_default"](images=tf.constant(images[0][None]))
    labels = result["labels"].numpy()[0]
    assert labels.shape == images[0].shape[:2]
    agree = np.mean(labels == inference.predict(model, images[0]))
    assert agree > 0.999
    names = [n.decode() for n in served.class_names.numpy()]
    assert names == SHAPES_CLASSES  # carried by the checkpoint (Segmenter.describe())


def test_checkpoint_names_and_colours_come_from_the_model(trained, tmp_path):
    import shutil

    from kerasseg.cli.checkpoint import labels_of, load_checkpoint

    alone = tmp_path / "alone.keras"  # no run.json beside it
    shutil.copy(trained / "best.keras", alone)
    names, colours = labels_of(load_checkpoint(str(alone)), str(alone))
    assert names == SHAPES_CLASSES
    np.testing.assert_array_equal(colours, np.asarray(datasets.info("shapes").palette))


def test_binary_and_plain_models_name_their_classes():
    import kerasseg
    from kerasseg.cli.checkpoint import labels_of

    def labels(num_classes, **options):
        model = kerasseg.unet(
            num_classes, backbone=None, weights=None, filters=4, depth=2, **options
        )
        names, colours = labels_of(model, "/nowhere/model.keras")
        return names, colours.tolist()

    # A one-channel model names its foreground; background is black.
    sigmoid = {"activation": "sigmoid"}
    assert labels(1, class_names=["cell"], **sigmoid) == (
        ["background", "cell"],
        [[0, 0, 0], [128, 0, 0]],
    )
    assert labels(1, class_names=["cell"], palette=[[0, 255, 0]], **sigmoid) == (
        ["background", "cell"],
        [[0, 0, 0], [0, 255, 0]],
    )
    assert labels(3, class_names=["a", "b", "c"])[0] == ["a", "b", "c"]
    # Nothing of its own and no run.json: generic names, the default colours.
    assert labels(3) == (["class_0", "class_1", "class_2"], [[0, 0, 0], [128, 0, 0], [0, 128, 0]])
