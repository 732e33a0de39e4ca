"""kerasseg.visualize: palette values, colour masks, overlays, grids, written files, plots."""

import csv

import cv2
import numpy as np
import pytest

from kerasseg import visualize as V


def voc_colour(index):
    """PASCAL VOC's colour of a label, written out independently of the implementation."""
    r = g = b = 0
    for shift in range(8):
        r |= ((index >> (3 * shift)) & 1) << (7 - shift)
        g |= ((index >> (3 * shift + 1)) & 1) << (7 - shift)
        b |= ((index >> (3 * shift + 2)) & 1) << (7 - shift)
    return [r, g, b]


def test_palette_is_voc_and_deterministic():
    colours = V.palette(21)
    assert colours.shape == (21, 3) and colours.dtype == np.uint8
    # Known VOC entries: background, aeroplane, bicycle, bird, person (15).
    assert colours[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert colours[15].tolist() == [192, 128, 128]
    full = V.palette(256)
    assert full.tolist() == [voc_colour(i) for i in range(256)]
    assert full[255].tolist() == list(V.IGNORE_COLOUR)
    assert len({tuple(c) for c in full}) == 256
    big = V.palette(300)
    np.testing.assert_array_equal(big[:256], full)
    np.testing.assert_array_equal(big, V.palette(300))
    assert len({tuple(c) for c in big}) >= 295
    with pytest.raises(ValueError, match="num_classes"):
        V.palette(-1)


def test_colorize_known_mask():
    colours = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], np.uint8)
    mask = np.array([[0, 1, 2], [2, 255, 0]])
    out = V.colorize(mask, colours)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert out.tolist() == [
        [[10, 20, 30], [40, 50, 60], [70, 80, 90]],
        [[70, 80, 90], list(V.IGNORE_COLOUR), [10, 20, 30]],
    ]
    assert V.colorize(mask[..., None], colours, ignore_colour=(1, 2, 3))[1, 1].tolist() == [1, 2, 3]
    # Default palette: VOC colours for the labels present.
    assert V.colorize(np.array([[0, 3]])).tolist() == [[[0, 0, 0], [128, 128, 0]]]
    with pytest.raises(ValueError, match="label 3"):
        V.colorize(np.array([[0, 3]]), colours)
    with pytest.raises(ValueError, match="label -1"):
        V.colorize(np.array([[0, -1]]), colours)


def test_overlay_matches_numpy_blend():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, (17, 23))
    mask[0, :5] = 255
    colours = V.palette(5)
    for alpha in (0.0, 0.3, 0.5, 1.0):
        out = V.overlay(image, mask, colours, alpha=alpha)
        expected = (1 - alpha) * image + alpha * colours[np.where(mask == 255, 0, mask)]
        expected[mask == 255] = image[mask == 255]
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.abs(out.astype(float) - expected).max() <= 0.5 + 1e-6
    np.testing.assert_array_equal(V.overlay(image, mask, colours)[0, :5], image[0, :5])
    grey = V.overlay(image[..., 0], mask, colours, alpha=0.0)
    np.testing.assert_array_equal(grey, np.repeat(image[..., :1], 3, axis=-1))
    with pytest.raises(ValueError, match="differs"):
        V.overlay(image, mask[:5], colours)
    with pytest.raises(ValueError, match="alpha"):
        V.overlay(image, mask, colours, alpha=1.5)


def test_save_image_writes_rgb_that_reads_back(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    path = V.save_image(tmp_path / "sub" / "red.png", rgb)
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.shape == (4, 6, 3)
    np.testing.assert_array_equal(back[..., ::-1], rgb)  # cv2 reads BGR
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6)
    V.save_image(tmp_path / "grey.png", grey)
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / "grey.png"), cv2.IMREAD_UNCHANGED), grey
    )
    with pytest.raises(ValueError, match="nope"):
        V.save_image(tmp_path / "x.nope", rgb)


def test_grid_layout_and_pixels(tmp_path):
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 256, (10, 12, 3), dtype=np.uint8),
        rng.integers(0, 256, (8, 15, 3), dtype=np.uint8),
    ]
    truths = [rng.integers(0, 3, im.shape[:2]) for im in images]
    preds = [rng.integers(0, 3, im.shape[:2]) for im in images]
    colours = V.palette(3)
    out = V.grid(images, truths, preds, colours, path=tmp_path / "grid.png", gap=2)
    assert out.shape == (10 + 2 + 8, max(3 * 12, 3 * 15) + 2 * 2, 3)
    np.testing.assert_array_equal(out[:10, :12], images[0])
    np.testing.assert_array_equal(out[:10, 14:26], colours[truths[0]])
    np.testing.assert_array_equal(out[:10, 28:40], colours[preds[0]])
    np.testing.assert_array_equal(out[12:20, 34:49], colours[preds[1]])
    assert (out[10:12] == 255).all() and (out[:10, 12:14] == 255).all()
    written = cv2.imread(str(tmp_path / "grid.png"))
    np.testing.assert_array_equal(written[..., ::-1], out)

    no_truth = V.grid(images[:1], None, preds[:1], colours, gap=0)
    assert no_truth.shape == (10, 24, 3)
    with pytest.raises(ValueError, match="counts"):
        V.grid(images, truths[:1], preds, colours)


def test_plot_history_from_dict_and_csv(tmp_path):
    history = {
        "loss": [1.0, 0.6, 0.4],
        "val_loss": [1.1, 0.8, 0.7],
        "mean_iou": [0.1, 0.3, 0.4],
        "val_mean_iou": [0.1, 0.2, 0.35],
    }
    fig = V.plot_history(history, tmp_path / "curves.png")
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), history["val_loss"])
    image = cv2.imread(str(tmp_path / "curves.png"))
    assert image is not None and image.shape[0] > 100 and image.std() > 0

    with open(tmp_path / "log.csv", "w", newline="") as f:  # as keras.callbacks.CSVLogger writes
        writer = csv.writer(f)
        writer.writerow(["epoch", "learning_rate", "loss", "val_loss"])
        for epoch in range(4):
            writer.writerow([epoch, 0.01 / (epoch + 1), 1.0 / (epoch + 1), 1.2 / (epoch + 1)])
    fig = V.plot_history(str(tmp_path / "log.csv"), tmp_path / "csv.png")
    assert [ax.get_title() for ax in fig.axes] == ["learning_rate", "loss"]
    np.testing.assert_allclose(fig.axes[1].lines[0].get_xdata(), [1, 2, 3, 4])
    assert cv2.imread(str(tmp_path / "csv.png")) is not None
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        V.plot_history(tmp_path / "missing.csv")


def test_evaluation_plots_are_reexported(tmp_path):
    cm = np.array([[5, 1], [2, 8]])
    fig = V.plot_confusion_matrix(cm, class_names=["a", "b"], path=tmp_path / "cm.png")
    assert fig is not None and cv2.imread(str(tmp_path / "cm.png")) is not None
    V.plot_per_class_iou([0.5, 0.8], class_names=["a", "b"], path=tmp_path / "iou.png")
    assert cv2.imread(str(tmp_path / "iou.png")) is not None
