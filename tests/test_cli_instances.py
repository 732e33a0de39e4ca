"""The `kerasseg` console script on instance data: train a (tiny) Mask R-CNN on
`shapes_instances`, evaluate it (the COCO table and its JSON file), predict (overlays and
per-image JSON), and the one-line error for a model and a dataset of different tasks.

One training run (a subprocess, 2 steps) is shared by the module; the model is far too small and
short-trained to find anything, so the tests check the plumbing, not the scores."""

import json
import math
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from kerasseg import cli
from kerasseg.datasets.shapes_instances import CLASS_NAMES, generate
from kerasseg.models.segmenter import describe
from kerasseg.training import coco_json_path, format_coco

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# VGG16 traces much faster than MobileNetV2 (19 layers, not 150), which is most of a 2-step run.
TINY = [
    "--model",
    "mask_rcnn",
    "--backbone",
    "vgg16",
    "--weights",
    "none",
    "--dataset",
    "shapes_instances",
    "--dataset-option",
    "num_images=4",
    "--val-steps",
    "2",
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "--batch-size",
    "2",
    "--crop-size",
    "64",
    "--max-instances",
    "8",
    "--model-option",
    "fpn_filters=16",
    "--model-option",
    "box_head_units=16",
    "--model-option",
    "mask_head_filters=8",
    "--model-option",
    "anchor_sizes=(16, 32, 64, 128, 256)",
    "--model-option",
    "rpn_pre_nms_test=50",
    "--model-option",
    "rpn_post_nms_test=20",
    "--model-option",
    "training_config={'rpn_pre_nms_train': 50, 'rpn_post_nms_train': 20, 'roi_samples': 16}",
    "--no-tensorboard",
]


def kerasseg(*argv, timeout=600):
    """The console script in a fresh process (it imports kerasseg lightly, as users run it)."""
    return subprocess.run(
        [sys.executable, "-m", "kerasseg_cli", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("instances") / "run"
    done = kerasseg("train", *TINY, "--output", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, (image, _) in enumerate(generate("val", num_images=2, image_size=(64, 96))):
        paths.append(str(folder / f"shape{i}.png"))
        cv2.imwrite(paths[-1], cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return paths


def test_train_writes_checkpoints_that_load_and_the_coco_scores(trained):
    out, stdout = trained
    for name in ("best.keras", "last.keras", "run.json", "history.csv", "coco_val.json"):
        assert (out / name).is_file(), name
    model = keras.models.load_model(out / "last.keras")
    info = describe(model)
    assert info["task"] == "instance" and info["num_classes"] == 3
    assert info["class_names"] == list(CLASS_NAMES)
    run = json.loads((out / "run.json").read_text())
    assert run["task"] == "instance" and run["dataset"] == "shapes_instances"
    assert run["optimizer"] == "adam"  # the instance default
    scores = json.loads((out / "coco_val.json").read_text())
    for kind in ("bbox", "segm"):
        assert {"AP", "AP50", "AP75", "APs", "APm", "APl"} <= set(scores[kind])
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "mask", "val_mask_AP", "val_box_AP50"} <= set(header)
    assert "AP50" in stdout and "coco_val.json" in stdout and "best.keras" in stdout


def test_evaluate_prints_the_coco_table_and_writes_json(trained, capsys):
    out, _ = trained
    checkpoint = out / "last.keras"
    done = kerasseg("evaluate", "--checkpoint", checkpoint, "--steps", 2)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(line for line in lines if "AP50" in line).split()
    assert header == ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    assert any(line.startswith("box ") for line in lines)
    assert any(line.startswith("mask ") for line in lines)
    path = coco_json_path(checkpoint, "shapes_instances", "val")  # dataset from run.json
    record = json.loads(open(path).read())
    assert record["dataset"] == "shapes_instances" and record["images"] == 2
    assert set(record["segm"]) >= {"AP", "AP50", "APs"}
    # A second run does not overwrite the scores silently (refused before the model loads).
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", checkpoint, "--steps", 2)
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1


def test_evaluate_report_shows_the_coco_table_and_the_images(trained, capsys, tmp_path):
    from tests.test_report_and_defaults import Page

    out, _ = trained
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--checkpoint", out, "--steps", 2, "--json", scores]
    code, _, err = run_cli(capsys, *argv, "--report", tmp_path / "page", "--report-images", 2)
    assert code == 0, err
    text = (tmp_path / "page" / "report.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert page.sections == ["metrics", "samples", "curves"]
    record = json.loads(scores.read_text())
    for kind in ("bbox", "segm"):
        for name in ("AP", "AP50", "AP75"):
            assert float(page.metrics[f"{kind}_{name}"]) == pytest.approx(record[kind][name])
    assert [index for index, _ in page.samples["samples"]] == [0, 1]
    assert page.urls == [] and "https://" not in text


def test_predict_writes_overlays_and_detections(trained, images, tmp_path):
    out, _ = trained
    done = kerasseg(
        "predict",
        "--checkpoint",
        out / "last.keras",
        *images,
        "--output",
        tmp_path,
        "--score-threshold",
        0,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import pycocotools.mask as mask_utils

    for path in images:
        stem = tmp_path / os.path.splitext(os.path.basename(path))[0]
        overlay = cv2.imread(f"{stem}_instances.png")
        assert overlay is not None and overlay.shape == (64, 96, 3)
        record = json.loads(open(f"{stem}_instances.json").read())
        assert (record["height"], record["width"]) == (64, 96)
        for found in record["instances"]:
            assert found["class_name"] == CLASS_NAMES[found["class"]]
            assert 0.0 <= found["score"] <= 1.0 and len(found["box"]) == 4
            mask = mask_utils.decode(found["mask"])
            assert mask.shape == (64, 96)


@pytest.mark.parametrize(
    "model, dataset, words",
    [
        ("unet", "shapes_instances", ("semantic segmentation model", "mask_rcnn")),
        ("mask_rcnn", "shapes", ("instance segmentation model", "shapes_instances")),
    ],
)
def test_a_model_and_dataset_of_different_tasks_is_one_line(
    capsys, tmp_path, model, dataset, words
):
    argv = ["train", "--model", model, "--dataset", dataset, "--weights", "none"]
    code, _, err = run_cli(capsys, *argv, "--output", tmp_path / "run")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("kerasseg train: error: ")
    assert all(word in err for word in words), err
    assert not (tmp_path / "run").exists()


def test_mismatch_from_the_console_script_exits_2(tmp_path):
    done = kerasseg(
        "train", "--model", "unet", "--dataset", "shapes_instances", "--output", tmp_path / "x"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("kerasseg train: error: model 'unet'")


def test_coco_table_marks_missing_ranges():
    stats = {
        "bbox": {"AP": 0.5, "AP50": 0.75, "AP75": 0.5, "APs": 0.5, "APm": math.nan, "APl": None},
        "segm": {name: 0.25 for name in ("AP", "AP50", "AP75", "APs", "APm", "APl")},
    }
    rows = format_coco(stats).splitlines()
    assert rows[0].split() == ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    assert rows[1].split() == ["box", "0.5000", "0.7500", "0.5000", "0.5000", "-", "-"]
    assert rows[2].split()[0] == "mask" and np.allclose(
        [float(v) for v in rows[2].split()[1:]], 0.25
    )
