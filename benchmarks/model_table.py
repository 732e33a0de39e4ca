"""Parameters and GFLOPs of every architecture at its default backbone, for the README table.

    python benchmarks/model_table.py [--size 512] [--classes 21] [--models unet fcn8s ...]

FLOPs are counted by TensorFlow's graph profiler on a frozen 1 x size x size x 3 graph
(a multiply-add counts as 2 FLOPs, as the profiler and most papers do). Weights are random
(``weights=None``): the counts do not depend on them.
"""

import argparse
import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
from flops import gflops_per_image  # noqa: E402  (benchmarks/ is the script's folder)

import kerasseg  # noqa: E402


def default_backbone(name):
    parameter = inspect.signature(kerasseg.models.MODELS[name]).parameters.get("backbone")
    return None if parameter is None else parameter.default


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--models", nargs="*", default=kerasseg.list_models(task="semantic"))
    args = parser.parse_args(argv)

    rows = [
        f"| model | default backbone | parameters | GFLOPs at {args.size}x{args.size} |",
        "|---|---|---:|---:|",
    ]
    for name in args.models:
        model = kerasseg.build(name, args.classes, weights=None)
        # The model says which backbone it built (SegFormer's default None is the MiT-B0).
        backbone = model.describe().get("backbone") or default_backbone(name) or "(own encoder)"
        row = (
            f"| {name} | {backbone} | {model.count_params() / 1e6:.2f} M | "
            f"{gflops_per_image(model, args.size):.1f} |"
        )
        print(row, flush=True)
        rows.append(row)
        tf.keras.backend.clear_session()
    print()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
