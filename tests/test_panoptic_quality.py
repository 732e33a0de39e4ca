"""PanopticQuality against a NumPy transcription of panopticapi's pq_compute rules, on hand cases
(one per rule) and on random maps; and the folder scorer on a panopticapi-format fixture."""

import json

import cv2
import numpy as np
import pytest

from kerasseg.metrics.panoptic import PanopticQuality, panoptic_quality_files, rgb_to_id

D = 1000
THINGS, STUFF = [0, 1], [2, 3]


def reference_stats(gt, pred, things, stuff, divisor=D):
    """Per-class [TP, FP, FN, sum IoU], written from the paper and panopticapi, pixel loops."""
    classes = set(things) | set(stuff)
    stats = np.zeros((max(classes) + 1, 4))

    def segments(ids):
        out = {}
        for value in np.unique(ids):
            c = value // divisor
            if value < 0 or c not in classes:
                continue
            out[int(value)] = dict(cls=int(c), area=int((ids == value).sum()))
        return out

    for g_map, p_map in zip(gt, pred):
        gs, ps = segments(g_map), segments(p_map)
        void = np.ones(g_map.shape, bool)
        for value in gs:
            void &= g_map != value
        crowd = {v: s for v, s in gs.items() if s["cls"] in things and v % divisor == 0}
        g_done, p_done = set(), set()
        for gv, g in gs.items():
            if gv in crowd:
                continue
            for pv, p in ps.items():
                if p["cls"] != g["cls"]:
                    continue
                inter = int(((g_map == gv) & (p_map == pv)).sum())
                on_void = int(((p_map == pv) & void).sum())
                union = g["area"] + p["area"] - inter - on_void
                if inter and inter / union > 0.5:
                    stats[g["cls"]] += [1, 0, 0, inter / union]
                    g_done.add(gv)
                    p_done.add(pv)
        for gv, g in gs.items():
            if gv not in g_done and gv not in crowd:
                stats[g["cls"]][2] += 1
        for pv, p in ps.items():
            if pv in p_done:
                continue
            excused = ((p_map == pv) & void).sum()
            crowd_of_class = [v for v, s in crowd.items() if s["cls"] == p["cls"]]
            for v in crowd_of_class:
                excused += ((p_map == pv) & (g_map == v)).sum()
            if excused / p["area"] <= 0.5:
                stats[p["cls"]][1] += 1
    return stats


def metric_stats(gt, pred, things=THINGS, stuff=STUFF):
    metric = PanopticQuality(things, stuff, label_divisor=D)
    metric.update_state(np.asarray(gt), np.asarray(pred))
    return metric, metric.stats.numpy()


def blank(value, size=20):
    return np.full((size, size), value, np.int64)


def test_hand_cases_one_rule_each():
    # a thing instance (class 0, instance 1) on stuff class 2; the prediction covers 80 of its
    # 100 pixels and 10 more: IoU 80 / 110, a true positive
    gt = blank(2 * D)
    gt[0:10, 0:10] = 0 * D + 1
    pred = blank(2 * D)
    pred[0:10, 0:8] = 0 * D + 7
    pred[10, 0:10] = 0 * D + 7
    metric, stats = metric_stats([gt], [pred])
    np.testing.assert_allclose(stats[0], [1, 0, 0, 80 / 110])
    # the stuff: 300 true pixels, 310 predicted, 290 shared
    np.testing.assert_allclose(stats[2], [1, 0, 0, 290 / 320])
    report = metric.report()
    assert report["things"]["classes"] == 1 and report["stuff"]["classes"] == 1
    assert report["all"]["pq"] == pytest.approx((80 / 110 + 290 / 320) / 2)
    assert float(metric.result()) == pytest.approx(report["all"]["pq"])

    # IoU exactly 0.5 is not a match: a false negative and a false positive
    gt = blank(2 * D)
    gt[0:10, 0:10] = 1
    pred = blank(2 * D)
    pred[0:10, 0:5] = 1  # 50 of 100, union 100
    pred[0:10, 5:10] = 2 * D
    _, stats = metric_stats([gt], [pred])
    np.testing.assert_allclose(stats[0], [0, 1, 1, 0])

    # void: ground truth 255 is left out of the union; a prediction on void is no false positive
    gt = blank(2 * D)
    gt[0:10, 0:10] = 1
    gt[10:20, 0:10] = 255 * D
    pred = blank(2 * D)
    pred[0:10, 0:10] = 1
    pred[10:14, 0:10] = 1  # 40 of its 140 pixels on void: IoU 100 / (100 + 140 - 100 - 40) = 1
    pred[15:20, 0:10] = 1 * D + 3  # class 1, entirely on void: excused
    _, stats = metric_stats([gt], [pred])
    np.testing.assert_allclose(stats[0], [1, 0, 0, 1.0])
    np.testing.assert_allclose(stats[1], [0, 0, 0, 0])

    # crowd (thing class, instance 0): no false negative; a prediction of that class mostly on
    # it is excused, one of another thing class is a false positive
    gt = blank(3 * D)
    gt[0:10, 0:10] = 0 * D + 0  # crowd of class 0
    pred = blank(3 * D)
    pred[0:10, 0:6] = 0 * D + 1
    pred[0:10, 6:10] = 1 * D + 1
    _, stats = metric_stats([gt], [pred])
    np.testing.assert_allclose(stats[0], [0, 0, 0, 0])
    np.testing.assert_allclose(stats[1], [0, 1, 0, 0])
    np.testing.assert_allclose(stats, reference_stats([gt], [pred], THINGS, STUFF))

    # a class only in the prediction: PQ 0 for it, counted in the mean; only in the truth: same
    gt, pred = blank(2 * D), blank(2 * D)
    pred[0:5, 0:5] = 3 * D
    gt[10:15, 10:15] = 1 * D + 1
    metric, stats = metric_stats([gt], [pred])
    assert stats[3].tolist() == [0, 1, 0, 0] and stats[1].tolist() == [0, 0, 1, 0]
    report = metric.report()
    assert report["per_class"][3]["pq"] == 0 and report["per_class"][1]["pq"] == 0
    assert report["all"]["classes"] == 3  # 1, 2 and 3; class 0 appears nowhere


@pytest.mark.parametrize("seed", range(4))
def test_random_maps_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for _ in range(3):
        g = np.full((24, 24), 2 * D, np.int64)
        g[:, 12:] = 3 * D
        for _ in range(rng.integers(1, 5)):
            y, x, h, w = rng.integers(0, 18, 4)
            c = rng.integers(0, 2)
            g[y : y + h // 2 + 3, x : x + w // 2 + 3] = c * D + rng.integers(0, 3)  # 0: crowd
        g[rng.random((24, 24)) < 0.05] = 255 * D  # void specks
        p = g.copy()
        p[rng.random((24, 24)) < 0.2] = 2 * D  # noise
        shift = rng.integers(-3, 4)
        p = np.roll(p, shift, axis=int(rng.integers(0, 2)))
        p[p // D == 255] = 3 * D
        gt.append(g)
        pred.append(p)
    metric, stats = metric_stats(gt, pred)
    want = reference_stats(gt, pred, THINGS, STUFF)
    np.testing.assert_array_equal(stats[:, :3], want[:, :3])
    np.testing.assert_allclose(stats[:, 3], want[:, 3], rtol=1e-12)
    # streaming: image by image gives the same totals
    streamed = PanopticQuality(THINGS, STUFF, label_divisor=D)
    for g, p in zip(gt, pred):
        streamed.update_state(g, p)
    np.testing.assert_allclose(streamed.stats.numpy(), stats)
    streamed.reset_state()
    assert not streamed.stats.numpy().any()


def test_bad_options():
    with pytest.raises(ValueError, match="both thing and stuff"):
        PanopticQuality([0, 1], [1, 2])
    with pytest.raises(ValueError, match=">= 0"):
        PanopticQuality([-1], [2])
    config = PanopticQuality(THINGS, STUFF, label_divisor=256).get_config()
    assert PanopticQuality.from_config(config).label_divisor == 256


def _write_png(path, ids):
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    cv2.imwrite(str(path), rgb[..., ::-1])


def test_panopticapi_folders(tmp_path):
    # COCO-style sparse category ids: 1 person and 3 car (things), 92 road and 105 sky (stuff)
    categories = [
        dict(id=1, name="person", isthing=1),
        dict(id=3, name="car", isthing=1),
        dict(id=92, name="road", isthing=0),
        dict(id=105, name="sky", isthing=0),
    ]
    g = np.zeros((16, 16), np.int64)  # 0: void (unlabelled)
    g[:8] = 3_000_001  # sky (any ids: panopticapi's are arbitrary)
    g[8:] = 2_000_000  # road
    g[2:6, 2:6] = 10  # a person
    g[10:14, 8:14] = 11  # a car crowd region
    g[0] = 0  # an unlabelled row
    p = np.full((16, 16), 5, np.int64)
    p[8:] = 6
    p[2:6, 2:7] = 7  # person, IoU 16 / 20
    p[10:14, 8:12] = 8  # car on the crowd: excused
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    _write_png(tmp_path / "gt" / "a.png", g)
    _write_png(tmp_path / "pred" / "a.png", p)
    assert rgb_to_id(cv2.imread(str(tmp_path / "gt" / "a.png"))[..., ::-1]).max() == 3_000_001
    gt_json = dict(
        categories=categories,
        annotations=[
            dict(
                image_id=1,
                file_name="a.png",
                segments_info=[
                    dict(id=3_000_001, category_id=105, iscrowd=0),
                    dict(id=2_000_000, category_id=92, iscrowd=0),
                    dict(id=10, category_id=1, iscrowd=0),
                    dict(id=11, category_id=3, iscrowd=1),
                ],
            )
        ],
    )
    pred_json = dict(
        annotations=[
            dict(
                image_id=1,
                file_name="a.png",
                segments_info=[
                    dict(id=5, category_id=105),
                    dict(id=6, category_id=92),
                    dict(id=7, category_id=1),
                    dict(id=8, category_id=3),
                ],
            )
        ]
    )
    (tmp_path / "gt.json").write_text(json.dumps(gt_json))
    (tmp_path / "pred.json").write_text(json.dumps(pred_json))
    report = panoptic_quality_files(str(tmp_path / "gt.json"), str(tmp_path / "pred.json"))
    # the same images as kerasseg maps (person 0, car 1, road 2, sky 3), through the reference
    gm = np.where(g == 3_000_001, 3 * D, 2 * D)
    gm[2:6, 2:6], gm[10:14, 8:14] = 1, 1 * D
    pm = np.where(p == 5, 3 * D, 2 * D)
    pm[2:6, 2:7], pm[10:14, 8:12] = 1, 1 * D + 1
    gm[g == 0] = -1
    want = reference_stats([gm], [pm], [0, 1], [2, 3])
    assert report["per_class"]["person"]["pq"] == pytest.approx(want[0, 3] / want[0, 0])
    assert report["per_class"]["person"]["sq"] == pytest.approx(16 / 20)
    assert "car" not in report["per_class"]  # crowd only, prediction excused: nothing counted
    road = want[2, 3] / (want[2, 0] + 0.5 * want[2, 1] + 0.5 * want[2, 2])
    assert report["per_class"]["road"]["pq"] == pytest.approx(road)
    assert report["things"]["classes"] == 1 and report["stuff"]["classes"] == 2

    gt_json["annotations"][0]["segments_info"].pop()  # id 11 now unlisted
    (tmp_path / "gt.json").write_text(json.dumps(gt_json))
    with pytest.raises(ValueError, match=r"a.png' has segment ids \[11\]"):
        panoptic_quality_files(str(tmp_path / "gt.json"), str(tmp_path / "pred.json"))
