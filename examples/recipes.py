"""What the four dataset recipes share: a recipe dict and its ``--smoke`` overrides, the command
line, the smoke run's fixture (written by ``fixtures.py`` in the official layout), training with
``kerasseg.training.train`` and scoring ``best.keras``.

A recipe script holds its docstring, ``RECIPE`` and ``SMOKE`` and ends with
``load_sibling("recipes").main(...)``; the tested ``--smoke`` path is the recipe path with only
the sizes overridden.
"""

import argparse
import importlib.util
import os
import shutil

import keras
import numpy as np

from kerasseg import training

# mmsegmentation's schedule for its ResNet-50 recipes: SGD (momentum 0.9) at 0.01, poly decay
# (power 0.9) to 1e-4, weight decay 5e-4, no warm-up.
MMSEG_SGD = {
    "optimizer": "sgd",
    "learning_rate": 0.01,
    "end_learning_rate": 1e-4,
    "weight_decay": 5e-4,
    "warmup_steps": 0,
}

# What every --smoke run shrinks to: no pretrained weights, one epoch of two batches of two,
# no TensorBoard, its own run folder replaced, and no validation during training (the score of
# best.keras afterwards reads the validation split).
SMOKE_RUN = {
    "weights": None,
    "batch_size": 2,
    "epochs": 1,
    "steps_per_epoch": 2,
    "val_split": None,
    "tensorboard": False,
    "overwrite": True,
}


def mmseg_augment(base_size):
    """mmsegmentation's training pipeline: resize to ``base_size`` times 0.5-2.0, crops
    re-drawn while one class covers over 75% of them, flips, photometric distortion."""
    return {
        "base_size": base_size,
        "scale_range": (0.5, 2.0),
        "cat_max_ratio": 0.75,
        "flip": True,
        "photometric": True,
    }


def load_sibling(name):
    """examples/<name>.py as a module (the examples folder is no package; scripts run from
    anywhere)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"kerasseg_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def with_overrides(recipe, overrides):
    """``recipe`` with ``overrides`` on top; a dict value (model_options, augment) is merged."""
    settings = dict(recipe)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            value = {**settings[key], **value}
        settings[key] = value
    return settings


def run(settings, data_dir, output, eval_split):
    """Train with ``settings``, then score ``best.keras`` on ``eval_split`` and print its mIoU."""
    result = training.train(data_dir=data_dir, output=output, **settings)
    scores = training.evaluate(
        keras.models.load_model(result.best_path),
        settings["dataset"],
        data_dir=data_dir,
        split=eval_split,
        dataset_options=settings.get("dataset_options"),
        verbose=0,
    )
    miou = float("nan") if scores["mean_iou"] is None else scores["mean_iou"]
    print(f"mIoU ({settings['dataset']} {eval_split}, best.keras): {miou:.4f}")
    return scores


def main(doc, name, recipe, smoke, fixture, eval_split, data_help, argv=None):
    """The command line of a recipe script; ``fixture`` names the writer in fixtures.py."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data-dir", help=f"{data_help} (required unless --smoke)")
    parser.add_argument(
        "--output", help=f"run folder (default runs/{name}, or runs/{name}_smoke with --smoke)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="the recipe at toy sizes on a generated fixture"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        output = args.output or os.path.join("runs", name + "_smoke")
        data_dir = os.path.join(output, "fixture")  # the smoke run's own folder
        shutil.rmtree(data_dir, ignore_errors=True)
        getattr(load_sibling("fixtures"), fixture)(data_dir, np.random.default_rng(0))
        return run(with_overrides(recipe, smoke), data_dir, os.path.join(output, "run"), eval_split)
    if not args.data_dir:
        parser.error("--data-dir is required (or --smoke for a run on a generated fixture)")
    return run(recipe, args.data_dir, args.output or os.path.join("runs", name), eval_split)
