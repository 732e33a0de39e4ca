"""Train a small Mask R-CNN on the synthetic `shapes_instances` set with the Python API.

This is `kerasseg demo --task instance` spelled out: build the model, batch the instance data,
compile with an optimizer only (Mask R-CNN carries its own losses and target assignment), let
`kerasseg.training.fit` write the checkpoints and history while `training.InstanceScores` (a
`metrics.COCOEvaluation`) scores the validation split, then draw a few detections: validation
mask AP50 about 0.83 after some seven minutes on a two-core CPU with oneDNN (the console script
turns it on; TF_ENABLE_ONEDNN_OPTS=1 does here).

    python examples/train_instances.py [output_folder]     (default runs/shapes_instances)
"""

import os
import sys

import keras
import numpy as np

import kerasseg
from kerasseg import data, datasets, inference, training, visualize

output = sys.argv[1] if len(sys.argv) > 1 else os.path.join("runs", "shapes_instances")
info = datasets.info("shapes_instances")  # 3 classes: circle, square, triangle
keras.utils.set_random_seed(0)

# Training batches: 64 px images with flips, up to 8 objects each (boxes, classes, masks; the
# free slots are padding with class -1). Validation: the raw examples, which COCOeval scores.
train_ds = data.prepare(
    datasets.load("shapes_instances", split="train", num_images=2000),
    batch_size=4,
    crop_size=64,
    training=True,
    seed=0,
    scale_range=None,
    photometric=False,
    repeat=True,
    drop_remainder=True,
    max_instances=8,
)
val_examples = datasets.load("shapes_instances", split="val")

# Mask R-CNN on a MobileNetV2 trained from scratch, with heads and sample counts cut down for
# 64 px images of a few objects (the paper's are 256 / 1024 / 256 wide, 2000 proposals, ...).
model = kerasseg.mask_rcnn(
    info.num_classes,
    backbone="mobilenetv2",
    weights=None,
    fpn_filters=64,
    box_head_units=256,
    mask_head_filters=32,
    anchor_sizes=(16, 32, 64, 128, 256),
    rpn_pre_nms_test=200,
    rpn_post_nms_test=50,
    training_config={
        "rpn_pre_nms_train": 300,
        "rpn_post_nms_train": 100,
        "roi_samples": 64,
        "roi_positive_fraction": 0.5,  # more positive ROIs: the classes are learnt sooner
    },
    class_names=list(info.class_names),
    palette=info.palette.tolist(),
    seed=0,
)
epochs, steps = 5, 250
model.compile(
    optimizer=training.make_optimizer(
        "adam", learning_rate=2e-3, total_steps=epochs * steps, warmup_steps=100, clipnorm=10.0
    )
)
# COCO box and mask AP (pycocotools) after the last epoch; best.keras is chosen by val_mask_AP.
scores = training.InstanceScores(val_examples, every=epochs)
result = training.fit(
    model,
    train_ds,
    output=output,
    epochs=epochs,
    steps_per_epoch=steps,
    monitor="val_mask_AP",
    epoch_metrics=[scores],
    overwrite=True,
)
stats = scores.stats()  # {"bbox": {"AP", "AP50", ...}, "segm": {...}}, as coco_evaluate gives
print(training.format_coco(stats))
print(f"validation mask AP50 {stats['segm']['AP50']:.3f}")

# Detect objects in a few validation images with the saved model and draw them.
best = keras.models.load_model(result.best_path, compile=False)  # to predict only
for i, (image, _) in enumerate(val_examples.take(4).as_numpy_iterator()):
    found = inference.predict(best, image, score_threshold=0.5)
    big = np.repeat(np.repeat(image, 4, axis=0), 4, axis=1)  # 256 px: legible labels
    found = dict(
        found,
        boxes=found["boxes"] * 4,
        masks=found["masks"].repeat(4, axis=1).repeat(4, axis=2),
    )
    path = os.path.join(output, f"detections_{i}.png")
    visualize.save_image(path, visualize.draw_instances(big, found, info.class_names))
    print(f"{len(found['scores'])} objects: {path}")
