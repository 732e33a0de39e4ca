"""What a user sees: the run's defaults sized to the data (crop, U-Net width), the block it
prints before training and the line after its first steps, the memory guard, and the
evaluation report page (its numbers against evaluate's JSON, offline, and a headless-Chromium
screenshot of it)."""

import html.parser
import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from PIL import Image

import kerasseg
from kerasseg import cli, datasets
from kerasseg.training import defaults


def write_set(root, sizes, rng, split=None):
    base = root / split if split else root
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "masks").mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        image = rng.integers(0, 40, (h, w, 3)).astype(np.uint8)
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4 : h // 2, w // 4 : w // 2] = 1
        mask[h // 2 :, w // 2 :] = 2
        image[mask == 1] = (230, 230, 230)
        image[mask == 2] = (240, 30, 30)
        Image.fromarray(image).save(base / "images" / f"im{i:02d}.png")
        Image.fromarray(mask).save(base / "masks" / f"im{i:02d}.png")
    (root / "classes.txt").write_text("ground\nbox\nred\n")
    return root


# --------------------------------------------------------------------------- the crop


@pytest.mark.parametrize(
    "sizes, multiple, crop",
    [
        ([(128, 160)] * 5, 16, (128, 160)),  # small: the images' own size
        ([(1024, 2048)] * 3, 32, (512, 512)),  # large: capped at 512 a side
        ([(100, 150), (300, 400), (200, 250)], 32, (192, 256)),  # mixed: the median, rounded
        ([(20, 20)], 32, (32, 32)),  # tiny: one multiple at least
    ],
)
def test_auto_crop_is_the_median_capped_and_rounded(sizes, multiple, crop):
    chosen, why = defaults.auto_crop(sizes, multiple)
    assert chosen == crop
    assert f"a multiple of {multiple}" in why and "at most 512" in why


def test_image_sizes_come_from_the_file_headers(tmp_path):
    sizes = [(40, 56), (48, 64), (64, 96)]
    write_set(tmp_path, sizes, np.random.default_rng(0))
    raw = datasets.load("folder", data_dir=tmp_path, split="all")
    assert sorted(defaults.image_sizes(raw)) == sorted(sizes)
    shapes = datasets.load("shapes", split="val", num_images=3)
    assert defaults.image_sizes(shapes) == [x.shape[:2] for x, _ in shapes.as_numpy_iterator()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`kerasseg train` on a folder of 48x64 images with the default crop and width; the
    captured output and the run folder."""
    base = tmp_path_factory.mktemp("defaults")
    write_set(base / "data", [(48, 64)] * 6, np.random.default_rng(1), "train")
    write_set(base / "data", [(48, 64)] * 2, np.random.default_rng(2), "val")
    out = base / "run"
    argv = ["train", "--dataset", "folder", "--data-dir", base / "data", "--output", out]
    argv += ["--weights", "none", "--epochs", "1", "--batch-size", "2", "--no-tensorboard"]
    return base, out, argv


def test_train_sizes_the_crop_and_the_unet_to_the_data_and_says_so(run, capsys):
    base, out, argv = run
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 0
    err, _ = capsys.readouterr()  # stdout, with Keras's progress
    assert "kerasseg: the run:" in err
    plan = err[err.index("the run:") :]
    assert "crop    48x64  (the median image size 48x64" in plan
    assert "16 filters for 6 training images" in plan
    assert "batch   2, 3 steps per epoch  (one pass over the training images)" in plan
    assert "epochs  1 (3 steps)" in plan
    size = kerasseg.unet(3, backbone=None, filters=16, weights=None).count_params()
    assert f"{size / 1e6:.2f} M parameters" in plan
    assert "GB at the peak" in plan
    assert "kerasseg: after 3 steps:" in err and "s per step" in err and "peak memory" in err
    with open(out / "run.json") as f:
        record = json.load(f)
    assert record["crop_size"] == [48, 64] and record["model_options"] == {"filters": 16}


def test_explicit_flags_win(tmp_path, capsys):
    data = write_set(tmp_path / "data", [(48, 64)] * 4, np.random.default_rng(3))
    argv = ["train", "--dataset", "folder", "--data-dir", data, "--output", tmp_path / "run"]
    argv += ["--weights", "none", "--epochs", "1", "--batch-size", "2", "--no-tensorboard"]
    argv += ["--crop-size", "32", "--model-option", "filters=4", "--model-option", "depth=2"]
    argv += ["--steps-per-epoch", "1", "--val-split", "none"]
    assert cli.main([str(a) for a in argv]) == 0
    err = capsys.readouterr().out
    assert "crop    32x32  (--crop-size)" in err and "filters for" not in err
    assert "batch   2, 1 steps per epoch  (--batch-size, --steps-per-epoch)" in err


def test_memory_guard_refuses_and_suggests_a_batch_and_a_crop(tmp_path, capsys, monkeypatch):
    # The process's resident size held still: the test worker's own moves between two calls
    # (50 MB in one CI run) are no part of the estimate's rule.
    monkeypatch.setattr(defaults, "resident_memory", lambda: 10**9)
    model = kerasseg.unet(3, backbone=None, filters=8, depth=2, weights=None)
    small = defaults.estimate_memory(model, 2, (64, 64))
    large = defaults.estimate_memory(model, 8, (64, 64))
    assert large > small > defaults.resident_memory()
    with pytest.raises(ValueError, match=r"--batch-size \d+ or --crop-size \d+ \d+"):
        need = defaults.resident_memory() + (large - defaults.resident_memory()) / 3
        defaults.check_memory(model, 8, (64, 64), 3, available=need / defaults.MEMORY_MARGIN)
    assert defaults.check_memory(model, 8, (64, 64), 3, available=10 * large) > 0
    # From the command line: one line, exit 2, before the run folder is written.
    monkeypatch.setattr(defaults, "available_memory", lambda: 10**6)
    data = write_set(tmp_path / "data", [(48, 64)] * 4, np.random.default_rng(4))
    argv = ["train", "--dataset", "folder", "--data-dir", data, "--output", tmp_path / "run"]
    argv += ["--weights", "none", "--batch-size", "2", "--model-option", "filters=4"]
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 2
    (line,) = capsys.readouterr().err.splitlines()[-1:]
    assert line.startswith("kerasseg train: error: training at batch 2 on 48x64 crops needs")
    assert "--no-memory-check" in line and not (tmp_path / "run").exists()
    assert (
        cli.main(
            [
                str(a)
                for a in argv
                + [
                    "--no-memory-check",
                    "--epochs",
                    "1",
                    "--steps-per-epoch",
                    "1",
                    "--no-tensorboard",
                ]
            ]
        )
        == 0
    )


# --------------------------------------------------------------------------- the report


class Page(html.parser.HTMLParser):
    """The report's sections, metric cells, class rows and sample figures."""

    def __init__(self):
        super().__init__()
        self.sections, self.metrics, self.classes, self.samples = [], {}, {}, {}
        self.urls = []
        self._section = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a and not a[key].startswith("data:"):
                self.urls.append(a[key])
        if tag == "section":
            self._section = a["id"]
            self.sections.append(a["id"])
        elif tag == "td" and "data-key" in a:
            self.metrics[a["data-key"]] = a["data-value"]
        elif tag == "tr" and "data-class" in a:
            self.classes[a["data-class"]] = a["data-iou"]
        elif tag == "figure":
            self.samples.setdefault(self._section, []).append(
                (int(a["data-index"]), float(a.get("data-miou", "nan")))
            )


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    base, out, argv = run
    if not (out / "best.keras").exists():
        assert cli.main([str(a) for a in argv]) == 0
    folder = tmp_path_factory.mktemp("report")
    argv = ["evaluate", "--checkpoint", out, "--report", folder / "page", "--json"]
    argv += [folder / "scores.json", "--report-images", "1"]
    assert cli.main([str(a) for a in argv]) == 0
    return folder, argv


def test_report_holds_every_section_with_evaluates_numbers(report):
    folder, _ = report
    text = (folder / "page" / "report.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert page.sections == ["metrics", "classes", "confusion", "worst", "best", "curves"]
    scores = json.loads((folder / "scores.json").read_text())
    for key in ("mean_iou", "mean_accuracy", "pixel_accuracy", "fw_iou", "mean_dice"):
        assert float(page.metrics[key]) == scores[key]
    assert {c["name"]: c["iou"] for c in scores["classes"]} == {
        name: None if value == "None" else float(value) for name, value in page.classes.items()
    }
    assert list(page.classes) == ["ground", "box", "red"]
    (worst,), (best,) = page.samples["worst"], page.samples["best"]
    assert worst[1] <= best[1]
    assert page.urls == [] and "http://" not in text and "https://" not in text  # offline


def test_report_is_not_replaced_without_overwrite(report, capsys):
    _, argv = report
    capsys.readouterr()
    assert cli.main([str(a) for a in argv]) == 2
    assert "report.html exists; pass --overwrite" in capsys.readouterr().err


def test_per_image_scores_agree_with_numpy(tmp_path):
    """score_images on a stand-in predictor: the confusion and per-image mIoUs by NumPy."""
    rng = np.random.default_rng(5)
    truths = [rng.integers(0, 3, (8, 10)) for _ in range(5)]
    preds = [np.where(rng.random(t.shape) < 0.3, (t + 1) % 3, t) for t in truths]
    truths[2][0, :] = 255
    import tensorflow as tf

    raw = tf.data.Dataset.from_tensor_slices(
        (np.zeros((5, 8, 10, 3), np.uint8), np.stack(truths).astype(np.int32))
    )
    lookup = {i: p for i, p in enumerate(preds)}
    calls = iter(range(5))
    cm, scores, worst, best = kerasseg.visualize.score_images(
        None, raw, 3, keep=2, predict=lambda _, image: lookup[next(calls)]
    )
    want = np.zeros((3, 3), np.int64)
    for t, p in zip(truths, preds):
        v = t != 255
        np.add.at(want, (t[v], p[v]), 1)
    np.testing.assert_array_equal(cm, want)
    order = np.argsort(scores, kind="stable")
    assert [s[1] for s in worst] == list(order[:2])
    assert [s[1] for s in best] == list(order[::-1][:2])


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs Debian's chromium (.ci/run); it is missing")
        pytest.skip("no chromium on this machine (CI installs it)")
    return found


def test_report_renders_in_headless_chromium(report, tmp_path):
    folder, _ = report
    shot = tmp_path / "shot.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,900",
        f"--screenshot={shot}",
    ]
    page = (folder / "page" / "report.html").as_uri()
    subprocess.run([_chromium(), *flags, page], capture_output=True, timeout=120, check=True)
    picture = cv2.imread(str(shot), cv2.IMREAD_GRAYSCALE)
    assert picture is not None and picture.shape == (900, 1000)
    assert picture.std() > 20  # not blank
    # The scores table sits top left: dark text on white there, and the bold mIoU figure.
    table = picture[60:300, :500]
    assert 0.01 < np.mean(table < 100) < 0.5
