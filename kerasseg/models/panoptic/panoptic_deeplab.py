"""Panoptic-DeepLab (Cheng et al. 2020): bottom-up panoptic segmentation.

    model = kerasseg.panoptic_deeplab(19, thing_classes=range(11, 19), backbone="resnet50")
    model.compile(optimizer="adam"); model.fit(kerasseg.data.prepare(panoptic_ds, 8, 512))
    model(images)["panoptic"]  # int32 [B, H, W]: class * 1000 + instance, -1 void

A dilated backbone (``output_stride`` 16) feeds two decoders of the same shape: ASPP, then two
stages that upsample 2x, concatenate a 1x1 projection of the backbone's stride-8 and stride-4
maps and fuse with a 5x5 depthwise-separable convolution. The semantic decoder is 256 wide
(projections 64 and 32), the instance decoder 128 (32 and 16). Heads, each a 5x5 separable
convolution and a 1x1 one, upsampled to the input's size: semantic scores (256), the instance
centre heatmap (32, 1 channel) and the offset of each pixel to its centre (32, 2 channels, in
input pixels). ``CenterGrouping`` turns the three into the panoptic map inside the graph.

Training (``train_step``): the targets come from the batch's ``semantic`` and ``instance_ids``
maps: a Gaussian of ``center_sigma`` (8 px) at each instance's centre of mass, and offsets from
every thing pixel to its centre. Losses as the paper: softmax cross-entropy on the hardest 20%
of pixels (weight 1), mean squared error on the heatmap (weight 200) and L1 on the offsets of
the thing pixels (weight 0.01). The paper's extra weight 3 for pixels of small instances is not
applied. Inputs: sides a multiple of ``output_stride``.
"""

import weakref

import keras
import tensorflow as tf
from keras import layers

from kerasseg.backbones import check_output_stride
from kerasseg.layers import CenterGrouping, ResizeLike, aspp, conv_bn_act, separable_conv_bn_act
from kerasseg.models import base
from kerasseg.models.own_losses import OwnLossSegmenter
from kerasseg.models.panoptic import common
from kerasseg.models.registry import BN_MOMENTUM, register_model
from kerasseg.models.semantic.deeplab import atrous_rates_for, dilated_features
from kerasseg.ops.panoptic_targets import center_targets, class_lookup, instance_targets

LOSS_NAMES = ("semantic", "center", "offset")
LOSS_WEIGHTS = {"semantic": 1.0, "center": 200.0, "offset": 0.01}
_DENSE = weakref.WeakKeyDictionary()


@keras.saving.register_keras_serializable(package="kerasseg")
class PanopticDeepLab(OwnLossSegmenter):
    """A ``Segmenter`` of task "panoptic" that trains on ``(images, {"semantic",
    "instance_ids"})`` batches and reports its three losses and their sum."""

    LOSS_NAMES = LOSS_NAMES

    def __init__(
        self,
        inputs,
        outputs,
        name=None,
        *,
        thing_classes=(),
        center_sigma=8.0,
        loss_weights=None,
        hard_pixel_fraction=0.2,
        max_instances=64,
        ignore_index=255,
        **kw,
    ):
        super().__init__(inputs, outputs, name=name, **kw)
        self.thing_classes = [int(c) for c in thing_classes]
        self.center_sigma = float(center_sigma)
        self.loss_weights = dict(LOSS_WEIGHTS, **(loss_weights or {}))
        self.hard_pixel_fraction = float(hard_pixel_fraction)
        self.max_instances = int(max_instances)
        self.ignore_index = int(ignore_index)

    def get_config(self):
        return {
            **super().get_config(),
            "thing_classes": list(self.thing_classes),
            "center_sigma": self.center_sigma,
            "loss_weights": dict(self.loss_weights),
            "hard_pixel_fraction": self.hard_pixel_fraction,
            "max_instances": self.max_instances,
            "ignore_index": self.ignore_index,
        }

    def _dense(self):
        dense = _DENSE.get(self)
        if dense is None:
            names = ("semantic_logits", "center", "offset")
            dense = keras.Model(self.inputs, [self.get_layer(n).output for n in names])
            _DENSE[self] = dense
        return dense

    @tf.autograph.experimental.do_not_convert
    def task_losses(self, images, targets, training=True):
        semantic = tf.cast(targets["semantic"], tf.int32)
        logits, center, offset = self._dense()(images, training=training)
        table = class_lookup(self.num_classes, self.thing_classes)
        instances = instance_targets(semantic, targets["instance_ids"], table, self.max_instances)
        heatmap, offsets = center_targets(
            instances["masks"], instances["classes"] >= 0, self.center_sigma
        )
        labelled = tf.cast(tf.not_equal(semantic, self.ignore_index), tf.float32)
        on_instance = tf.cast(tf.reduce_any(instances["masks"] > 0, axis=1), tf.float32)
        center_error = (tf.cast(center[..., 0], tf.float32) - heatmap) ** 2 * labelled
        offset_error = tf.reduce_sum(tf.abs(tf.cast(offset, tf.float32) - offsets), -1)
        w = self.loss_weights
        return {
            "semantic": w["semantic"]
            * common.pixel_cross_entropy(
                semantic, logits, self.ignore_index, self.hard_pixel_fraction
            ),
            "center": w["center"]
            * tf.reduce_sum(center_error)
            / tf.maximum(tf.reduce_sum(labelled), 1.0),
            "offset": w["offset"]
            * tf.reduce_sum(offset_error * on_instance)
            / tf.maximum(tf.reduce_sum(on_instance), 1.0),
        }


def _decoder(feats, aspp_input, filters, projections, name):
    """ASPP output -> stride 8 -> stride 4, each step fused with a projected backbone map."""
    x = aspp_input
    for stride, projection in zip((8, 4), projections):
        skip = conv_bn_act(feats[stride], projection, 1, name=f"{name}_project{stride}")
        x = ResizeLike("bilinear", name=f"{name}_up{stride}")(x, skip)
        x = layers.Concatenate(name=f"{name}_concat{stride}")([x, skip])
        x = separable_conv_bn_act(x, filters, 5, name=f"{name}_fuse{stride}")
    return x


def _head(x, inputs, filters, channels, name, activation=None):
    x = separable_conv_bn_act(x, filters, 5, name=f"{name}_conv")
    x = layers.Conv2D(channels, 1, name=f"{name}_1x1")(x)
    x = ResizeLike("bilinear", name=f"{name}_resize")(x, inputs)
    return layers.Activation(activation or "linear", dtype="float32", name=name)(x)


@register_model("panoptic_deeplab", task="panoptic")
def panoptic_deeplab(
    num_classes,
    *,
    thing_classes,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    freeze_backbone=False,
    output_stride=16,
    atrous_rates=None,
    aspp_filters=256,
    semantic_filters=256,
    instance_filters=128,
    semantic_projections=(64, 32),
    instance_projections=(32, 16),
    instance_head_filters=32,
    center_sigma=8.0,
    loss_weights=None,
    hard_pixel_fraction=0.2,
    max_instances=64,
    stuff_area=2048,
    center_threshold=0.1,
    nms_kernel=7,
    top_k=200,
    label_divisor=common.LABEL_DIVISOR,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """Panoptic-DeepLab; see the module docstring.

    thing_classes: the classes counted instance by instance; every other class is stuff.
    output_stride, atrous_rates: as deeplabv3's (16; rates 6, 12, 18 at 16).
    aspp_filters, semantic_filters, instance_filters, semantic_projections,
    instance_projections, instance_head_filters: the widths above (the paper's by default).
    center_sigma, loss_weights ({"semantic": 1, "center": 200, "offset": 0.01}),
    hard_pixel_fraction (0.2), max_instances (per training image): the training targets.
    stuff_area (2048 px), center_threshold (0.1), nms_kernel (7), top_k (200 centres): the
    grouping; label_divisor: panoptic id = class * label_divisor + instance.
    """
    arch = "panoptic_deeplab"
    things, stuff = common.check_classes(arch, num_classes, thing_classes)
    check_output_stride(arch, output_stride, valid=(8, 16, 32))
    input_shape = base.check_args(arch, num_classes, None, input_shape, output_stride)
    unknown = sorted(set(loss_weights or {}) - set(LOSS_WEIGHTS))
    if unknown:
        raise ValueError(f"{arch}: unknown loss_weights {unknown}; valid: {', '.join(LOSS_NAMES)}.")
    inputs = base.model_input(input_shape)
    encoder, feats = dilated_features(
        arch, backbone, input_shape, weights, freeze_backbone, output_stride, inputs
    )
    atrous_rates = atrous_rates_for(atrous_rates, output_stride)
    decoded = {}
    for branch, filters, projections in (
        ("semantic", semantic_filters, semantic_projections),
        ("instance", instance_filters, instance_projections),
    ):
        context = aspp(feats[32], aspp_filters, atrous_rates, dropout=0.0, name=f"{branch}_aspp")
        decoded[branch] = _decoder(feats, context, filters, projections, f"{branch}_decoder")
    logits = _head(decoded["semantic"], inputs, semantic_filters, num_classes, "semantic_logits")
    probabilities = layers.Activation("softmax", dtype="float32", name="semantic")(logits)
    center = _head(decoded["instance"], inputs, instance_head_filters, 1, "center")
    offset = _head(decoded["instance"], inputs, instance_head_filters, 2, "offset")
    panoptic, scores = CenterGrouping(
        things,
        stuff,
        stuff_area=stuff_area,
        center_threshold=center_threshold,
        nms_kernel=nms_kernel,
        top_k=top_k,
        label_divisor=label_divisor,
        name="panoptic",
    )(probabilities, center, offset)
    outputs = {
        "semantic": probabilities,
        "center": center,
        "offset": offset,
        "panoptic": panoptic,
        "instance_scores": scores,
    }
    model = PanopticDeepLab(
        inputs,
        outputs,
        name=name or f"{arch}_{backbone}",
        input_multiple=output_stride,
        num_classes=num_classes,
        task="panoptic",
        thing_classes=things,
        center_sigma=center_sigma,
        loss_weights=loss_weights,
        hard_pixel_fraction=hard_pixel_fraction,
        max_instances=max_instances,
    )
    return base.load_weights(model, encoder, weights, arch)
