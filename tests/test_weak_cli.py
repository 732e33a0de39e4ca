"""`kerasseg train --supervision ...` end to end for every kind of label, and
`kerasseg pseudo-labels` writing a `folder` set that never overwrites files silently."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from kerasseg import cli, datasets, training

TINY = [
    "--model", "unet", "--backbone", "none", "--weights", "none",
    "--model-option", "filters=4", "--model-option", "depth=2",
    "--dataset", "shapes", "--dataset-option", "num_images=4",
    "--batch-size", "2", "--crop-size", "32", "--steps-per-epoch", "2",
    "--val-batch-size", "4", "--val-crop-size", "128", "--val-steps", "1",
    "--optimizer", "adam", "--lr", "0.01", "--no-tensorboard", "--no-memory-check",
    "--epochs", "1",
]  # fmt: skip
KINDS = ("scribbles", "points", "boxes", "image")  # "full" is every other CLI test's run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run per supervision kind, shared by the tests below."""
    root = tmp_path_factory.mktemp("weak_cli")
    out = {}
    for kind in KINDS:
        extra = ["--cam-steps", "2"] if kind == "image" else []
        if kind == "points":
            extra = ["--superpixels", "slic"]
        code = cli.main(["train", *TINY, "--supervision", kind, *extra, "--output",
                         str(root / kind)])  # fmt: skip
        out[kind] = (code, root / kind)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_training_runs_end_to_end_with_each_kind_of_label(runs, kind):
    code, folder = runs[kind]
    assert code == 0
    record = json.loads((folder / "run.json").read_text())
    assert record["supervision"] == kind
    model = keras.models.load_model(folder / "last.keras")  # no custom_objects needed
    assert model.output_shape[-1] == 4
    history = (folder / "history.csv").read_text().splitlines()
    assert "val_mean_iou" in history[0] and len(history) == 2
    # the weak runs' loss: partial cross-entropy + 0.1 x the Gated CRF loss
    loss = model.loss
    assert [type(t).__name__ for t in loss.losses] == ["PartialCrossEntropy", "GatedCRFLoss"]
    assert loss.weights == [1.0, pytest.approx(0.1)]


def test_image_level_runs_report_cam_and_pseudo_mask_miou(runs):
    figures = json.loads((runs["image"][1] / "weak.json").read_text())
    assert figures["supervision"] == "image" and figures["cam_steps"] == 2
    assert 0.0 <= figures["cam_miou"] <= 1.0 and 0.0 <= figures["pseudo_mask_miou"] <= 1.0


def test_full_supervision_is_the_default():
    args = cli.build_parser().parse_args(["train", "--dataset", "shapes", "--output", "x"])
    assert args.supervision == "full" and args.crf_weight == 0.1 and args.superpixels == "none"


@pytest.mark.parametrize("command", ["train", "pseudo-labels"])
def test_superpixel_choices_are_the_propagation_methods(command):
    """The CLI writes the choices out (importing kerasseg.weak would load TensorFlow first)."""
    from kerasseg.weak.superpixels import PROPAGATION_METHODS

    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    (action,) = [a for a in sub._actions if a.dest == "superpixels"]
    assert tuple(action.choices) == ("none", *PROPAGATION_METHODS)


def test_a_bad_supervision_is_an_error_naming_the_choices(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown supervision 'lines'.*full, scribbles"):
        training.train("unet", "shapes", output=tmp_path / "x", supervision="lines",
                       backbone=None, weights=None)  # fmt: skip
    with pytest.raises(SystemExit):
        cli.main(["train", *TINY, "--supervision", "lines", "--output", str(tmp_path / "y")])
    assert "invalid choice: 'lines'" in capsys.readouterr().err


def test_pseudo_labels_write_a_folder_set_and_refuse_to_overwrite(tmp_path, capsys):
    out = tmp_path / "pseudo"
    argv = ["pseudo-labels", "--dataset", "shapes", "--dataset-option", "num_images=3",
            "--supervision", "boxes", "--output", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    assert (out / "classes.txt").read_text().split() == list(datasets.info("shapes").class_names)
    images = sorted(os.listdir(out / "images"))
    assert images == sorted(os.listdir(out / "masks")) == ["00000.png", "00001.png", "00002.png"]
    raw = list(datasets.load("shapes", split="train", num_images=3).as_numpy_iterator())
    for name, (_, mask) in zip(images, raw):
        labels = np.asarray(Image.open(out / "masks" / name))
        assert labels.shape == mask.shape
        drawn = (labels != 255) & (labels != 0)
        assert drawn.any() and np.all(mask[drawn] != 0)  # objects only where there are objects
    # the folder loader reads it back with 255 ignored
    ds = datasets.load("folder", data_dir=str(out), split="all")
    assert len(list(ds)) == 3
    before = (out / "masks" / "00000.png").stat().st_mtime_ns
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "00000.png exists" in err and "--overwrite" in err
    assert (out / "masks" / "00000.png").stat().st_mtime_ns == before
    assert cli.main([*argv[:-1], str(out), "--overwrite", "--supervision", "points"]) == 0
    labels = np.asarray(Image.open(out / "masks" / "00000.png"))
    assert np.all(raw[0][1][labels != 255] == labels[labels != 255])  # points: true labels
    # real weak labels in a folder set train as they are (--given-labels), 255 unlabelled
    run = tmp_path / "given"
    folder = [a for a in TINY if a not in ("shapes", "num_images=4")]
    folder = [a for a in folder if a not in ("--dataset", "--dataset-option")]
    code = cli.main(["train", *folder, "--dataset", "folder", "--data-dir", str(out),
                     "--val-split", "none", "--supervision", "points", "--given-labels",
                     "--output", str(run)])  # fmt: skip
    assert code == 0
    assert json.loads((run / "run.json").read_text())["supervision"] == "points"
