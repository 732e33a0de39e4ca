"""The panoptic models' fixed post-processing, as layers of their inference graphs.

Both end in the same map: int32 ``[B, H, W]`` panoptic ids ``class * label_divisor +
instance`` (instance 0 on stuff), -1 where no segment claims a pixel (void), and ``instance
scores`` float32 ``[B, K]``: the score of instance k + 1 (0 for numbers not used).

- ``PanopticMerge`` (Panoptic FPN, Kirillov et al. 2019): the detections by descending score,
  each pasted into the image; one whose mask overlaps the pixels already placed by more than
  ``overlap_threshold`` of its area is dropped, otherwise it takes its free pixels. Then each
  stuff class of the semantic branch takes its free pixels if they cover at least
  ``stuff_area``.
- ``CenterGrouping`` (Panoptic-DeepLab, Cheng et al. 2020): centres are the local maxima of the
  heatmap (max pooling of ``nms_kernel``) above ``center_threshold``, the ``top_k`` best; every
  thing pixel joins the centre nearest to where its offset points; an instance's class is the
  majority of its pixels' semantic classes. Stuff as above.

Everything is TensorFlow ops with the images' sizes known only at run time, so the models export
whole: a SavedModel serves the panoptic map without kerasseg.
"""

import keras
import tensorflow as tf

from kerasseg.ops.masks import paste_masks_tf

__all__ = ["PanopticMerge", "CenterGrouping", "stuff_fill"]

VOID = -1


def stuff_fill(panoptic, labels, stuff_classes, stuff_area, divisor):
    """Give each stuff class its free pixels of ``labels`` (an image's class map, int32
    [H, W]) where they cover at least ``stuff_area``; ``panoptic`` holds the things (-1 free)."""
    free = tf.equal(panoptic, VOID)
    for cls in stuff_classes:
        region = free & tf.equal(labels, cls)
        area = tf.reduce_sum(tf.cast(region, tf.int32))
        keep = region & (area >= stuff_area)
        panoptic = tf.where(keep, cls * divisor, panoptic)
    return panoptic


class _PanopticLayer(keras.layers.Layer):
    def __init__(self, thing_classes, stuff_classes, stuff_area, label_divisor=1000, **kw):
        super().__init__(**kw)
        self.thing_classes = [int(c) for c in thing_classes]
        self.stuff_classes = [int(c) for c in stuff_classes]
        self.stuff_area = int(stuff_area)
        self.label_divisor = int(label_divisor)

    def get_config(self):
        return {
            **super().get_config(),
            "thing_classes": list(self.thing_classes),
            "stuff_classes": list(self.stuff_classes),
            "stuff_area": self.stuff_area,
            "label_divisor": self.label_divisor,
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class PanopticMerge(_PanopticLayer):
    """``(boxes [B, D, 4], scores [B, D], classes [B, D] (thing positions), num_detections [B],
    masks [B, D, m, m] box-frame probabilities, semantic [B, H, W, 1 + S] (0: things, then the
    stuff classes)) -> (panoptic int32 [B, H, W], instance scores [B, D])``."""

    def __init__(
        self,
        thing_classes,
        stuff_classes,
        stuff_area=4096,
        overlap_threshold=0.5,
        score_threshold=0.5,
        mask_threshold=0.5,
        label_divisor=1000,
        **kw,
    ):
        super().__init__(thing_classes, stuff_classes, stuff_area, label_divisor, **kw)
        self.overlap_threshold = float(overlap_threshold)
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)

    def call(self, boxes, scores, classes, num_detections, masks, semantic):
        height, width = tf.shape(semantic)[1], tf.shape(semantic)[2]
        labels = tf.argmax(semantic, axis=-1, output_type=tf.int32)
        stuff_of = tf.constant([-1] + self.stuff_classes, tf.int32)
        thing_of = tf.constant(self.thing_classes, tf.int32)
        slots = tf.shape(scores)[1]

        def one(args):
            box, score, cls, count, mask, label = args
            score = tf.cast(score, tf.float32)
            kept = (tf.range(slots) < tf.cast(count, tf.int32)) & (score >= self.score_threshold)
            order = tf.argsort(tf.where(kept, score, -1.0), direction="DESCENDING", stable=True)
            pasted = paste_masks_tf(
                tf.gather(mask, order), tf.gather(box, order), height, width, self.mask_threshold
            )
            kept = tf.gather(kept, order)
            cls = tf.gather(thing_of, tf.clip_by_value(tf.gather(cls, order), 0, len(thing_of) - 1))

            def place(i, panoptic, number, instance_scores):
                m = pasted[i] & kept[i]
                area = tf.reduce_sum(tf.cast(m, tf.float32))
                taken = tf.reduce_sum(tf.cast(m & (panoptic != VOID), tf.float32))
                accept = (area > 0) & (taken <= self.overlap_threshold * area)
                new = m & (panoptic == VOID) & accept
                panoptic = tf.where(new, cls[i] * self.label_divisor + number + 1, panoptic)
                instance_scores = tf.tensor_scatter_nd_update(
                    instance_scores,
                    [[number]],
                    [tf.where(accept, tf.gather(tf.gather(score, order), i), 0.0)],
                )
                return i + 1, panoptic, number + tf.cast(accept, tf.int32), instance_scores

            start = (
                tf.constant(0),
                tf.fill([height, width], VOID),
                tf.constant(0),
                tf.zeros([slots], tf.float32),
            )
            _, panoptic, _, instance_scores = tf.while_loop(lambda i, *_: i < slots, place, start)
            stuff_labels = tf.gather(stuff_of, label)
            panoptic = stuff_fill(
                panoptic, stuff_labels, self.stuff_classes, self.stuff_area, self.label_divisor
            )
            return panoptic, instance_scores

        return tf.map_fn(
            one,
            (boxes, scores, classes, num_detections, masks, labels),
            fn_output_signature=(
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None], tf.float32),
            ),
        )

    def compute_output_spec(self, boxes, scores, classes, num_detections, masks, semantic):
        batch, height, width = semantic.shape[0], semantic.shape[1], semantic.shape[2]
        return (
            keras.KerasTensor((batch, height, width), dtype="int32"),
            keras.KerasTensor((batch, scores.shape[1]), dtype="float32"),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "overlap_threshold": self.overlap_threshold,
            "score_threshold": self.score_threshold,
            "mask_threshold": self.mask_threshold,
        }


@keras.saving.register_keras_serializable(package="kerasseg")
class CenterGrouping(_PanopticLayer):
    """``(semantic [B, H, W, C] probabilities, center [B, H, W, 1] heatmap, offset [B, H, W, 2]
    (dy, dx) px) -> (panoptic int32 [B, H, W], instance scores [B, top_k])``; an instance's
    score is its centre's heatmap value times the mean probability of its class over it."""

    def __init__(
        self,
        thing_classes,
        stuff_classes,
        stuff_area=2048,
        center_threshold=0.1,
        nms_kernel=7,
        top_k=200,
        label_divisor=1000,
        **kw,
    ):
        super().__init__(thing_classes, stuff_classes, stuff_area, label_divisor, **kw)
        self.center_threshold = float(center_threshold)
        self.nms_kernel = int(nms_kernel)
        self.top_k = int(top_k)

    def call(self, semantic, center, offset):
        semantic = tf.cast(semantic, tf.float32)
        center = tf.cast(center, tf.float32)[..., 0]
        offset = tf.cast(offset, tf.float32)
        num_classes = semantic.shape[-1]
        is_thing = tf.reduce_any(
            tf.equal(tf.range(num_classes)[:, None], tf.constant(self.thing_classes)[None]), 1
        )
        pooled = tf.nn.max_pool2d(center[..., None], self.nms_kernel, 1, "SAME")[..., 0]
        peaks = tf.where(tf.equal(center, pooled) & (center > self.center_threshold), center, -1.0)

        def one(args):
            probs, heat, peak, shift = args
            height, width = tf.shape(heat)[0], tf.shape(heat)[1]
            labels = tf.argmax(probs, axis=-1, output_type=tf.int32)
            thing = tf.gather(is_thing, labels)
            k = tf.minimum(self.top_k, height * width)
            top = tf.math.top_k(tf.reshape(peak, [-1]), k=k)
            valid = top.values > 0
            cy = tf.cast(top.indices // width, tf.float32)
            cx = tf.cast(top.indices % width, tf.float32)
            ys = tf.cast(tf.range(height), tf.float32)[:, None]
            xs = tf.cast(tf.range(width), tf.float32)[None, :]
            to_y = tf.reshape(ys + shift[..., 0], [-1, 1])
            to_x = tf.reshape(xs + shift[..., 1], [-1, 1])
            distance = (to_y - cy[None]) ** 2 + (to_x - cx[None]) ** 2  # [HW, k]
            distance = tf.where(valid[None], distance, float("inf"))
            nearest = tf.argmin(distance, axis=1, output_type=tf.int32) + 1
            has_centre = tf.reduce_any(valid)
            number = tf.where(
                tf.reshape(thing, [-1]) & has_centre, nearest, 0
            )  # [HW], 0: not a thing pixel
            flat_probs = tf.reshape(probs, [-1, num_classes])
            votes = tf.math.unsorted_segment_sum(
                tf.one_hot(tf.reshape(labels, [-1]), num_classes), number, k + 1
            )
            votes = tf.where(is_thing[None], votes, 0.0)
            instance_class = tf.argmax(votes, axis=1, output_type=tf.int32)  # [k + 1]
            pixels = tf.reduce_sum(votes, axis=1)
            class_prob = tf.reduce_sum(
                flat_probs * tf.one_hot(tf.gather(instance_class, number), num_classes), 1
            )
            prob_sum = tf.math.unsorted_segment_sum(class_prob, number, k + 1)
            mean_prob = prob_sum / tf.maximum(pixels, 1.0)
            centre_score = tf.concat([[0.0], tf.where(valid, top.values, 0.0)], 0)
            scores = tf.where(pixels > 0, centre_score * mean_prob, 0.0)[1:]
            ids = tf.gather(instance_class, number) * self.label_divisor + number
            panoptic = tf.reshape(tf.where(number > 0, ids, VOID), [height, width])
            panoptic = stuff_fill(
                panoptic, labels, self.stuff_classes, self.stuff_area, self.label_divisor
            )
            scores = tf.pad(scores, [[0, self.top_k - k]])
            return panoptic, scores

        return tf.map_fn(
            one,
            (semantic, center, peaks, offset),
            fn_output_signature=(
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([self.top_k], tf.float32),
            ),
        )

    def compute_output_spec(self, semantic, center, offset):
        batch, height, width = semantic.shape[0], semantic.shape[1], semantic.shape[2]
        return (
            keras.KerasTensor((batch, height, width), dtype="int32"),
            keras.KerasTensor((batch, self.top_k), dtype="float32"),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "center_threshold": self.center_threshold,
            "nms_kernel": self.nms_kernel,
            "top_k": self.top_k,
        }
