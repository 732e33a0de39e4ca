"""Weak supervision with the Python API on the synthetic `shapes` set: scribbles, boxes and
image-level labels instead of full masks.

1. Scribbles simulated from the masks (skeleton strokes, 255 = unlabelled), spread by the random
   walker (``weak.propagate(..., "random_walker")``; ``"felzenszwalb"`` / ``"slic"``:
   ScribbleSup's superpixels), trained with partial cross-entropy plus the Gated CRF loss; the
   image travels in y_true (``weak.pack_image``), so plain ``model.fit`` works.
2. Boxes turned into pseudo-masks by GrabCut (``weak.grabcut``).
3. Image-level tags: a CAM classifier (batch norm, global max pooling, flipped images),
   multi-scale + flip CAMs, then CAM + saliency pseudo-masks (``weak.saliency``).

The set is the benchmark's (benchmarks/weak_supervision.py): two shapes per 64 px image, so that
an image's tags name one or two classes rather than nearly always all three.

    python examples/weak_supervision.py [--steps 300] [--num-images 200]

Real weak labels load with ``weak.read_scribble_xml`` / ``read_scribble_png`` (ScribbleSup),
``weak.read_points_json`` (Bearman et al.), ``weak.read_voc_boxes`` / ``read_coco_boxes``.
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import kerasseg
from kerasseg import data, datasets, losses, metrics, weak

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--steps", type=int, default=300, help="training steps (segmentation and CAM)")
p.add_argument("--num-images", type=int, default=200, help="training images")
args = p.parse_args()
keras.utils.set_random_seed(0)
num_classes = datasets.info("shapes").num_classes
SET = {"max_shapes": 2, "max_size": 64}
images, masks = datasets.shapes.generate("train", seed=0, num_images=args.num_images, **SET)
val = data.prepare(datasets.load("shapes", split="val", num_images=50, **SET), batch_size=10,
                   crop_size=64, training=False)  # fmt: skip

# 1. Scribbles -> random walker -> partial CE + Gated CRF loss.
scribbles = weak.simulate(masks, "scribbles", seed=0)
dense = [weak.propagate(im, s, "random_walker") for im, s in zip(images, scribbles)]
labelled = np.mean([np.mean(d != 255) for d in dense])
print(f"scribbles label {np.mean([np.mean(s != 255) for s in scribbles]):.1%} of the pixels, "
      f"{labelled:.1%} after the random walk")  # fmt: skip


def as_dataset(imgs, labels):
    ds = tf.data.Dataset.from_generator(
        lambda: zip(imgs, labels),
        output_signature=(tf.TensorSpec((None, None, 3), tf.uint8),
                          tf.TensorSpec((None, None), tf.int32)),
    )  # fmt: skip
    return data.prepare(ds, batch_size=8, crop_size=64, training=True, seed=0, repeat=True,
                        scale_range=None, photometric=False)  # fmt: skip


model = kerasseg.unet(num_classes, backbone=None, weights=None, filters=8)
model.compile(
    optimizer=keras.optimizers.Adam(1e-2),
    loss=losses.PartialCrossEntropy() + 0.1 * losses.GatedCRFLoss(),
    metrics=[weak.PackedMeanIoU(num_classes)],
)
model.fit(weak.pack_image(as_dataset(images, dense)), steps_per_epoch=args.steps, epochs=1,
          validation_data=weak.pack_image(val), verbose=2)  # fmt: skip

# Post-processing: the mean-field CRF on the model's probabilities.
x, y = next(iter(val))
probs = model.predict(x, verbose=0)
refined = weak.crf(x, probs)
for name, p_ in (("model", probs), ("model + CRF", refined)):
    iou = metrics.MeanIoU(num_classes)
    iou.update_state(y, p_)
    print(f"scribbles: val mIoU ({name}) {float(iou.result()):.3f}")

# 2. Boxes -> GrabCut pseudo-masks (255 where a box's pixel is not the object).
correct = total = 0
for im, m in zip(images[:50], masks[:50]):
    boxes, classes = weak.simulate(m, "boxes")
    pseudo = weak.grabcut(im, boxes, classes)
    known = pseudo != 255
    correct, total = correct + (pseudo[known] == m[known]).sum(), total + known.sum()
print(f"boxes: GrabCut pseudo-masks are {correct / total:.1%} correct where labelled")

# 3. Image-level tags -> CAM classifier -> CAM + saliency pseudo-masks.
tags = weak.simulate(masks, "image", num_classes=num_classes)
tagged = tf.data.Dataset.from_generator(
    lambda: zip(images, tags),
    output_signature=(tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((4,), tf.int32)),
)
batches = data.prepare(tagged, batch_size=8, crop_size=64, training=False, shuffle=True,
                       repeat=True, seed=0)  # fmt: skip
net = weak.cam.classifier(num_classes - 1, pooling="max", batch_norm=True)  # foreground only
foreground = batches.map(
    lambda i, t: (tf.image.random_flip_left_right(i), tf.cast(t[:, 1:], tf.float32))
)
weak.cam.fit_classifier(net, foreground, args.steps)
cam_iou, pseudo_iou = metrics.MeanIoU(num_classes), metrics.MeanIoU(num_classes)
for im, m, t in zip(images[:50], masks[:50], tags[:50]):
    maps = weak.cam.cams(net, im, tags=t[1:])
    cam_iou.update_state(m[None], tf.one_hot(weak.cam.cam_labels(maps)[None], num_classes))
    pseudo = weak.saliency.region_pseudo_masks(im, maps.numpy(), t[1:])  # 255: unsure
    scored = np.where(pseudo == 255, 255, m)  # the pixels the pseudo-mask labels
    pseudo_iou.update_state(scored[None], tf.one_hot(pseudo[None], num_classes))
print(f"image labels: CAM mIoU {float(cam_iou.result()):.3f}, pseudo-mask mIoU "
      f"{float(pseudo_iou.result()):.3f} where labelled (50 training images)")  # fmt: skip
