"""`kerasseg.visualize.panoptic_overlay` / `colorize_panoptic`: exact colours of stuff, thing
instances (shades of their class colour), void and outlines, and clear errors for bad inputs.

The expected colours follow the rule the module documents, written out here: instance n >= 1 of
a class of colour c is c moved towards mid-grey (+ below 128, - from 128) by
OFFSETS[(n - 1) % 26] per channel, OFFSETS starting (60,0,0), (0,60,0), (0,0,60), ...
"""

import numpy as np
import pytest

from kerasseg import visualize

PALETTE = np.array(
    [[70, 130, 180], [128, 64, 128], [0, 0, 142], [220, 20, 60], [10, 200, 90]], np.uint8
)
SKY, ROAD, CAR, PERSON = 0, 1, 2, 3
THINGS = (CAR, PERSON)
H, W = 12, 16


def scene():
    pan = np.full((H, W), ROAD * 1000, np.int64)
    pan[:4] = SKY * 1000
    pan[5:9, 2:7] = CAR * 1000 + 1
    pan[5:9, 7:11] = CAR * 1000 + 2  # touches car 1
    pan[9:11, 2:6] = CAR * 1000  # a crowd region: class colour
    pan[4:11, 12:15] = PERSON * 1000 + 1
    pan[10:12, 8:11] = -1  # void
    pan[0:2, 14:16] = 255 * 1000  # a class beyond the palette: void
    pan[11, 0] = ROAD * 1000 + 7  # stuff: the instance part is ignored
    return pan


def image():
    return np.random.default_rng(0).integers(0, 256, (H, W, 3)).astype(np.uint8)


def blend(pixel, colour, alpha=0.5):
    return np.rint((1 - alpha) * np.asarray(pixel, float) + alpha * np.asarray(colour, float))


def test_shades_follow_the_documented_rule():
    car = PALETTE[CAR]  # (0, 0, 142): R and G move up, B down
    np.testing.assert_array_equal(visualize.instance_shade(car, 0), car)
    np.testing.assert_array_equal(visualize.instance_shade(car, 1), [60, 0, 142])
    np.testing.assert_array_equal(visualize.instance_shade(car, 2), [0, 60, 142])
    np.testing.assert_array_equal(visualize.instance_shade(car, 3), [0, 0, 82])
    np.testing.assert_array_equal(visualize.instance_shade(car, 7), [60, 60, 82])
    np.testing.assert_array_equal(visualize.instance_shade(car, 27), [60, 0, 142])  # cycles
    rng = np.random.default_rng(1)
    for colour in [*PALETTE, [0, 0, 0], [255, 255, 255], *rng.integers(0, 256, (20, 3))]:
        colour = np.asarray(colour, np.int64)
        shades = visualize.instance_shade(np.tile(colour, (26, 1)), np.arange(1, 27))
        assert shades.dtype == np.uint8
        diff = np.abs(shades.astype(np.int64) - colour)
        # "Near": within 60 of the class colour in every channel, 30+ away in at least one.
        assert diff.max() <= 60 and np.all(diff.max(axis=1) >= 30)
        # Distinct: any two of the 26 differ by 30 or more in some channel.
        pair = np.abs(shades[:, None].astype(np.int64) - shades[None].astype(np.int64)).max(-1)
        assert np.all(pair[~np.eye(26, dtype=bool)] >= 30)


def test_overlay_colours_pixel_for_pixel():
    img, pan = image(), scene()
    out = visualize.panoptic_overlay(img, pan, PALETTE, THINGS, outline=False)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    car1, car2 = [60, 0, 142], [0, 60, 142]
    person1 = [160, 20, 60]  # (220, 20, 60): R moves down
    expected = np.empty((H, W, 3), float)
    for y in range(H):
        for x in range(W):
            v = pan[y, x]
            if v < 0 or v // 1000 >= len(PALETTE):
                expected[y, x] = img[y, x]
                continue
            cls, number = v // 1000, v % 1000
            colour = PALETTE[cls]
            if cls == CAR and number == 1:
                colour = car1
            elif cls == CAR and number == 2:
                colour = car2
            elif cls == PERSON and number == 1:
                colour = person1
            expected[y, x] = blend(img[y, x], colour)
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    # Spot checks of the same rule.
    np.testing.assert_array_equal(out[0, 0], blend(img[0, 0], PALETTE[SKY]))  # stuff
    np.testing.assert_array_equal(out[11, 0], blend(img[11, 0], PALETTE[ROAD]))
    np.testing.assert_array_equal(out[9, 2], blend(img[9, 2], PALETTE[CAR]))  # crowd
    assert not np.array_equal(out[6, 4], blend(img[6, 4], car2))
    np.testing.assert_array_equal(out[10:12, 8:11], img[10:12, 8:11])  # void untouched
    np.testing.assert_array_equal(out[0:2, 14:16], img[0:2, 14:16])
    # alpha: 0 is the image, 1 the colours.
    np.testing.assert_array_equal(
        visualize.panoptic_overlay(img, pan, PALETTE, THINGS, alpha=0.0, outline=False), img
    )
    solid = visualize.panoptic_overlay(img, pan, PALETTE, THINGS, alpha=1.0, outline=False)
    colours = visualize.colorize_panoptic(pan, PALETTE, THINGS, void_colour=(1, 2, 3))
    valid = (pan >= 0) & (pan // 1000 < len(PALETTE))
    np.testing.assert_array_equal(solid[valid], colours[valid])
    np.testing.assert_array_equal(colours[~valid], np.tile([1, 2, 3], (int((~valid).sum()), 1)))
    np.testing.assert_array_equal(colours[6, 3], car1)
    np.testing.assert_array_equal(colours[6, 8], car2)
    np.testing.assert_array_equal(colours[2, 2], PALETTE[SKY])
    # Without thing_classes every class is stuff: both cars in the car colour.
    flat = visualize.colorize_panoptic(pan, PALETTE)
    np.testing.assert_array_equal(flat[6, 3], PALETTE[CAR])
    np.testing.assert_array_equal(flat[6, 8], PALETTE[CAR])


def expected_boundary(key):
    """The outline rule, by loops: a non-void pixel whose right/lower neighbour has another
    segment, or whose left/upper neighbour is void."""
    out = np.zeros(key.shape, bool)
    for y in range(H):
        for x in range(W):
            if key[y, x] == -1:
                continue
            right = x + 1 < W and key[y, x + 1] != key[y, x]
            down = y + 1 < H and key[y + 1, x] != key[y, x]
            left = x > 0 and key[y, x - 1] == -1
            up = y > 0 and key[y - 1, x] == -1
            out[y, x] = right or down or left or up
    return out


def test_outlines():
    img, pan = image(), scene()
    plain = visualize.panoptic_overlay(img, pan, PALETTE, THINGS, outline=False)
    out = visualize.panoptic_overlay(img, pan, PALETTE, THINGS)
    key = np.where((pan < 0) | (pan // 1000 >= len(PALETTE)), -1, pan)
    stuff = (pan >= 0) & (pan // 1000 < 2)
    key[stuff] = pan[stuff] // 1000 * 1000  # stuff: the class only
    edge = expected_boundary(key)
    np.testing.assert_array_equal(visualize.panoptic_boundaries(key), edge)
    np.testing.assert_array_equal(out[edge], np.full((int(edge.sum()), 3), 255))
    np.testing.assert_array_equal(out[~edge], plain[~edge])
    assert edge[3, 0] and edge[3].all()  # the sky's last row: road below
    assert edge[5:9, 6].all() and not edge[6:8, 7].any()  # car 1 | car 2: 1 px, in car 1
    assert edge[4, 2] and not edge[6, 3]  # road above car 1; the inside of car 1
    assert not edge[11, 0] and not edge[10, 0]  # road instance 7 is road
    assert edge[0, 13] and edge[2, 14]  # next to the class-255 void
    np.testing.assert_array_equal(out[10:12, 8:11], img[10:12, 8:11])  # void stays the image
    np.testing.assert_array_equal(out[0:2, 14:16], img[0:2, 14:16])
    dark = visualize.panoptic_overlay(img, pan, PALETTE, THINGS, outline_colour=(0, 0, 0))
    np.testing.assert_array_equal(dark[edge], np.zeros((int(edge.sum()), 3)))


def test_targets_predictions_and_grey_images():
    img, pan = image(), scene()
    want = visualize.panoptic_overlay(img, pan, PALETTE, THINGS)
    semantic, ids = np.where(pan >= 0, pan // 1000, 255), np.where(pan >= 0, pan % 1000, 0)
    target = {"semantic": semantic.astype(np.int32), "instance_ids": ids.astype(np.int32)}
    from_target = visualize.panoptic_overlay(img, target, PALETTE, THINGS)
    np.testing.assert_array_equal(from_target, want)  # 255: void
    from_result = visualize.panoptic_overlay(
        img, {"panoptic": pan, "segments": []}, PALETTE, THINGS
    )
    np.testing.assert_array_equal(from_result, want)
    grey = visualize.panoptic_overlay(img[..., 0], pan, PALETTE, THINGS)
    assert grey.shape == (H, W, 3)
    np.testing.assert_array_equal(grey[10, 9], np.repeat(img[10, 9, 0], 3))
    # Another label divisor.
    other = np.where(pan >= 0, (pan // 1000) * 256 + pan % 1000, -1)
    np.testing.assert_array_equal(
        visualize.panoptic_overlay(img, other, PALETTE, THINGS, label_divisor=256), want
    )


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(panoptic=np.zeros((H, W + 1), np.int64)), "differs from the image's size"),
        (dict(panoptic=np.zeros((2, H, W), np.int64)), "must be a (H, W) map"),
        (dict(panoptic=np.full((H, W), 0.5)), "integer ids"),
        (dict(panoptic={"semantic": np.zeros((H, W))}), "'semantic' and 'instance_ids'"),
        (
            dict(panoptic={"semantic": np.zeros((H, W)), "instance_ids": np.zeros((H, 2))}),
            "differ in shape",
        ),
        (dict(alpha=1.5), "alpha must be in [0, 1]"),
        (dict(label_divisor=0), "label_divisor must be a positive integer"),
        (dict(palette=np.zeros((5, 4))), "shape (K, 3)"),
        (dict(thing_classes=[1.5]), "thing_classes must be class indices"),
    ],
)
def test_bad_inputs_are_clear_value_errors(change, words):
    args = dict(image=image(), panoptic=scene(), palette=PALETTE, thing_classes=THINGS)
    args.update(change)
    with pytest.raises(ValueError) as exc:
        visualize.panoptic_overlay(**args)
    assert words in str(exc.value)
