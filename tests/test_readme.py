"""The README's two commands are the project's front door: keep them and CI in step; and its
Python blocks run as written (offline: `weights=None`), the training one to a mIoU worth showing."""

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_starts_with_install_demo_and_test_commands():
    install_demo, tests = _readme_commands()[:2]
    assert install_demo == "pip install . && kerasseg demo"
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    tests = _readme_commands()[1]
    ci_lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    for part in tests.split(" && "):
        assert any(
            part.replace("pip install", "pip install --quiet") == l or part == l for l in ci_lines
        ), f"CI does not run {part!r}"


# --------------------------------------------------------------------------- the Python blocks


def _python_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(1))
        for m in re.finditer(r"```python\n(.+?)\n```", text, re.S)
    ]


BLOCKS = _python_blocks()


def _check_training(ns):
    """The snippet's model against a NumPy mIoU over the whole validation split."""
    model, val, k = ns["model"], ns["val"], ns["info"].num_classes
    confusion = np.zeros((k, k), np.int64)
    for image, mask in val.as_numpy_iterator():
        probs = np.asarray(model(image[None], training=False))[0]  # predict() costs 10x more
        pred = probs.argmax(-1)
        valid = mask != 255
        confusion += np.bincount(mask[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
    tp = np.diag(confusion)
    iou = tp / (confusion.sum(0) + confusion.sum(1) - tp)
    assert np.nanmean(iou) >= 0.8, iou
    assert ns["labels"].shape == ns["image"].shape[:2]
    assert (Path("exported") / "saved_model.pb").exists()


def _check(ns):
    if "info" in ns and "val" in ns:
        _check_training(ns)
    elif "scores" in ns:  # the Mask R-CNN block
        assert {"boxes", "classes", "scores", "masks"} <= set(ns["out"])
        assert (Path("mask_rcnn_savedmodel") / "saved_model.pb").exists()
    elif "f32" in ns:
        assert ns["encoder"].tap_strides == (2, 4, 8, 16, 32)
        assert tuple(ns["f32"].shape[:3]) == (1, 7, 7)
    else:
        assert ns["model"].count_params() > 0


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs_as_written(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the blocks write their files where they run
    namespace = {"__name__": "__readme__"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102 - the README's own
    _check(namespace)
