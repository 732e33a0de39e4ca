"""Pretrained SegFormer from keras-hub, as a kerasseg model.

keras-hub ships SegFormer B0-B5 trained on ADE20K and Cityscapes. ``kerasseg.from_keras_hub``
copies a preset's weights into kerasseg's own SegFormer: that model takes [0, 255] images of
any size (keras-hub's takes normalized images of one static size), carries the dataset's class
names and palette, saves to ``.keras``, and works with kerasseg's predict, evaluate and export.

    pip install 'kerasseg[keras-hub]'
    python examples/pretrained_from_keras_hub.py --preset segformer_b0_ade20k_512 \
        [--image photo.jpg] [--output runs/keras_hub]
    python examples/pretrained_from_keras_hub.py --random-weights      (offline)

A preset is downloaded by keras-hub from Kaggle (or read from the kagglehub cache); without
network, ``--random-weights`` builds keras-hub's SegFormer B0 from its configuration with
random weights instead, converts it and checks that both give the same scores.
"""

import argparse
import os

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def random_hub_segformer(size, num_classes, seed=0):
    """keras-hub's SegFormer B0 (its MiT-B0 configuration) at ``size`` px, random weights and
    non-trivial batch-norm statistics. keras-hub's model is fixed to one square input size."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    encoder = keras_hub.models.MiTBackbone(
        image_shape=(size, size, 3),
        num_layers=4,
        hidden_dims=[32, 64, 160, 256],
        layerwise_depths=[2, 2, 2, 2],
        layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1],
        layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2],
        max_drop_path_rate=0.1,
    )
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=256)
    hub = keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=num_classes)
    rng = np.random.default_rng(seed)
    for norm in backbone.linear_fuse.layers[1:2]:
        gamma, beta, mean, variance = norm.get_weights()
        norm.set_weights(
            [
                rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                rng.normal(0, 0.1, beta.shape).astype("float32"),
                rng.normal(0, 0.1, mean.shape).astype("float32"),
                rng.uniform(0.5, 1.5, variance.shape).astype("float32"),
            ]
        )
    return hub


def hub_scores(hub, images):
    """keras-hub's own call on [0, 255] images: its preprocessing (ImageNet mean and std of
    pixels / 255), then the model in inference mode (plain ``hub(x)`` updates its batch-norm
    statistics in keras-hub 0.32)."""
    import keras

    x = (np.asarray(images, "float32") / 255.0 - MEAN) / STD
    return keras.ops.convert_to_numpy(hub(x.astype("float32"), training=False))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="segformer_b0_ade20k_512")
    parser.add_argument("--random-weights", action="store_true", help="offline: no download")
    parser.add_argument("--size", type=int, default=128, help="--random-weights' input size")
    parser.add_argument("--image", help="an image to segment (default: a random one)")
    parser.add_argument("--output", default=os.path.join("runs", "keras_hub"))
    args = parser.parse_args(argv)

    import keras

    import kerasseg

    os.makedirs(args.output, exist_ok=True)
    rng = np.random.default_rng(0)
    if args.random_weights:
        hub = random_hub_segformer(args.size, num_classes=150)
        model = kerasseg.from_keras_hub(hub, dataset="ade20k", activation=None)
        x = rng.uniform(0, 255, (2, args.size, args.size, 3)).astype("float32")
        difference = float(np.abs(keras.ops.convert_to_numpy(model(x)) - hub_scores(hub, x)).max())
        print(f"largest difference to keras-hub's scores: {difference:.2e}")
    else:
        model = kerasseg.from_keras_hub(args.preset)  # downloads through keras-hub
        difference = None
    print(
        f"{model.name}: {model.count_params():,} parameters, {model.num_classes} classes "
        f"({', '.join(model.class_names[:4])}, ...)"
    )

    if args.image:
        import cv2

        image = cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB)
    else:
        image = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)  # any size works
    labels = kerasseg.inference.predict(model, image)
    print(
        f"predicted a {labels.shape[0]}x{labels.shape[1]} class map, "
        f"{len(np.unique(labels))} classes present"
    )
    path = os.path.join(args.output, f"{model.name}.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)  # no custom_objects needed
    assert np.array_equal(kerasseg.inference.predict(reloaded, image), labels)
    print(f"saved {path}")
    return {"model": model, "labels": labels, "difference": difference, "path": path}


if __name__ == "__main__":
    main()
