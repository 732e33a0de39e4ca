"""Export a trained model as a SavedModel and serve it with plain TensorFlow.

    python examples/export_and_serve.py [CHECKPOINT.keras] [--output FOLDER]

With no checkpoint a small U-Net is trained on `shapes` for a few epochs first (under a minute
on a CPU). The SavedModel's `serving_default` signature takes uint8 images of any size and
returns `labels` and `probabilities`; serving it needs TensorFlow only, not kerasseg or Keras.
"""

import argparse
import os

import numpy as np
import tensorflow as tf

from kerasseg import datasets, export, losses, training, visualize

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint", nargs="?", help="a .keras file (default: train one)")
parser.add_argument("--output", default=os.path.join("runs", "serve_example"))
args = parser.parse_args()

if args.checkpoint:
    import keras

    import kerasseg  # noqa: F401 - registers kerasseg's layers for load_model

    model = keras.models.load_model(args.checkpoint, compile=False)
else:
    result = training.train(
        "unet",
        "shapes",
        output=os.path.join(args.output, "run"),
        backbone=None,
        weights=None,
        model_options={"filters": 8},
        dataset_options={"num_images": 2000},
        val_dataset_options={},
        epochs=4,
        batch_size=8,
        crop_size=64,
        steps_per_epoch=100,
        optimizer="adam",
        learning_rate=1e-2,
        warmup_steps=50,
        loss=losses.CrossEntropy() + losses.DiceLoss(),
        augment={"scale_range": None, "photometric": False},
        tensorboard=False,
        overwrite=True,
    )
    model = result.model

# 1. Export: the folder holds a SavedModel plus class_names.txt / palette.json assets; the
# names and colours are the ones the model carries (train gave it the dataset's).
saved = os.path.join(args.output, "savedmodel")
export.saved_model(model, saved, overwrite=True)
print(f"SavedModel written to {saved}")

# 2. Serve: only TensorFlow from here on (this part runs in a process without kerasseg too).
served = tf.saved_model.load(saved)
serve = served.signatures["serving_default"]
image, truth = next(iter(datasets.load("shapes", split="test")))  # any uint8 RGB image
outputs = serve(images=tf.expand_dims(image, 0))
labels = outputs["labels"][0].numpy()
names = [n.decode() for n in served.class_names.numpy()]
print(
    f"input {tuple(image.shape)} -> labels {labels.shape}, probabilities "
    f"{tuple(outputs['probabilities'].shape)}"
)
for index, name in enumerate(names):
    print(
        f"  {name:<10} {np.sum(labels == index):6d} px predicted, "
        f"{np.sum(truth.numpy() == index):6d} px true"
    )
path = visualize.save_image(
    os.path.join(args.output, "served_overlay.png"),
    visualize.overlay(image.numpy(), labels, served.palette.numpy()),
)
print(f"overlay: {path}")
