"""Train a small U-Net on the synthetic `shapes` set with the Python API.

This is `kerasseg demo` spelled out: build a model, batch the data, compile with a segmentation
loss and mIoU, and let `kerasseg.training.fit` write the checkpoints (best.keras chosen by
validation mIoU), history.csv and curves.png. Runs in about two minutes on a laptop CPU.

    python examples/train_shapes.py [output_folder]     (default runs/shapes)
"""

import os
import sys

import keras

import kerasseg
from kerasseg import data, datasets, inference, losses, metrics, training, visualize

output = sys.argv[1] if len(sys.argv) > 1 else os.path.join("runs", "shapes")
info = datasets.info("shapes")  # 4 classes: background, circle, rectangle, triangle
keras.utils.set_random_seed(0)

# Training batches: 64 px random crops with flips. Validation: each image at its own size,
# padded to a multiple of 32 the way kerasseg.inference.predict pads it.
train_ds = data.prepare(
    datasets.load("shapes", split="train", num_images=2000),
    batch_size=8,
    crop_size=64,
    training=True,
    seed=0,
    scale_range=None,
    photometric=False,
    repeat=True,
    drop_remainder=True,
)
val_ds = training.validation_batches(datasets.load("shapes", split="val"))

# The paper's U-Net layout, 8 filters at the top instead of 64: plenty for four shapes.
model = kerasseg.unet(info.num_classes, backbone=None, filters=8)
epochs, steps = 12, 100
model.compile(
    optimizer=training.make_optimizer(
        "adam", learning_rate=1e-2, total_steps=epochs * steps, warmup_steps=50
    ),
    loss=losses.CrossEntropy() + losses.DiceLoss(),
    metrics=[metrics.MeanIoU(info.num_classes), metrics.PixelAccuracy(info.num_classes)],
)
result = training.fit(
    model, train_ds, val_ds, output=output, epochs=epochs, steps_per_epoch=steps, overwrite=True
)
print(f"best validation mIoU {result.best_value:.3f} at epoch {result.best_epoch}")

# Predict a few validation images with the best checkpoint and draw them side by side.
best = keras.models.load_model(result.best_path)
samples = list(datasets.load("shapes", split="val").take(6).as_numpy_iterator())
images = [image for image, _ in samples]
truths = [mask for _, mask in samples]
predictions = inference.predict(best, images)
visualize.grid(
    images, truths, predictions, info.palette, path=os.path.join(output, "predictions.png")
)
print(f"image | truth | prediction: {os.path.join(output, 'predictions.png')}")
