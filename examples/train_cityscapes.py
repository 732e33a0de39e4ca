"""Train DeepLabV3+ (ResNet-50) on Cityscapes' 19 trainIds with mmsegmentation's 80k recipe.

What it trains: ``deeplabv3plus`` on an ImageNet-pretrained ``resnet50`` dilated to output stride
16 (ASPP rates 6/12/18, 256 filters; decoder: a 48-channel projection of the stride-4 features
and two 3x3 convolutions of 256), on the 2,975 fine-annotated ``cityscapes`` training frames
(labelIds mapped to the 19 trainIds, the rest ignored), validated on the 500 val frames at their
full 1024x2048 size.

The recipe (mmsegmentation 1.x, configs/deeplabv3plus/
deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py and its _base_ files):

- 80,000 iterations at batch 8 (4 GPUs x 2 there; here epochs=80 x steps_per_epoch=1000);
- random 512x1024 crops after a resize to the scale (2048, 1024) times a ratio in 0.5-2.0
  (keeping the aspect), crops re-drawn while one class covers more than 75% of them
  (cat_max_ratio 0.75), horizontal flips, photometric distortion;
- SGD, momentum 0.9, lr 0.01 with the poly decay (power 0.9) to 1e-4, weight decay 5e-4;
- validation every 8,000 iterations (validation_freq=8), whole frames.

Where kerasseg differs: mmsegmentation's "R-50-D8" is ResNet-50-V1c (three 3x3 convolutions in
the stem) dilated to output stride 8 and carries an auxiliary FCN head on stage 3 (loss weight
0.4); kerasseg's ``resnet50`` is the Keras Applications ResNet-50 (7x7 stem), run here at output
stride 16 (``model_options["output_stride"] = 8`` gives mmsegmentation's density, at a much
higher cost in compute and memory), and its DeepLabV3+ has no auxiliary head. Keras applies the
weight decay decoupled from the gradient (``w -= lr * wd * w``): about a tenth of the pull that
PyTorch's SGD with momentum 0.9 exerts with the same 5e-4.

Expected on a GPU: close to 80.09 mIoU on Cityscapes val, single scale (81.13 with multi-scale
and flip testing): "mmsegmentation configs/deeplabv3plus, R-50-D8 512x1024 80k: 80.09 val mIoU",
a target for this setup rather than a guarantee, given the differences above; see
examples/README.md.

    python examples/train_cityscapes.py --data-dir /data/cityscapes --output runs/cityscapes
    python examples/train_cityscapes.py --smoke     # a few steps on a tiny fixture, on a CPU

``--data-dir`` holds ``leftImg8bit/`` and ``gtFine/`` as gtFine_trainvaltest.zip and
leftImg8bit_trainvaltest.zip extract (a free registration at cityscapes-dataset.com).
``--smoke`` writes a tiny fixture in that layout into ``<output>/fixture``, runs the same recipe
at toy sizes into ``<output>/run`` and scores it the same way.
"""

import os
import sys

# The shared command line and run (examples/recipes.py): this folder is no package.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recipes  # noqa: E402

NAME = "cityscapes_deeplabv3plus"
EVAL_SPLIT = "val"  # the split the published figure is measured on

RECIPE = {
    **recipes.MMSEG_SGD,
    "model": "deeplabv3plus",
    "dataset": "cityscapes",
    "backbone": "resnet50",
    "weights": "imagenet",
    "model_options": {
        "output_stride": 16,
        "filters": 256,
        "low_level_filters": 48,
        "decoder_filters": 256,
        "dropout": 0.1,
    },
    "crop_size": (512, 1024),
    "batch_size": 8,
    "epochs": 80,
    "steps_per_epoch": 1000,  # 80 x 1000 = 80k iterations
    "augment": recipes.mmseg_augment((2048, 1024)),
    "train_split": "train",
    "val_split": "val",
    "validation_freq": 8,  # every 8,000 iterations
    "val_steps": None,  # the whole val split, each frame at its own size
    "val_crop_size": None,
}

# --smoke: the same call with the sizes shrunk (dict options are merged into the recipe's).
SMOKE = {
    **recipes.SMOKE_RUN,
    "model_options": {"filters": 16, "low_level_filters": 8, "decoder_filters": 16},
    "crop_size": (32, 64),
    "augment": {"base_size": (128, 64)},  # the fixture's 64x128 frames stand for 1024x2048
    "overwrite": True,
}


def main(argv=None):
    return recipes.main(
        __doc__,
        NAME,
        RECIPE,
        SMOKE,
        "write_cityscapes",
        EVAL_SPLIT,
        "the folder holding leftImg8bit/ and gtFine/",
        argv,
    )


if __name__ == "__main__":
    main()
