"""The serving function of an instance model (task "instance", e.g. ``kerasseg.mask_rcnn``).

One image in, its detections out, in the image's own pixels, as ``kerasseg.inference.predict``
(``kerasseg.models.instance.detect.detect``) decodes them:

    images          uint8   [1, H, W, 3]   any H, W (fixed in TFLite / at an ``input_size``)
    boxes           float32 [1, M, 4]      y1, x1, y2, x2 in pixels, clipped to the image
    classes         int32   [1, M]         0..K-1 (the model's ``class_names``)
    scores          float32 [1, M]         descending
    masks           uint8   [1, M, H, W]   0 / 1, full resolution
    num_detections  int32   [1]            M

The batch axis is always 1 (one image per call, as TF's object detection exports), kept so
the outputs have the same rank as the model's own. ``M`` is dynamic: the rows are the model's
valid detections (``num_detections`` of them), those scoring at least ``score_threshold``
(default 0: all the model returns, which already applied its own ``score_threshold``) whose
clipped box is not empty; no padding rows. Inside the graph the image is padded at the bottom
and right with zeros (black, as ``detect`` and the training crops pad) up to the model's
``input_multiple``, run through the model, and each 28 x 28 box-frame mask is pasted at the
original size with ``kerasseg.ops.masks.paste_masks_tf`` (the unclipped box's frame, on where
the probability is ``>= mask_threshold``), so the masks agree with ``detect``'s up to float
rounding at pixels whose value is within ~1e-6 of the threshold. Pasting holds ``M * H * W``
floats at once (400 MB for 100 detections on a 1024 x 1024 image).

TFLite and ONNX (``portable=True``) run the same graph except for its last NMS: the model's
``Detections`` layer calls ``tf.image.combined_non_max_suppression`` (CombinedNonMaxSuppression:
no TFLite builtin, so only ``SELECT_TF_OPS`` / the Flex delegate would run it, and tf2onnx
converts it only for boxes shared by all classes, while Mask R-CNN's are class-specific). The
portable graph instead calls the model's own layers up to the box head, decodes the boxes as
``kerasseg.layers.detection.detect_boxes`` does, and runs one ``NonMaxSuppressionV4`` over all
classes with each class's boxes shifted to their own region of the plane (torchvision's
``batched_nms``): the same per-class greedy NMS, the same top ``max_detections``, with builtin
TFLite and standard ONNX (``NonMaxSuppression``) operators. Its mask selection is a one-hot
sum (``MaskSelect``'s gather with ``batch_dims=2`` becomes an invalid Transpose in tf2onnx) and
its pasting ``paste_masks_portable``: ``paste_masks_tf``'s very numbers, with no negative
one-hot index (ONNX's OneHot wraps -1 round to the last cell, TensorFlow's gives zeros).
"""

import keras
import tensorflow as tf

from kerasseg import inference
from kerasseg.models.segmenter import describe
from kerasseg.ops import boxes as B
from kerasseg.ops.masks import paste_masks_tf

__all__ = [
    "OUTPUT_KEYS",
    "fix_onnx_loop_shapes",
    "instance_serving_function",
    "is_instance_model",
    "paste_masks_portable",
    "portable_forward",
    "unfuse_padded_nms",
]

OUTPUT_KEYS = ("boxes", "classes", "scores", "masks", "num_detections")
# The layers the portable graph reuses (kerasseg.mask_rcnn's names).
_PORTABLE_LAYERS = ("detections", "mask_roi_align", "mask_head")


def is_instance_model(model):
    return describe(model)["task"] == "instance"


def _node_args(model, name):
    layer = model.get_layer(name)
    if len(layer._inbound_nodes) != 1:
        raise ValueError(f"layer {name!r} is called more than once in the model")
    return layer, list(layer._inbound_nodes[0].arguments.args)


def _batched_nms(boxes, scores, classes, size, layer):
    """Per-class greedy NMS in one NonMaxSuppressionV4 call: each class's boxes shifted by
    ``class * (longest side + 1)`` so that boxes of different classes never overlap."""
    offset = (tf.cast(tf.reduce_max(size), tf.float32) + 1.0) * tf.cast(classes, tf.float32)
    selected, count = tf.raw_ops.NonMaxSuppressionV4(
        boxes=boxes + offset[:, None],
        scores=scores,
        max_output_size=layer.max_detections,
        iou_threshold=layer.iou,
        score_threshold=layer.score_threshold,
        pad_to_max_output_size=True,
    )
    valid = tf.range(layer.max_detections) < count
    return selected, valid, count


def portable_forward(model):
    """``images float32 [1, H, W, 3] -> the model's output dict`` without
    CombinedNonMaxSuppression (module docstring), for a ``kerasseg.mask_rcnn`` model."""
    try:
        detections, (_, proposals, logits, deltas) = _node_args(model, "detections")
        mask_align, (_, *roi_maps) = _node_args(model, "mask_roi_align")
        mask_head = model.get_layer("mask_head")
    except ValueError as error:
        raise ValueError(
            "TFLite and ONNX export of an instance model rebuild its last NMS without "
            "CombinedNonMaxSuppression (which TFLite has no builtin for and tf2onnx cannot "
            "convert for class-specific boxes), so they need kerasseg.mask_rcnn's layers "
            f"{', '.join(_PORTABLE_LAYERS)}: {error}. Export a SavedModel instead."
        ) from error
    front = keras.Model(model.inputs, [proposals, logits, deltas, *roi_maps])

    def forward(images):
        proposals, logits, deltas, *maps = front(images, training=False)
        size = tf.shape(images)[1:3]
        num = logits.shape[-1]  # K + 1, background first
        logits = tf.reshape(tf.cast(logits, tf.float32), [-1, num])
        deltas = tf.reshape(tf.cast(deltas, tf.float32), [-1, num, 4])[:, 1:]
        refs = tf.broadcast_to(tf.reshape(proposals, [-1, 1, 4]), tf.shape(deltas))
        boxes = B.clip_boxes(B.decode_boxes(deltas, refs, B.BOX_WEIGHTS), size[0], size[1])
        scores = tf.nn.softmax(logits, axis=-1)[:, 1:]
        sides = tf.minimum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
        scores = tf.reshape(tf.where(sides >= 1e-2, scores, 0.0), [-1])
        boxes = tf.reshape(boxes, [-1, 4])
        classes = tf.tile(tf.range(num - 1, dtype=tf.int32), tf.shape(logits)[:1])
        selected, valid, count = _batched_nms(boxes, scores, classes, size, detections)
        boxes = tf.where(valid[:, None], tf.gather(boxes, selected), 0.0)[None]
        classes = tf.where(valid, tf.gather(classes, selected), 0)[None]
        mask_logits = tf.cast(mask_head(mask_align(boxes, *maps), training=False), tf.float32)
        # MaskSelect's pick of each detection's own class (channel class + 1) as a one-hot
        # sum: its gather with batch_dims=2 becomes an invalid Transpose in tf2onnx.
        picked = mask_logits * tf.one_hot(classes[0] + 1, num)[:, None, None, :]
        masks = tf.sigmoid(tf.reduce_sum(picked, axis=-1))[None]
        return {
            "boxes": boxes,
            "scores": tf.where(valid, tf.gather(scores, selected), 0.0)[None],
            "classes": classes,
            "masks": masks,
            "num_detections": tf.reshape(count, [1]),
        }

    return forward


def _portable_weights(size, start, stop, cells):
    """``kerasseg.ops.masks._weights_tf`` with one-hot indices never negative: ONNX's OneHot
    wraps index -1 round to the last cell where TensorFlow's gives zeros (the mask's zero
    border), so the cells are numbered from the border, -1 -> 0, and the border dropped."""
    centres = tf.cast(tf.range(size), tf.float32)[None, :] + 0.5
    start, stop = start[:, None], stop[:, None]
    span = tf.maximum(stop - start, 1e-6)
    position = (centres - start) / span * float(cells) - 0.5
    inside = tf.logical_and(centres >= start, centres < stop)
    # Outside the box the weights are zeroed anyway; keep the indices in range there too.
    position = tf.clip_by_value(position, -1.0, float(cells))
    low = tf.floor(position)
    frac = position - low
    low = tf.cast(low, tf.int32) + 1  # 0 .. cells + 1, 0 and cells + 1 the zero border
    weights = tf.one_hot(low, cells + 2) * (1.0 - frac)[..., None]
    weights += tf.one_hot(low + 1, cells + 2) * frac[..., None]
    return weights[..., 1:-1] * tf.cast(inside, tf.float32)[..., None]


def paste_masks_portable(masks, boxes, height, width, threshold=0.5):
    """``kerasseg.ops.masks.paste_masks_tf`` with the same numbers in ONNX (see
    ``_portable_weights``); static mask sizes only."""
    masks = tf.convert_to_tensor(masks, tf.float32)
    wy = _portable_weights(height, boxes[:, 0], boxes[:, 2], int(masks.shape[1]))
    wx = _portable_weights(width, boxes[:, 1], boxes[:, 3], int(masks.shape[2]))
    return tf.matmul(tf.matmul(wy, masks), wx, transpose_b=True) >= threshold


def _check_size(model, multiple, input_size):
    """The model must take the padded size: refuse a fixed-size model it cannot be fed."""
    static = inference.model_static_size(model)
    if static is None:
        return
    padded = None
    if input_size is not None:
        padded = tuple(-(-int(side) // multiple) * multiple for side in input_size)
    if padded != tuple(static):
        raise ValueError(
            f"This instance model was built for {static[0]}x{static[1]} inputs only, so it "
            "cannot serve images of any size; export it with input_size equal to that size "
            "(TFLite, ONNX) or rebuild it with input_shape=(None, None, 3)."
        )


def _pad(images, multiple):
    """Zeros at the bottom and right up to the next multiple of ``multiple`` (tf ops)."""
    shape = tf.shape(images)
    pad_h = (multiple - shape[1] % multiple) % multiple
    pad_w = (multiple - shape[2] % multiple) % multiple
    return tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])


def _decode(outputs, height, width, score_threshold, mask_threshold, paste):
    """The first image's detections, ``detect``'s rules, in TensorFlow ops."""
    count = outputs["num_detections"][0]
    boxes = tf.cast(outputs["boxes"][0, :count], tf.float32)
    scores = tf.cast(outputs["scores"][0, :count], tf.float32)
    classes = tf.cast(outputs["classes"][0, :count], tf.int32)
    masks = tf.cast(outputs["masks"][0, :count], tf.float32)
    size = tf.cast(tf.stack([height, width, height, width]), tf.float32)
    clipped = tf.clip_by_value(boxes, 0.0, size)
    nonempty = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    keep = tf.reshape(tf.where((scores >= score_threshold) & nonempty), [-1])
    keep = tf.gather(keep, tf.argsort(-tf.gather(scores, keep), stable=True))
    pasted = paste(tf.gather(masks, keep), tf.gather(boxes, keep), height, width, mask_threshold)
    return {
        "boxes": tf.gather(clipped, keep)[None],
        "classes": tf.gather(classes, keep)[None],
        "scores": tf.gather(scores, keep)[None],
        "masks": tf.cast(pasted, tf.uint8)[None],
        "num_detections": tf.reshape(tf.size(keep, out_type=tf.int32), [1]),
    }


def instance_serving_function(
    model,
    *,
    multiple=None,
    input_size=None,
    portable=False,
    score_threshold=0.0,
    mask_threshold=0.5,
):
    """A tf.function uint8 ``images`` [1, H, W, 3] -> the detections (module docstring).

    ``input_size`` fixes (H, W) in the signature (TFLite needs it); otherwise any size is taken.
    ``portable``: the graph without CombinedNonMaxSuppression (TFLite, ONNX).
    """
    multiple = inference.model_multiple(model, multiple)
    _check_size(model, multiple, input_size)
    channels = inference.model_channels(model)
    height, width = input_size if input_size is not None else (None, None)
    spec = tf.TensorSpec([1, height, width, channels], tf.uint8, name="images")
    score_threshold, mask_threshold = float(score_threshold), float(mask_threshold)
    if portable:
        run = portable_forward(model)
    else:

        def run(images):
            return model(images, training=False)

    def serve(images):
        x = tf.cast(images, tf.float32)
        outputs = run(_pad(x, multiple))
        shape = tf.shape(x)
        paste = paste_masks_portable if portable else paste_masks_tf
        return _decode(outputs, shape[1], shape[2], score_threshold, mask_threshold, paste)

    return tf.function(serve, input_signature=[spec])


def unfuse_padded_nms(saved_model_dir):
    """Untag a SavedModel's padded-NMS functions (``_implements``), before TFLite conversion.

    ``tf.image.non_max_suppression_padded`` (the RPN's NMS, image by image in a ``tf.map_fn``)
    is a function tagged ``non_max_suppression_padded_v2``, which the TFLite converter fuses
    into NON_MAX_SUPPRESSION_V4 with a wrong output rank ([1, N] for the kernel's [N]); inside
    the map's WHILE the result then fails at run time ("concatenation.cc ... (1 != 2)").
    Untagged, the function converts op by op, to builtins only.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    path = f"{saved_model_dir}/saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    for graph in proto.meta_graphs:
        for function in graph.graph_def.library.function:
            tag = function.attr["_implements"].s if "_implements" in function.attr else b""
            if b"non_max_suppression_padded" in tag:
                del function.attr["_implements"]
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())


def fix_onnx_loop_shapes(graph):
    """Give every ONNX Loop body's iteration number and condition their scalar shape.

    tf2onnx leaves the shape of the outer ``tf.map_fn`` loop's counter unset, and onnxruntime
    then refuses to run the Loop ("subgraph input 0 has unknown shape").
    """
    import onnx

    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type != onnx.AttributeProto.GRAPH:
                continue
            if node.op_type == "Loop":
                for value in attribute.g.input[:2]:
                    if not value.type.tensor_type.HasField("shape"):
                        value.type.tensor_type.shape.SetInParent()  # rank 0
            fix_onnx_loop_shapes(attribute.g)
    return graph
