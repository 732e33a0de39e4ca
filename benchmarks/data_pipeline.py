"""Throughput of the input pipeline: folder loader + kerasseg.data.prepare at 512x512.

Writes synthetic 512x512 JPEG images and PNG masks into a temporary folder (the `folder` layout),
then times full training batches: decode, random resize 0.5-2.0, crop 512 with padding, flip and
photometric distortion. The figure to compare with a model's training throughput (images/s).

    python benchmarks/data_pipeline.py [--num-images 64] [--batch-size 8] [--epochs 3]
                                       [--cat-max-ratio 0.75]
    python benchmarks/data_pipeline.py --compare-training   # also U-Net-ResNet50 training img/s

The issue's bar: the pipeline's images/s at least 5x U-Net-ResNet50's training images/s at the
same crop, so the input never bounds training.
"""

import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kerasseg import data, datasets  # noqa: E402


def write_fixture(root, n, size=512, classes=21, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    for i in range(n):
        # Smooth blobs rather than white noise, so JPEG sizes resemble photographs'.
        small = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
        image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        mask = cv2.resize(
            rng.integers(0, classes, (8, 8)).astype(np.uint8),
            (size, size),
            interpolation=cv2.INTER_NEAREST,
        )
        cv2.imwrite(
            os.path.join(root, "images", f"{i:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        cv2.imwrite(os.path.join(root, "masks", f"{i:05d}.png"), mask)


def time_epochs(ds, epochs):
    batched = ds.element_spec[0].shape.rank == 4
    rates = []
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for x, _ in ds:
            count += int(x.shape[0]) if batched else 1
        rates.append(count / (time.perf_counter() - start))
    return rates


def unet_training_rate(crop, batch_size, steps=3):
    """Images/s of U-Net-ResNet50 train_on_batch at crop x crop (after one warm-up step)."""
    import kerasseg

    model = kerasseg.unet(21, backbone="resnet50", weights=None)
    model.compile(optimizer="adam", loss=kerasseg.losses.CrossEntropy())
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, crop, crop, 3)).astype("float32")
    y = rng.integers(0, 21, (batch_size, crop, crop)).astype("int32")
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--num-images", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--epochs", type=int, default=3, help="timed passes; the first also includes warm-up"
    )
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--cat-max-ratio", type=float, default=None)
    p.add_argument(
        "--compare-training",
        action="store_true",
        help="also time U-Net-ResNet50 training (batch 2) at the same crop",
    )
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as root:
        write_fixture(root, args.num_images)
        raw = datasets.load("folder", data_dir=root, split="all", num_classes=21)
        decode = time_epochs(raw, 2)
        ds = data.prepare(
            raw,
            batch_size=args.batch_size,
            crop_size=(args.crop, args.crop),
            training=True,
            seed=0,
            cat_max_ratio=args.cat_max_ratio,
        )
        rates = time_epochs(ds, args.epochs)
        print(f"cpu cores: {os.cpu_count()}")
        print(f"decode only (folder loader, 512x512 JPEG + PNG): {max(decode):.1f} images/s")
        print(
            "prepare(training=True, crop %d, batch %d%s): per epoch %s images/s"
            % (
                args.crop,
                args.batch_size,
                f", cat_max_ratio {args.cat_max_ratio}" if args.cat_max_ratio else "",
                ", ".join(f"{r:.1f}" for r in rates),
            )
        )
        steady = np.median(rates[1:] if len(rates) > 1 else rates)
        print(f"steady-state: {steady:.1f} images/s")
    if args.compare_training:
        train = unet_training_rate(args.crop, 2)
        print(
            f"U-Net-ResNet50 training (train_on_batch, batch 2, crop {args.crop}): "
            f"{train:.2f} images/s; pipeline / training = {steady / train:.0f}x"
        )


if __name__ == "__main__":
    main()
