"""Instance decoding around Mask R-CNN: mask pasting (NumPy and TF), ``detect`` on a fake instance
model (padding, scaling back, thresholds, NMS), ``predict``'s dispatch, COCO AP through
pycocotools (``coco_evaluate`` and its callback) and the instance overlay."""

import json

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasseg
from kerasseg.metrics import COCOEvaluation, coco_evaluate
from kerasseg.models.instance.detect import detect
from kerasseg.ops.masks import paste_masks, paste_masks_tf
from kerasseg.visualize import draw_instances

RNG = np.random.default_rng(0)


# --- paste_masks -------------------------------------------------------------------------------


def _centres_inside(out, box):
    """Whether every on pixel of ``out`` (H, W) has its centre in the box."""
    rows, cols = np.nonzero(out)
    y1, x1, y2, x2 = box
    return bool(
        np.all((rows + 0.5 >= y1) & (rows + 0.5 < y2) & (cols + 0.5 >= x1) & (cols + 0.5 < x2))
    )


def test_constant_mask_fills_exactly_its_box():
    boxes = np.array([[2, 3, 10, 20], [2.5, 3.2, 9.5, 12.7], [0, 0, 56, 40]])
    out = paste_masks(np.ones((3, 28, 28)), boxes, 60, 64)
    assert out.shape == (3, 60, 64) and out.dtype == bool
    expected = np.zeros((3, 60, 64), bool)
    expected[0, 2:10, 3:20] = True
    expected[1, 2:9, 3:13] = True  # the pixels whose centres lie in the fractional box
    expected[2, :56, :40] = True
    np.testing.assert_array_equal(out, expected)
    # TF agrees on the exact case
    np.testing.assert_array_equal(paste_masks_tf(np.ones((3, 28, 28)), boxes, 60, 64), expected)


def test_big_boxes_lose_only_their_corners_to_the_zero_border():
    """Beyond the mask's border it is zero (Detectron2, Model Garden, mmdetection): at a box's
    edge a constant mask is 0.5 + 0.5 / k (k pixels a cell), so every edge pixel is on, but
    near a corner the product of two such factors falls below 0.5 once k > 2.4."""
    out = paste_masks(np.ones((1, 28, 28)), np.array([[4, 4, 116, 144]]), 120, 150)[0]
    box = np.zeros((120, 150), bool)
    box[4:116, 4:144] = True
    assert not (out & ~box).any()
    rows, cols = np.nonzero(box & ~out)
    cell_y, cell_x = 112 / 28, 140 / 28
    near_corner = (np.minimum(rows - 4, 115 - rows) < cell_y) & (
        np.minimum(cols - 4, 143 - cols) < cell_x
    )
    assert 4 <= len(rows) <= 40 and near_corner.all()
    assert out[4, 10:138].all() and out[115, 10:138].all() and out[10:110, [4, 143]].all()


def test_pasted_masks_stay_inside_their_boxes_even_at_a_low_threshold():
    masks = RNG.random((40, 28, 28))
    y1, x1 = RNG.uniform(-10, 50, 40), RNG.uniform(-10, 70, 40)
    boxes = np.stack([y1, x1, y1 + RNG.uniform(0.5, 40, 40), x1 + RNG.uniform(0.5, 40, 40)], 1)
    for threshold in (0.5, 0.05):
        out = paste_masks(masks, boxes, 48, 64, threshold)
        assert all(_centres_inside(o, b) for o, b in zip(out, boxes))
    assert out.any()


def test_boxes_partly_outside_the_image_are_clipped():
    boxes = np.array([[-10, -5, 8, 6], [40, 50, 70, 90], [100, 100, 120, 120]])
    out = paste_masks(np.ones((3, 14, 14)), boxes, 48, 64)
    assert out[0, :8, :6].all() and out[0].sum() == 48
    assert not out[2].any()  # wholly outside: empty
    # clipping is cropping: the same masks pasted on a larger canvas, then cut to the image
    masks = RNG.random((3, 14, 14))
    big = paste_masks(masks, boxes + 40, 48 + 120, 64 + 120)
    np.testing.assert_array_equal(paste_masks(masks, boxes, 48, 64), big[:, 40:88, 40:104])
    assert paste_masks(np.zeros((0, 28, 28)), np.zeros((0, 4)), 5, 6).shape == (0, 5, 6)


def test_matches_model_gardens_padded_cv2_resize_on_an_integer_box():
    """Model Garden pads the 28x28 mask with zeros to 30x30 and cv2.resizes it to the box grown
    by one cell each side; a 56-pixel box grows to 60 (cells of 2 pixels)."""
    mask = RNG.random((28, 28)).astype(np.float32)
    ours = paste_masks(mask[None], np.array([[10, 10, 66, 66]]), 80, 80)[0]
    padded = np.zeros((30, 30), np.float32)
    padded[1:-1, 1:-1] = mask
    garden = np.zeros((80, 80), bool)
    garden[8:68, 8:68] = cv2.resize(padded, (60, 60), interpolation=cv2.INTER_LINEAR) >= 0.5
    assert not garden[:10].any() and not garden[66:].any()  # the zero border keeps it inside
    assert np.count_nonzero(ours != garden) <= 2  # float rounding at the threshold only
    assert ours.sum() > 1000


def test_tf_agrees_with_numpy_in_a_graph_with_dynamic_sizes(tmp_path):
    masks = RNG.random((60, 28, 28)).astype(np.float32)
    y1, x1 = RNG.uniform(-20, 60, 60), RNG.uniform(-20, 90, 60)
    boxes = np.stack([y1, x1, y1 + RNG.uniform(0, 50, 60), x1 + RNG.uniform(0, 50, 60)], 1)
    boxes = boxes.astype(np.float32)
    reference = paste_masks(masks, boxes, 64, 96)

    class Paster(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 28, 28], tf.float32),
                tf.TensorSpec([None, 4], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32),
            ]
        )
        def paste(self, masks, boxes, height, width):
            return paste_masks_tf(masks, boxes, height, width)

    tf.saved_model.save(Paster(), str(tmp_path / "paster"))
    loaded = tf.saved_model.load(str(tmp_path / "paster"))
    out = loaded.paste(masks, boxes, tf.constant(64), tf.constant(96)).numpy()
    assert out.shape == reference.shape and out.dtype == bool
    differ = np.count_nonzero(out != reference)
    assert differ <= max(2, reference.sum() // 10000), differ  # threshold ties at most


def test_paste_masks_checks_shapes():
    with pytest.raises(ValueError, match="boxes must be"):
        paste_masks(np.ones((2, 28, 28)), np.zeros((3, 4)), 10, 10)
    with pytest.raises(ValueError, match="masks must be"):
        paste_masks(np.ones((2, 28)), np.zeros((2, 4)), 10, 10)


# --- a fake instance model ---------------------------------------------------------------------


class FixedDetections(keras.layers.Layer):
    """The same detections for every image; fails unless its input is a multiple of 32."""

    def __init__(self, boxes, scores, classes, masks, count, **kwargs):
        super().__init__(**kwargs)
        self.fixed = {
            "boxes": np.asarray(boxes, np.float32),
            "scores": np.asarray(scores, np.float32),
            "classes": np.asarray(classes, np.int32),
            "masks": np.asarray(masks, np.float32),
        }
        self.count = int(count)

    def call(self, images):
        shape = tf.shape(images)
        tf.debugging.assert_equal(shape[1] % 32, 0, message="height not padded to 32")
        tf.debugging.assert_equal(shape[2] % 32, 0, message="width not padded to 32")
        tile = lambda v: tf.tile(tf.constant(v)[None], [shape[0]] + [1] * v.ndim)  # noqa: E731
        out = {key: tile(value) for key, value in self.fixed.items()}
        out["num_detections"] = tf.fill([shape[0]], self.count)
        return out


def fake_model(boxes, scores, classes, masks=None, count=None, num_classes=3):
    if masks is None:
        masks = np.ones((len(boxes), 28, 28))
    inputs = keras.Input((None, None, 3))
    outputs = FixedDetections(boxes, scores, classes, masks, len(boxes) if count is None else count)
    names = [f"thing{i}" for i in range(num_classes)]
    return kerasseg.Segmenter(inputs, outputs(inputs), task="instance", num_classes=num_classes,
                              class_names=names, input_multiple=32)  # fmt: skip


BOXES = [[10.5, 20.25, 40, 50], [30, 60, 80, 120], [5, 5, 15, 15], [0, 0, 20, 20]]
SCORES = [0.9, 0.8, 0.03, 0.95]  # the last row is padding past num_detections
CLASSES = [1, 0, 0, 2]


@pytest.fixture(scope="module")
def model():
    return fake_model(BOXES, SCORES, CLASSES, count=3)


def test_detect_maps_back_to_the_original_pixels_and_drops_what_it_should(model):
    image = np.zeros((50, 70, 3), np.uint8)  # padded to 64 x 96 for the model
    out = detect(model, image)
    assert set(out) == {"boxes", "classes", "scores", "masks"}
    np.testing.assert_allclose(out["boxes"], [[10.5, 20.25, 40, 50], [30, 60, 50, 70]])
    np.testing.assert_array_equal(out["classes"], [1, 0])
    np.testing.assert_allclose(out["scores"], [0.9, 0.8])
    assert out["boxes"].dtype == np.float32 and out["classes"].dtype == np.int32
    assert out["masks"].shape == (2, 50, 70) and out["masks"].dtype == bool
    # pasted at the original size in the frame of the unclipped boxes
    unclipped = np.array(BOXES[:2])
    np.testing.assert_array_equal(
        out["masks"], paste_masks(np.ones((2, 28, 28)), unclipped, 50, 70)
    )
    assert out["masks"][0, 11:39, 21:49].all() and out["masks"][1, 31:, 61:].all()
    assert out["masks"][0].sum() == pytest.approx(30 * 30, abs=8)  # less a few corner pixels
    assert all(_centres_inside(m, b) for m, b in zip(out["masks"], out["boxes"]))


def test_detect_thresholds_and_limits(model):
    image = np.zeros((50, 70, 3), np.uint8)
    assert len(detect(model, image, max_detections=1)["scores"]) == 1
    np.testing.assert_allclose(detect(model, image, score_threshold=0.85)["scores"], [0.9])
    low = detect(model, image, score_threshold=0.0)
    np.testing.assert_allclose(low["scores"], [0.9, 0.8, 0.03])  # 0.95 is padding
    none = detect(model, image, score_threshold=0.99)
    assert none["boxes"].shape == (0, 4) and none["masks"].shape == (0, 50, 70)
    with pytest.raises(ValueError, match="max_detections"):
        detect(model, image, max_detections=0)


def test_detect_on_batches_lists_and_scaled_images(model):
    batch = np.zeros((3, 50, 70, 3), np.uint8)
    out = detect(model, batch, batch_size=2)
    assert isinstance(out, list) and len(out) == 3
    assert all(np.array_equal(o["masks"], out[0]["masks"]) for o in out)
    sized = detect(model, [np.zeros((50, 70, 3), np.uint8), np.zeros((33, 40), np.uint8)])
    assert [o["masks"].shape[1:] for o in sized] == [(50, 70), (33, 40)]
    # max_size: 50 x 70 -> 25 x 35 for the model, whose boxes are then twice as large here
    masks = np.zeros((4, 28, 28))
    masks[:, :14] = 1.0  # top half on: tells which frame the mask was pasted in
    scaled_model = fake_model(BOXES, SCORES, CLASSES, masks, count=3)
    out = detect(scaled_model, np.zeros((50, 70, 3), np.uint8), max_size=35)
    unclipped = np.array(BOXES[:1]) * 2  # the second box lands wholly outside: dropped
    np.testing.assert_allclose(out["boxes"], [[21, 40.5, 50, 70]])
    np.testing.assert_array_equal(out["masks"], paste_masks(masks[:1], unclipped, 50, 70))
    assert out["masks"][0, 22:49, 42:].all()  # the top half of a 59-pixel-high box


def test_detect_extra_class_wise_nms():
    boxes = [[0, 0, 20, 20], [1, 1, 21, 21], [0, 0, 20, 20], [40, 40, 60, 60]]
    model = fake_model(boxes, [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 0])
    image = np.zeros((64, 64, 3), np.uint8)
    assert len(detect(model, image)["scores"]) == 4
    out = detect(model, image, iou_threshold=0.5)
    np.testing.assert_allclose(out["scores"], [0.9, 0.7, 0.6])  # 0.8 overlaps 0.9, same class
    np.testing.assert_array_equal(out["classes"], [0, 1, 0])


def test_predict_dispatches_instance_models(model):
    image = np.zeros((50, 70, 3), np.uint8)
    out = kerasseg.inference.predict(model, image, score_threshold=0.0, max_detections=2)
    reference = detect(model, image, score_threshold=0.0, max_detections=2)
    assert set(out) == set(reference)
    for key in out:
        np.testing.assert_array_equal(out[key], reference[key])
    assert isinstance(kerasseg.inference.predict(model, image[None]), list)
    with pytest.raises(ValueError, match="semantic models only"):
        kerasseg.inference.predict(model, image, flip=True)


def test_predict_refuses_instance_options_for_a_semantic_model():
    inputs = keras.Input((None, None, 3))
    semantic = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="instance models only"):
        kerasseg.inference.predict(semantic, np.zeros((8, 8, 3), np.uint8), score_threshold=0.5)


# --- COCO AP -----------------------------------------------------------------------------------


def _rectangle(shape, box):
    mask = np.zeros(shape, np.uint8)
    y1, x1, y2, x2 = box
    mask[y1:y2, x1:x2] = 1
    return mask


def _example(shape, boxes, classes):
    masks = np.stack([_rectangle(shape, box) for box in boxes])
    target = {
        "boxes": np.asarray(boxes, np.float32),
        "classes": np.asarray(classes, np.int32),
        "masks": masks,
    }
    return np.zeros(shape + (3,), np.uint8), target


def _perfect(examples, scores=None):
    out = []
    for _, target in examples:
        count = len(target["classes"])
        out.append(
            {
                "boxes": target["boxes"],
                "classes": target["classes"],
                "scores": np.linspace(0.9, 0.5, count) if scores is None else scores,
                "masks": target["masks"].astype(bool),
            }
        )
    return out


EXAMPLES = [
    _example((64, 64), [[4, 4, 20, 24], [30, 10, 60, 60]], [0, 1]),  # areas 320 and 1500
    _example((48, 80), [[10, 20, 40, 70]], [0]),
]


def test_ground_truth_as_predictions_scores_one():
    stats = coco_evaluate(_perfect(EXAMPLES), EXAMPLES, class_names=["a", "b"])
    assert set(stats) == {"bbox", "segm"}
    for kind in ("bbox", "segm"):
        assert len(stats[kind]) == 12
        for name in ("AP", "AP50", "AP75", "APs", "APm", "AR1", "AR100"):
            assert stats[kind][name] == pytest.approx(1.0), (kind, name)
        assert np.isnan(stats[kind]["APl"])  # no large object: pycocotools' -1


def test_a_missed_instance_gives_cocos_value():
    examples = [_example((64, 64), [[4, 4, 20, 24], [30, 10, 60, 60]], [0, 0])]
    found = _perfect(examples)[0]
    found = {key: value[:1] for key, value in found.items()}
    stats = coco_evaluate([found], examples)
    for kind in ("bbox", "segm"):
        # precision 1 up to recall 0.5, then none: 51 of COCO's 101 recall points
        assert stats[kind]["AP"] == pytest.approx(51 / 101)
        assert stats[kind]["AR100"] == pytest.approx(0.5)


def test_a_wrong_class_lowers_ap_and_no_detection_scores_zero():
    predictions = _perfect(EXAMPLES)
    predictions[0]["classes"] = np.array([0, 0], np.int32)  # the "b" instance called "a"
    stats = coco_evaluate(predictions, EXAMPLES, iou_types="segm")
    assert set(stats) == {"segm"}
    assert stats["segm"]["AP"] == pytest.approx(0.5)  # "a": 1 (its FP scores last), "b": 0
    empty = [{"boxes": np.zeros((0, 4)), "classes": [], "scores": [], "masks": None}] * 2
    assert coco_evaluate(empty, EXAMPLES, iou_types="bbox")["bbox"]["AP"] == 0.0


def test_coco_evaluate_runs_a_model_on_a_tf_dataset_and_writes_json(tmp_path):
    # The fake's one detection is the ground truth (a 40 x 50 image, padded for the model).
    model = fake_model([[8, 8, 24, 40]], [0.9], [2])
    example = _example((40, 50), [[8, 8, 24, 40]], [2])
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([example]),
        output_signature=(
            tf.TensorSpec([None, None, 3], tf.uint8),
            {
                "boxes": tf.TensorSpec([None, 4], tf.float32),
                "classes": tf.TensorSpec([None], tf.int32),
                "masks": tf.TensorSpec([None, None, None], tf.uint8),
            },
        ),
    )
    path = str(tmp_path / "coco.json")
    stats = coco_evaluate(model, dataset, output=path)
    assert stats["bbox"]["AP"] == pytest.approx(1.0) and stats["segm"]["AP"] == pytest.approx(1.0)
    with open(path, encoding="utf-8") as f:
        written = json.load(f)
    assert written["segm"]["AP"] == pytest.approx(1.0) and written["segm"]["APl"] is None
    with pytest.raises(FileExistsError, match="overwrite"):
        coco_evaluate(model, dataset, output=path)
    coco_evaluate(model, dataset, output=path, overwrite=True)
    with pytest.raises(ValueError, match="unbatched"):
        coco_evaluate(model, dataset.batch(1))


def test_coco_callback_writes_logs_every_n_epochs():
    model = fake_model([[8, 8, 24, 40]], [0.9], [2])
    callback = COCOEvaluation([_example((40, 50), [[8, 8, 24, 40]], [2])], every=2)
    callback.set_model(model)
    callback.set_params({"epochs": 3})
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    assert set(logs) == {"loss"}
    callback.on_epoch_end(1, logs)
    for name in ("val_mask_AP", "val_mask_AP50", "val_box_AP", "val_box_AP75"):
        assert logs[name] == pytest.approx(1.0), name
    assert len(logs) == 1 + 24
    logs = {}
    callback.on_epoch_end(2, logs)  # the last epoch is evaluated too
    assert logs["val_mask_AP"] == pytest.approx(1.0)
    assert sorted(callback.results) == [1, 2]


# --- overlay -----------------------------------------------------------------------------------


def test_draw_instances_colours_each_instance():
    image = np.full((64, 80, 3), 100, np.uint8)
    masks = np.stack(
        [_rectangle((64, 80), [20, 10, 50, 30]), _rectangle((64, 80), [20, 45, 50, 70])]
    )
    result = {
        "boxes": np.array([[20, 10, 50, 30], [20, 45, 50, 70]], np.float32),
        "classes": np.array([0, 1]),
        "scores": np.array([0.9, 0.6]),
        "masks": masks.astype(bool),
    }
    picture = draw_instances(image, result, ["cat", "dog"])
    assert picture.shape == (64, 80, 3) and picture.dtype == np.uint8
    first, second = picture[35, 20], picture[35, 57]  # mask centres, away from outlines
    assert not np.array_equal(first, image[35, 20]) and not np.array_equal(first, second)
    np.testing.assert_array_equal(picture[60, 38], image[60, 38])  # outside every instance
    np.testing.assert_array_equal(image, 100)  # the input is left alone
    plain = draw_instances(image, result, ["cat", "dog"], palette=[[255, 0, 0]], score=False)
    np.testing.assert_array_equal(plain[35, 20], [178, 50, 50])  # 0.5 * 100 + 0.5 * colour
    with pytest.raises(ValueError, match="masks must be"):
        draw_instances(image, {**result, "masks": masks[:, :10]}, ["cat", "dog"])
