"""The benchmark recipes in examples/ run end to end with ``--smoke``: each writes a tiny fixture
of its dataset in the official on-disk layout, trains with its recipe dict at toy sizes (the same
``kerasseg.training.train`` call) and prints the mIoU of ``best.keras`` on the scored split.

The scripts run in this process with ``runpy`` (examples/ is not a package)."""

import glob
import json
import math
import os
import re
import runpy
import sys

import keras
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# Per script: the paths (globs under the fixture folder) the dataset's official layout has.
LAYOUTS = {
    "train_camvid.py": [
        "CamVid/train/*.png",
        "CamVid/trainannot/*.png",
        "CamVid/val/*.png",
        "CamVid/valannot/*.png",
        "CamVid/test/*.png",
        "CamVid/testannot/*.png",
        "CamVid/train.txt",
    ],
    "train_voc_aug.py": [
        "VOCdevkit/VOC2012/JPEGImages/*.jpg",
        "VOCdevkit/VOC2012/SegmentationClass/*.png",
        "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt",
        "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt",
        "benchmark_RELEASE/dataset/cls/*.mat",
        "benchmark_RELEASE/dataset/img/*.jpg",
        "benchmark_RELEASE/dataset/train.txt",
        "benchmark_RELEASE/dataset/val.txt",
    ],
    "train_cityscapes.py": [
        "leftImg8bit/train/*/*_leftImg8bit.png",
        "leftImg8bit/val/*/*_leftImg8bit.png",
        "gtFine/train/*/*_gtFine_labelIds.png",
        "gtFine/val/*/*_gtFine_labelIds.png",
    ],
    "finetune_ade20k.py": [
        "ADEChallengeData2016/images/training/ADE_train_*.jpg",
        "ADEChallengeData2016/images/validation/ADE_val_*.jpg",
        "ADEChallengeData2016/annotations/training/ADE_train_*.png",
        "ADEChallengeData2016/annotations/validation/ADE_val_*.png",
    ],
}

MIOU_LINE = re.compile(r"^mIoU \(.*\): (\S+)$", re.MULTILINE)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(LAYOUTS))
def test_recipe_runs_with_smoke(script, tmp_path, monkeypatch, capsys):
    if script == "train_voc_aug.py":
        pytest.importorskip("scipy.io")  # SBD's .mat labels
    path = os.path.join(EXAMPLES, script)
    monkeypatch.setattr(sys, "argv", [path, "--smoke", "--output", str(tmp_path)])
    try:
        module = runpy.run_path(path, run_name="__main__")
    finally:
        keras.backend.clear_session()
    out = capsys.readouterr().out

    fixture = tmp_path / "fixture"
    missing = [p for p in LAYOUTS[script] if not glob.glob(str(fixture / p))]
    assert not missing, f"the fixture lacks {missing}"

    run = tmp_path / "run"
    for name in ("best.keras", "last.keras", "history.csv"):
        assert (run / name).is_file(), f"{name} missing from {sorted(os.listdir(run))}"

    scores = MIOU_LINE.findall(out)
    assert len(scores) == 1, out[-2000:]
    miou = float(scores[0])
    assert not math.isnan(miou) and 0.0 <= miou <= 1.0

    # The smoke run is the recipe: only what SMOKE overrides differs.
    recipe, smoke = module["RECIPE"], module["SMOKE"]
    record = json.loads((run / "run.json").read_text())
    for key in ("model", "dataset", "backbone", "optimizer"):
        assert record[key] == smoke.get(key, recipe[key]), key
    assert record["epochs"] == smoke["epochs"] and record["weights"] is None
    for key, value in recipe["model_options"].items():
        if key not in smoke.get("model_options", {}):
            assert record["model_options"][key] == (
                list(value) if isinstance(value, tuple) else value
            )
