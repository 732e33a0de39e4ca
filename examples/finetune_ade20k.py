"""Fine-tune PSPNet (ResNet-50 from ImageNet) on ADE20K's 150 classes, mmsegmentation's 80k recipe.

What it trains: ``pspnet`` on an ImageNet-pretrained ``resnet50`` dilated to output stride 8
(pyramid pooling over 1/2/3/6 bins, a 3x3 convolution of 512, dropout 0.1) with the auxiliary
classifier on the conv4 features (mmsegmentation's stage 3; 256 filters, loss weight 0.4), on the
20,210 ``ade20k`` training images (SceneParsing, ADEChallengeData2016: annotation 0 "other"
ignored, 1..150 become classes 0..149, mmsegmentation's reduce_zero_label). Validated and scored
on the 2,000 val images.

The recipe (mmsegmentation 1.x, configs/pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py and its
_base_ files):

- 80,000 iterations at batch 16 (4 GPUs x 4 there; here epochs=80 x steps_per_epoch=1000);
- random 512x512 crops after a resize to the scale (2048, 512) times a ratio in 0.5-2.0
  (keeping the aspect), crops re-drawn while one class covers more than 75% of them
  (cat_max_ratio 0.75), horizontal flips, photometric distortion;
- SGD, momentum 0.9, lr 0.01 with the poly decay (power 0.9) to 1e-4, weight decay 5e-4;
- auxiliary head with loss weight 0.4; validation every 8,000 iterations (validation_freq=8).

Where kerasseg differs: mmsegmentation's "R-50-D8" is ResNet-50-V1c (three 3x3 convolutions in
the stem); kerasseg's ``resnet50`` is the Keras Applications ResNet-50 (7x7 stem). The output
stride (8), the pyramid and the auxiliary head match. mmsegmentation scores ADE20K val after
resizing each image to the (2048, 512) scale; kerasseg scores each image at its own size. Keras
applies the weight decay decoupled from the gradient (``w -= lr * wd * w``): about a tenth of the
pull that PyTorch's SGD with momentum 0.9 exerts with the same 5e-4.

Expected on a GPU: close to 41.13 mIoU on ADE20K val: "mmsegmentation configs/pspnet, R-50-D8
512x512 80k, ADE20K: 41.13 val mIoU", a target for this setup rather than a guarantee, given the
differences above; see examples/README.md.

    python examples/finetune_ade20k.py --data-dir /data/ade20k --output runs/ade20k_pspnet
    python examples/finetune_ade20k.py --smoke     # a few steps on a tiny fixture, on a CPU

``--data-dir`` holds ``ADEChallengeData2016/`` as ADEChallengeData2016.zip extracts;
``kerasseg.datasets.download("ade20k", data_dir)`` fetches it. ``--smoke`` writes a tiny fixture
in that layout into ``<output>/fixture``, runs the same recipe at toy sizes into
``<output>/run`` and scores it the same way.
"""

import os
import sys

# The shared command line and run (examples/recipes.py): this folder is no package.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recipes  # noqa: E402

NAME = "ade20k_pspnet"
EVAL_SPLIT = "val"  # the split the published figure is measured on

RECIPE = {
    **recipes.MMSEG_SGD,
    "model": "pspnet",
    "dataset": "ade20k",
    "backbone": "resnet50",
    "weights": "imagenet",
    "model_options": {
        "output_stride": 8,
        "bins": (1, 2, 3, 6),
        "filters": 512,
        "dropout": 0.1,
        "aux_head": True,
        "aux_filters": 256,
    },
    "aux_loss_weight": 0.4,
    "crop_size": (512, 512),
    "batch_size": 16,
    "epochs": 80,
    "steps_per_epoch": 1000,  # 80 x 1000 = 80k iterations
    "augment": recipes.mmseg_augment((2048, 512)),
    "train_split": "train",
    "val_split": "val",
    "validation_freq": 8,  # every 8,000 iterations
    "val_steps": None,  # the whole val split, each image at its own size
    "val_crop_size": None,
}

# --smoke: the same call with the sizes shrunk (dict options are merged into the recipe's).
SMOKE = {
    **recipes.SMOKE_RUN,
    "model_options": {"filters": 16, "aux_filters": 8},
    "crop_size": (64, 64),
    "augment": {"base_size": (256, 64)},  # the fixture's 64x96 images stand for ~512-px ones
    "overwrite": True,
}


def main(argv=None):
    return recipes.main(
        __doc__,
        NAME,
        RECIPE,
        SMOKE,
        "write_ade20k",
        EVAL_SPLIT,
        "the folder holding ADEChallengeData2016/",
        argv,
    )


if __name__ == "__main__":
    main()
