"""Mask R-CNN (He et al. 2017) with an FPN (Lin et al. 2017), torchvision's recipe.

    model = kerasseg.mask_rcnn(num_classes=80, backbone="resnet50")
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9))
    model.fit(kerasseg.data.prepare(ds, batch_size=2, crop_size=512, max_instances=100))
    out = model(images)  # boxes, scores, classes, masks (28 x 28, box frame), num_detections

The inference graph is a plain functional model: backbone -> FPN P2-P6 (256 wide) -> RPN ->
proposals (``kerasseg.layers.Proposals``) -> ROIAlign 7x7 -> box head -> per-class NMS ->
ROIAlign 14x14 on the detections -> mask head -> the detections' own-class masks. Training
lives in ``train_step``: anchor matching and sampling, proposals at training sizes, ROI
sampling and the five losses (``kerasseg.models.instance.targets``), so ``compile`` needs only
an optimizer.
"""

import weakref

import keras
import tensorflow as tf
from keras import layers

from kerasseg.layers import (
    Detections,
    MaskSelect,
    MultiLevelRoiAlign,
    Proposals,
    align_boxes,
    level_anchors,
    propose,
)
from kerasseg.models import base
from kerasseg.models.instance import heads
from kerasseg.models.instance import targets as T
from kerasseg.models.own_losses import OwnLossSegmenter
from kerasseg.models.registry import BN_MOMENTUM, register_model
from kerasseg.necks import coarser_level, feature_pyramid
from kerasseg.ops.resize import in_xla_context

STRIDES = (4, 8, 16, 32, 64)  # P2..P6; ROIs read P2..P5
ANCHOR_SIZES = (32, 64, 128, 256, 512)
ASPECT_RATIOS = (0.5, 1.0, 2.0)

# Training recipe (torchvision's defaults); each is a builder option of the same name.
TRAINING = {
    "rpn_positive_iou": 0.7,
    "rpn_negative_iou": 0.3,
    "rpn_samples": 256,
    "rpn_positive_fraction": 0.5,
    "rpn_pre_nms_train": 2000,
    "rpn_post_nms_train": 2000,
    "rpn_nms_iou": 0.7,
    "roi_fg_iou": 0.5,
    "roi_samples": 512,
    "roi_positive_fraction": 0.25,
}
LOSSES = ("rpn_objectness", "rpn_box", "classification", "box", "mask")

# The graph pieces training reads, per model (not tracked as layers, so never saved twice).
_DENSE = weakref.WeakKeyDictionary()


@keras.saving.register_keras_serializable(package="kerasseg")
class MaskRCNN(OwnLossSegmenter):
    """A ``Segmenter`` of task "instance" whose ``train_step`` trains all of Mask R-CNN.

    ``fit`` takes ``(images float32 [B, H, W, 3], {"boxes" [B, M, 4], "classes" [B, M] (-1
    pads), "masks" [B, M, H, W]})`` batches, as ``kerasseg.data.prepare`` makes them, and
    reports the five losses and their sum.
    """

    LOSS_NAMES = LOSSES

    def __init__(self, inputs, outputs, name=None, *, training_config=None, **kw):
        super().__init__(inputs, outputs, name=name, **kw)
        self.training_config = dict(TRAINING, **(training_config or {}))

    @property
    def detection_classes(self):
        """The classes the box and mask heads tell apart (background not counted)."""
        return self.num_classes

    def get_config(self):
        config = super().get_config()
        config.update(training_config=dict(self.training_config))
        return config

    def dense_names(self):
        """The layers whose outputs training reads from one forward pass."""
        names = [f"fpn_smooth{s}" for s in STRIDES[:-1]]
        return names + ["fpn_p6", "rpn_scores", "rpn_deltas"]

    def _dense(self):
        dense = _DENSE.get(self)
        if dense is None:
            outputs = [self.get_layer(n).output for n in self.dense_names()]
            dense = keras.Model(self.inputs, outputs)
            _DENSE[self] = dense
        return dense

    def task_losses(self, images, targets, training=True):
        return self.detection_losses(images, targets, training)

    # No autograph: the loops here run over Python lists (levels), never over tensors, and
    # converting this code and all it calls made tracing a training step 3x slower.
    @tf.autograph.experimental.do_not_convert
    def detection_losses(self, images, targets, training=True, dense_outputs=None):
        """The five losses (scalars) on one batch (``dense_outputs``: the outputs of the
        ``dense_names`` layers when the caller already ran them)."""
        cfg = self.training_config
        proposal_layer = self.get_layer("proposals")
        if dense_outputs is None:
            dense_outputs = self._dense()(images, training=training)
        *level_maps, scores, deltas = dense_outputs[: len(STRIDES) + 2]
        level_maps = [tf.cast(m, tf.float32) for m in level_maps]
        scores, deltas = tf.cast(scores, tf.float32), tf.cast(deltas, tf.float32)
        gt_boxes = tf.cast(targets["boxes"], tf.float32)
        gt_classes = tf.cast(targets["classes"], tf.int32)
        gt_valid = gt_classes >= 0
        tf.debugging.assert_less(
            gt_classes,
            self.detection_classes,
            message=f"mask_rcnn: a ground-truth class is >= num_classes "
            f"({self.detection_classes}); classes must be 0..num_classes-1 (-1 pads)",
        )
        seed = tf.cast(self._seeds.next(), tf.int32)

        anchors = level_anchors(level_maps, STRIDES, proposal_layer.sizes, proposal_layer.ratios)
        rpn_cls, rpn_box = T.rpn_losses(scores, deltas, anchors, gt_boxes, gt_valid, seed, cfg)
        counts = [tf.shape(m)[1] * tf.shape(m)[2] * len(proposal_layer.ratios) for m in level_maps]
        size = tf.shape(images)[1], tf.shape(images)[2]
        proposals, proposal_valid = propose(
            tf.stop_gradient(scores),
            tf.stop_gradient(deltas),
            anchors,
            counts,
            size,
            cfg["rpn_pre_nms_train"],
            cfg["rpn_post_nms_train"],
            cfg["rpn_nms_iou"],
        )
        rois = T.sample_rois(
            proposals, proposal_valid, gt_boxes, gt_classes, gt_valid, seed + 1, cfg
        )
        roi_maps = level_maps[:-1]
        box_in = T.roi_features(roi_maps, rois["boxes"], 7, STRIDES[:-1])
        logits, box_deltas = self.get_layer("box_head")(box_in, training=training)
        cls_loss, box_loss = T.box_losses(
            rois,
            tf.cast(logits, tf.float32),
            tf.cast(box_deltas, tf.float32),
            gt_boxes,
            self.detection_classes,
        )
        num_positive = int(cfg["roi_samples"] * cfg["roi_positive_fraction"])
        positives = T.positive_rois(rois, num_positive, dynamic=not in_xla_context())
        mask_in = align_boxes(roi_maps, positives["boxes"], positives["images"], 14, STRIDES[:-1])
        mask_logits = self.get_layer("mask_head")(mask_in, training=training)
        mask = T.mask_loss(tf.cast(mask_logits, tf.float32), positives, targets["masks"])
        return dict(zip(LOSSES, (rpn_cls, rpn_box, cls_loss, box_loss, mask)))


def _freeze_batch_norms(model):
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        elif isinstance(layer, keras.Model):
            _freeze_batch_norms(layer)


def check_options(arch, anchor_sizes, training_config):
    if len(anchor_sizes) != len(STRIDES):
        raise ValueError(
            f"{arch}: anchor_sizes needs {len(STRIDES)} sizes (P2-P6); got {list(anchor_sizes)}."
        )
    unknown = sorted(set(training_config or {}) - set(TRAINING))
    if unknown:
        raise ValueError(
            f"{arch}: unknown training_config keys {unknown}; valid: {', '.join(TRAINING)}."
        )


def detection_pyramid(
    arch, inputs, backbone, input_shape, weights, freeze_backbone, frozen_bn, fpn_filters
):
    """The encoder and its FPN: (encoder, {stride: P2..P5 map})."""
    encoder = base.encoder(arch, backbone, input_shape, weights, freeze_backbone)
    if frozen_bn is None:
        frozen_bn = weights is not None
    if frozen_bn:
        _freeze_batch_norms(encoder)
    feats = base.features_by_stride(encoder, inputs)
    return encoder, feature_pyramid(feats, fpn_filters)


def detection_graph(
    inputs,
    pyramid,
    num_classes,
    *,
    fpn_filters,
    box_head_units,
    mask_head_filters,
    anchor_sizes,
    aspect_ratios,
    rpn_pre_nms_test,
    rpn_post_nms_test,
    score_threshold,
    nms_iou,
    max_detections,
):
    """RPN, proposals, box head, detections and mask head on the pyramid: the instance
    outputs (boxes, scores, classes, masks, num_detections)."""
    level_maps = [pyramid[s] for s in STRIDES[:-1]] + [coarser_level(pyramid[32])]
    rpn = heads.rpn_head(fpn_filters, len(aspect_ratios))
    scores, deltas = [], []
    for stride, level_map in zip(STRIDES, level_maps):
        s, d = rpn(level_map)
        scores.append(layers.Reshape((-1,), name=f"rpn_scores{stride}")(s))
        deltas.append(layers.Reshape((-1, 4), name=f"rpn_deltas{stride}")(d))
    scores = layers.Concatenate(axis=1, name="rpn_scores")(scores)
    deltas = layers.Concatenate(axis=1, name="rpn_deltas")(deltas)
    proposals = Proposals(
        STRIDES, anchor_sizes, aspect_ratios, rpn_pre_nms_test, rpn_post_nms_test, name="proposals"
    )(inputs, scores, deltas, *level_maps)

    roi_maps, roi_strides = level_maps[:-1], STRIDES[:-1]
    box_in = MultiLevelRoiAlign(7, roi_strides, name="box_roi_align")(proposals, *roi_maps)
    logits, box_deltas = heads.box_head(fpn_filters, 7, box_head_units, num_classes)(box_in)
    detections = Detections(score_threshold, nms_iou, max_detections, name="detections")(
        inputs, proposals, logits, box_deltas
    )
    mask_in = MultiLevelRoiAlign(14, roi_strides, name="mask_roi_align")(
        detections["boxes"], *roi_maps
    )
    mask_logits = heads.mask_head(fpn_filters, 14, mask_head_filters, num_classes)(mask_in)
    masks = MaskSelect(name="masks", dtype="float32")(mask_logits, detections["classes"])
    return {
        "boxes": detections["boxes"],
        "scores": detections["scores"],
        "classes": detections["classes"],
        "masks": masks,
        "num_detections": detections["num_detections"],
    }


@register_model("mask_rcnn", task="instance")
def mask_rcnn(
    num_classes,
    *,
    backbone="resnet50",
    weights="imagenet",
    input_shape=(None, None, 3),
    freeze_backbone=False,
    frozen_bn=None,
    fpn_filters=256,
    box_head_units=1024,
    mask_head_filters=256,
    anchor_sizes=ANCHOR_SIZES,
    aspect_ratios=ASPECT_RATIOS,
    rpn_pre_nms_test=1000,
    rpn_post_nms_test=1000,
    score_threshold=0.05,
    nms_iou=0.5,
    max_detections=100,
    training_config=None,
    seed=None,
    class_names=None,
    palette=None,
    bn_momentum=BN_MOMENTUM,
    name=None,
):
    """Mask R-CNN with an FPN on a registry backbone (task "instance").

    num_classes: object classes K, background not counted; the heads add background as class
    0 internally (box logits K + 1, class-specific deltas and mask channels K + 1, background's
    unused, as torchvision's), and every output class is 0..K-1, matching ``class_names``.
    frozen_bn: the backbone's batch norms in inference mode and not trained (the detection
    setting; default: on with pretrained ``weights``, off from scratch, where frozen initial
    statistics would be meaningless).
    fpn_filters, box_head_units, mask_head_filters: 256, 1024, 256 as in the paper (smaller for
    quick CPU runs). anchor_sizes: one per level P2-P6 (32-512), each with ``aspect_ratios``.
    rpn_pre_nms_test / rpn_post_nms_test: proposals kept per level before NMS and per image
    after it at inference (1000, 1000); ``score_threshold``, ``nms_iou`` (per class) and
    ``max_detections`` shape the final detections. training_config: overrides of
    ``TRAINING`` (sample counts, IoU thresholds, training proposal counts).

    Size: ``mask_rcnn(90, backbone="resnet50", weights=None)`` has 44,507,633 parameters,
    torchvision's ``maskrcnn_resnet50_fpn`` (91 classes with background) 44,401,393 (+0.24%).
    The whole difference is the backbone's batch norms: keras.applications counts their gamma,
    beta, moving mean and variance as parameters (4 x 26,560 = 106,240), torchvision's frozen
    batch norms hold all four as buffers. Convolutions (23,454,912: keras.applications' conv
    biases are folded into the norms that follow them), FPN (3,344,384), RPN (593,935), box
    head (14,362,055) and mask head (2,646,107) are identical in size.
    """
    arch = "mask_rcnn"
    input_shape = base.check_args(arch, num_classes, None, input_shape, 32)
    check_options(arch, anchor_sizes, training_config)
    inputs = base.model_input(input_shape)
    encoder, pyramid = detection_pyramid(
        arch, inputs, backbone, input_shape, weights, freeze_backbone, frozen_bn, fpn_filters
    )
    outputs = detection_graph(
        inputs,
        pyramid,
        num_classes,
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
    model = MaskRCNN(
        inputs,
        outputs,
        name=name or f"{arch}_{backbone}",
        input_multiple=32,
        num_classes=num_classes,
        task="instance",
        training_config=training_config,
        seed=seed,
    )
    return base.load_weights(model, encoder, weights, arch)
