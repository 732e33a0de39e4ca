"""Train DeepLabV3+ (ResNet-50) on VOC 2012 + SBD (train_aug) with mmsegmentation's 40k recipe.

What it trains: ``deeplabv3plus`` on an ImageNet-pretrained ``resnet50`` dilated to output stride
16 (ASPP rates 6/12/18, 256 filters; decoder: a 48-channel projection of the stride-4 features
and two 3x3 convolutions of 256) on ``voc2012_aug``'s ``train_aug`` split: the usual 10,582
images, (SBD train + SBD val + VOC train) minus VOC val, each with VOC's own mask when VOC has one
(255 border band ignored) and SBD's ``.mat`` otherwise; 21 classes with background. Validated and
scored on the 1,449 images of VOC 2012 val.

The recipe (mmsegmentation 1.x, configs/deeplabv3plus/
deeplabv3plus_r50-d8_4xb4-40k_voc12aug-512x512.py and its _base_ files):

- 40,000 iterations at batch 16 (4 GPUs x 4 there; here epochs=40 x steps_per_epoch=1000);
- random 512x512 crops after a resize to the scale (2048, 512) times a ratio in 0.5-2.0
  (keeping the aspect), crops re-drawn while one class covers more than 75% of them
  (cat_max_ratio 0.75), horizontal flips, photometric distortion; masks padded with 255;
- SGD, momentum 0.9, lr 0.01 with the poly decay (power 0.9) to 1e-4, weight decay 5e-4;
- validation every 4,000 iterations (validation_freq=4).

Where kerasseg differs: mmsegmentation's "R-50-D8" is ResNet-50-V1c (three 3x3 convolutions in
the stem) dilated to output stride 8 and carries an auxiliary FCN head on stage 3 (loss weight
0.4); kerasseg's ``resnet50`` is the Keras Applications ResNet-50 (7x7 stem), run here at output
stride 16, the DeepLabV3+ paper's training stride (``model_options["output_stride"] = 8`` gives
mmsegmentation's density, at a much higher cost in compute and memory), and its DeepLabV3+ has
no auxiliary head. mmsegmentation scores VOC val after resizing each image to the (2048, 512)
scale; kerasseg scores each image at its own size (about 500x375). Keras applies the weight
decay decoupled from the gradient (``w -= lr * wd * w``): about a tenth of the pull that
PyTorch's SGD with momentum 0.9 exerts with the same 5e-4.

Expected on a GPU: close to 76.81 mIoU on VOC 2012 val: "mmsegmentation configs/deeplabv3plus,
R-50-D8 512x512 40k, VOC aug: 76.81 val mIoU", a target for this setup rather than a guarantee,
given the differences above; see examples/README.md.

    python examples/train_voc_aug.py --data-dir /data/voc --output runs/voc_aug
    python examples/train_voc_aug.py --smoke     # a few steps on a tiny fixture, on a CPU

``--data-dir`` holds ``VOCdevkit/VOC2012`` (VOCtrainval_11-May-2012.tar) and SBD's
``benchmark_RELEASE`` (benchmark.tgz); ``kerasseg.datasets.download("voc2012_aug", data_dir)``
fetches both. Reading SBD's ``.mat`` labels needs scipy. ``--smoke`` writes a tiny fixture in
that layout into ``<output>/fixture``, runs the same recipe at toy sizes into ``<output>/run``
and scores it the same way.
"""

import os
import sys

# The shared command line and run (examples/recipes.py): this folder is no package.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recipes  # noqa: E402

NAME = "voc_aug_deeplabv3plus"
EVAL_SPLIT = "val"  # the split the published figure is measured on

RECIPE = {
    **recipes.MMSEG_SGD,
    "model": "deeplabv3plus",
    "dataset": "voc2012_aug",
    "backbone": "resnet50",
    "weights": "imagenet",
    "model_options": {
        "output_stride": 16,
        "filters": 256,
        "low_level_filters": 48,
        "decoder_filters": 256,
        "dropout": 0.1,
    },
    "crop_size": (512, 512),
    "batch_size": 16,
    "epochs": 40,
    "steps_per_epoch": 1000,  # 40 x 1000 = 40k iterations
    "augment": recipes.mmseg_augment((2048, 512)),
    "train_split": "train_aug",
    "val_split": "val",
    "validation_freq": 4,  # every 4,000 iterations
    "val_steps": None,  # the whole val split, each image at its own size
    "val_crop_size": None,
}

# --smoke: the same call with the sizes shrunk (dict options are merged into the recipe's).
SMOKE = {
    **recipes.SMOKE_RUN,
    "model_options": {"filters": 16, "low_level_filters": 8, "decoder_filters": 16},
    "crop_size": (64, 64),
    "augment": {"base_size": (256, 64)},  # the fixture's 64x96 images stand for ~375x500
    "overwrite": True,
}


def main(argv=None):
    return recipes.main(
        __doc__,
        NAME,
        RECIPE,
        SMOKE,
        "write_voc_aug",
        EVAL_SPLIT,
        "the folder holding VOCdevkit/ and benchmark_RELEASE/",
        argv,
    )


if __name__ == "__main__":
    main()
