"""Train a panoptic model with the Python API: Panoptic-DeepLab or Panoptic FPN.

On the built-in `shapes_panoptic` set (sky and ground behind circles, squares and triangles)
this is `kerasseg demo --task panoptic` spelled out: build the model with its thing classes,
batch the panoptic examples (`data.prepare` keeps `semantic` and `instance_ids` aligned),
compile with an optimizer only (the models carry their losses and derive their targets from
the two maps), let `training.fit` write checkpoints and history while
`training.PanopticScores` scores the validation split by PQ, then print the PQ table and draw
a few panoptic maps.

    python examples/train_panoptic.py [--model panoptic_fpn] [--output runs/panoptic]
    python examples/train_panoptic.py --dataset cityscapes --data-dir ~/data --backbone resnet50
        --weights imagenet --crop-size 512 --epochs 60 --steps 500   (Cityscapes panoptic)
    python examples/train_panoptic.py --smoke     (a few steps, to check the script)

For COCO panoptic use ``--dataset coco_panoptic``; its thing classes come from the JSON
(``kerasseg.datasets.coco_panoptic.thing_classes``).
"""

import argparse
import os

import keras

import kerasseg
from kerasseg import data, datasets, inference, training, visualize

# Small widths for 64 px synthetic images on a CPU (the paper's: 256-wide decoders, ...).
SMALL = {
    "panoptic_deeplab": dict(
        aspp_filters=64,
        semantic_filters=64,
        instance_filters=64,
        instance_head_filters=32,
        semantic_projections=(32, 16),
        instance_projections=(32, 16),
        center_sigma=3.0,
        stuff_area=32,
        top_k=32,
    ),
    "panoptic_fpn": dict(
        fpn_filters=64,
        box_head_units=256,
        mask_head_filters=32,
        semantic_filters=64,
        groups=16,
        anchor_sizes=(16, 32, 64, 128, 256),
        rpn_pre_nms_test=200,
        rpn_post_nms_test=50,
        training_config={"rpn_pre_nms_train": 300, "rpn_post_nms_train": 100, "roi_samples": 64},
        stuff_area=32,
    ),
}


def thing_classes(name, data_dir):
    info = datasets.info(name, task="panoptic") if name == "cityscapes" else datasets.info(name)
    if name == "coco_panoptic":
        return info, datasets.coco_panoptic.thing_classes(data_dir)
    return info, info.thing_classes


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="panoptic_deeplab", choices=sorted(SMALL))
    p.add_argument("--dataset", default="shapes_panoptic")
    p.add_argument("--data-dir")
    p.add_argument("--backbone", default="mobilenetv2")
    p.add_argument("--weights", default=None, help="imagenet or a file (default: from scratch)")
    p.add_argument("--crop-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps", type=int, default=300, help="steps per epoch")
    p.add_argument("--output", default=os.path.join("runs", "panoptic"))
    p.add_argument("--smoke", action="store_true", help="2 steps, 4 validation images")
    args = p.parse_args()
    if args.smoke:
        args.epochs, args.steps = 1, 2
    keras.utils.set_random_seed(0)
    info, things = thing_classes(args.dataset, args.data_dir)
    task = {"task": "panoptic"} if args.dataset == "cityscapes" else {}
    generated = {"num_images": 2000} if args.dataset == "shapes_panoptic" else {}
    train_raw = datasets.load(
        args.dataset, data_dir=args.data_dir, split="train", **task, **generated
    )
    val_raw = datasets.load(args.dataset, data_dir=args.data_dir, split="val", **task)
    if args.smoke:
        val_raw = val_raw.take(4)
    train_ds = data.prepare(
        train_raw,
        batch_size=args.batch_size,
        crop_size=args.crop_size,
        training=True,
        seed=0,
        repeat=True,
        drop_remainder=True,
        **({"scale_range": None, "photometric": False} if generated else {}),
    )
    options = dict(SMALL[args.model]) if generated else {}
    model = kerasseg.build(
        args.model,
        info.num_classes,
        thing_classes=things,
        backbone=args.backbone,
        weights=args.weights,
        class_names=list(info.class_names),
        palette=info.palette.tolist(),
        **options,
    )
    total = args.epochs * args.steps
    model.compile(
        optimizer=training.make_optimizer(
            "adam", 2e-3, total, warmup_steps=min(100, total // 2), clipnorm=10.0
        )
    )
    scores = training.PanopticScores(val_raw, every=args.epochs, report=print)
    result = training.fit(
        model,
        train_ds,
        output=args.output,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        monitor="val_PQ",
        epoch_metrics=[scores],
        overwrite=True,
        tensorboard=False,
    )
    print(training.format_pq(scores.last()))
    for i, (image, _) in enumerate(val_raw.take(3).as_numpy_iterator()):
        panoptic = inference.predict(result.model, image)["panoptic"]
        picture = visualize.panoptic_overlay(image, panoptic, info.palette, things)
        path = visualize.save_image(os.path.join(args.output, f"val_{i}.png"), picture)
        print("wrote", path)


if __name__ == "__main__":
    main()
