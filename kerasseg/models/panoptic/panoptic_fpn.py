"""Panoptic FPN (Kirillov et al. 2019): Mask R-CNN and a semantic branch on one FPN.

    model = kerasseg.panoptic_fpn(133, thing_classes=range(80), backbone="resnet50")
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9))
    model.fit(kerasseg.data.prepare(panoptic_ds, batch_size=2, crop_size=512))
    model(images)["panoptic"]  # int32 [B, H, W]: class * 1000 + instance, -1 void

The instance branch is kerasseg's Mask R-CNN over the thing classes. The semantic branch is
semantic FPN's head (``kerasseg.necks.semantic_head``: 128 wide, group norm) on the same
pyramid, classifying 1 + S classes: 0 for every thing pixel, then the stuff classes in order.
Training sums Mask R-CNN's five losses and the semantic cross-entropy weighted 0.5 (the
paper's lambda_s), all from the batch's ``semantic`` and ``instance_ids`` maps. Inference
merges the two in the graph (``kerasseg.layers.PanopticMerge``): instances by score above
``instance_score_threshold`` (0.5), each dropped if more than ``overlap_threshold`` (0.5) of it
is already taken, then the stuff regions of at least ``stuff_area`` px (4096). Inputs: sides a
multiple of 32.
"""

import keras
import tensorflow as tf
from keras import layers

from kerasseg.layers import PanopticMerge, ResizeLike
from kerasseg.models import base
from kerasseg.models.instance.mask_rcnn import (
    ANCHOR_SIZES,
    ASPECT_RATIOS,
    LOSSES,
    MaskRCNN,
    check_options,
    detection_graph,
    detection_pyramid,
)
from kerasseg.models.panoptic import common
from kerasseg.models.registry import BN_MOMENTUM, register_model
from kerasseg.necks import NORMS, semantic_head
from kerasseg.ops.panoptic_targets import class_lookup, instance_targets, stuff_targets


@keras.saving.register_keras_serializable(package="kerasseg")
class PanopticFPN(MaskRCNN):
    """Mask R-CNN's training plus the semantic branch's loss, on panoptic batches
    ``(images, {"semantic", "instance_ids"})``."""

    LOSS_NAMES = LOSSES + ("semantic",)

    def __init__(
        self,
        inputs,
        outputs,
        name=None,
        *,
        thing_classes=(),
        semantic_loss_weight=0.5,
        max_instances=100,
        ignore_index=255,
        **kw,
    ):
        super().__init__(inputs, outputs, name=name, **kw)
        self.thing_classes = [int(c) for c in thing_classes]
        self.semantic_loss_weight = float(semantic_loss_weight)
        self.max_instances = int(max_instances)
        self.ignore_index = int(ignore_index)

    @property
    def detection_classes(self):
        return len(self.thing_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "thing_classes": list(self.thing_classes),
            "semantic_loss_weight": self.semantic_loss_weight,
            "max_instances": self.max_instances,
            "ignore_index": self.ignore_index,
        }

    def dense_names(self):
        return super().dense_names() + ["semantic_logits"]

    @tf.autograph.experimental.do_not_convert
    def task_losses(self, images, targets, training=True):
        semantic = targets["semantic"]
        outputs = self._dense()(images, training=training)
        things = class_lookup(self.num_classes, self.thing_classes)
        stuff = [c for c in range(self.num_classes) if c not in self.thing_classes]
        instances = instance_targets(semantic, targets["instance_ids"], things, self.max_instances)
        losses = self.detection_losses(images, instances, training, outputs[:-1])
        labels = stuff_targets(semantic, class_lookup(self.num_classes, stuff), self.ignore_index)
        losses["semantic"] = self.semantic_loss_weight * common.pixel_cross_entropy(
            labels, outputs[-1], self.ignore_index
        )
        return losses


@register_model("panoptic_fpn", task="panoptic")
def panoptic_fpn(
    num_classes,
    *,
    thing_classes,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    freeze_backbone=False,
    frozen_bn=None,
    fpn_filters=256,
    box_head_units=1024,
    mask_head_filters=256,
    semantic_filters=128,
    semantic_norm="group",
    groups=32,
    anchor_sizes=ANCHOR_SIZES,
    aspect_ratios=ASPECT_RATIOS,
    rpn_pre_nms_test=1000,
    rpn_post_nms_test=1000,
    score_threshold=0.05,
    nms_iou=0.5,
    max_detections=100,
    training_config=None,
    semantic_loss_weight=0.5,
    max_instances=100,
    instance_score_threshold=0.5,
    overlap_threshold=0.5,
    stuff_area=4096,
    label_divisor=common.LABEL_DIVISOR,
    seed=None,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """Panoptic FPN; see the module docstring.

    thing_classes: the classes counted instance by instance; every other class is stuff.
    The Mask R-CNN options (frozen_bn ... training_config, seed) are ``mask_rcnn``'s.
    semantic_filters, semantic_norm ("group" or "batch"), groups: the semantic branch (128,
    group norm of 32 groups). semantic_loss_weight: 0.5. max_instances: instances per training
    image given to Mask R-CNN (the largest). instance_score_threshold, overlap_threshold,
    stuff_area: the merge (0.5, 0.5, 4096 px); label_divisor: panoptic id = class *
    label_divisor + instance.
    """
    arch = "panoptic_fpn"
    things, stuff = common.check_classes(arch, num_classes, thing_classes)
    if semantic_norm not in NORMS:
        raise ValueError(f"{arch}: semantic_norm must be one of {NORMS}; got {semantic_norm!r}.")
    if semantic_norm == "group" and semantic_filters % groups:
        raise ValueError(
            f"{arch}: semantic_filters {semantic_filters} is not divisible by groups {groups}."
        )
    input_shape = base.check_args(arch, num_classes, None, input_shape, 32)
    check_options(arch, anchor_sizes, training_config)
    inputs = base.model_input(input_shape)
    encoder, pyramid = detection_pyramid(
        arch, inputs, backbone, input_shape, weights, freeze_backbone, frozen_bn, fpn_filters
    )
    outputs = detection_graph(
        inputs,
        pyramid,
        len(things),
        fpn_filters=fpn_filters,
        box_head_units=box_head_units,
        mask_head_filters=mask_head_filters,
        anchor_sizes=anchor_sizes,
        aspect_ratios=aspect_ratios,
        rpn_pre_nms_test=rpn_pre_nms_test,
        rpn_post_nms_test=rpn_post_nms_test,
        score_threshold=score_threshold,
        nms_iou=nms_iou,
        max_detections=max_detections,
    )
    x = semantic_head(pyramid, semantic_filters, semantic_norm, groups, name="panoptic_seg")
    x = layers.Conv2D(1 + len(stuff), 1, name="semantic_classifier")(x)
    logits = ResizeLike("bilinear", name="semantic_logits")(x, inputs)
    outputs["semantic"] = layers.Activation("softmax", dtype="float32", name="semantic")(logits)
    outputs["panoptic"], outputs["instance_scores"] = PanopticMerge(
        things,
        stuff,
        stuff_area=stuff_area,
        overlap_threshold=overlap_threshold,
        score_threshold=instance_score_threshold,
        label_divisor=label_divisor,
        name="panoptic",
    )(
        outputs["boxes"],
        outputs["scores"],
        outputs["classes"],
        outputs["num_detections"],
        outputs["masks"],
        outputs["semantic"],
    )
    model = PanopticFPN(
        inputs,
        outputs,
        name=name or f"{arch}_{backbone}",
        input_multiple=32,
        num_classes=num_classes,
        task="panoptic",
        training_config=training_config,
        seed=seed,
        thing_classes=things,
        semantic_loss_weight=semantic_loss_weight,
        max_instances=max_instances,
    )
    return base.load_weights(model, encoder, weights, arch)
