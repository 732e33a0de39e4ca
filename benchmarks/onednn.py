"""kerasseg with TensorFlow's oneDNN kernels off and on, on this CPU.

    python benchmarks/onednn.py [--rounds 3] [--model unet] [--backbone resnet50]

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it loads, so each measurement is a
fresh process with the setting in its environment; the two settings alternate (0 1 0 1) over
``--rounds`` and the medians are printed with the ratio on/off. Each process times
``predict_on_batch`` (inference) and ``train_on_batch`` (Adam, kerasseg's CrossEntropy) at
batch 4, 256x256, 12 classes, random weights, after two warm-up calls.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def child(args):
    import keras
    import numpy as np
    from tensorflow.python.util import _pywrap_util_port

    import kerasseg

    backbone = None if args.backbone == "none" else args.backbone
    model = kerasseg.build(args.model, 12, backbone=backbone, weights=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=kerasseg.losses.CrossEntropy())
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, 12, (args.batch, args.size, args.size)).astype("int32")
    out = {"onednn": bool(_pywrap_util_port.IsMklEnabled())}
    for mode, call in (
        ("inference", lambda: model.predict_on_batch(x)),
        ("training", lambda: model.train_on_batch(x, y)),
    ):
        for _ in range(2):
            call()
        times = []
        for _ in range(args.iters):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        out[mode] = args.batch / statistics.median(times)
    print("RESULT " + json.dumps(out), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    results = {"0": [], "1": []}
    for round_ in range(args.rounds):
        for setting in ("0", "1"):
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "3"}
            proc = subprocess.run(
                [sys.executable, __file__, "--child", *sys.argv[1:]],
                env=env,
                capture_output=True,
                text=True,
            )
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                sys.exit(
                    f"child with TF_ENABLE_ONEDNN_OPTS={setting} failed:\n" + proc.stderr[-3000:]
                )
            result = json.loads(line[0][7:])
            results[setting].append(result)
            print(
                f"round {round_ + 1} TF_ENABLE_ONEDNN_OPTS={setting} (oneDNN "
                f"{'on' if result['onednn'] else 'off'}): inference {result['inference']:.2f}"
                f" img/s, training {result['training']:.2f} img/s",
                flush=True,
            )
    print(
        f"\n{args.model} {args.backbone}, batch {args.batch}, {args.size}x{args.size}, "
        f"medians over {args.rounds} round(s):"
    )
    for mode in ("inference", "training"):
        off = statistics.median(r[mode] for r in results["0"])
        on = statistics.median(r[mode] for r in results["1"])
        print(f"  {mode:<9}  off {off:.2f} img/s  on {on:.2f} img/s  on/off {on / off:.2f}x")


if __name__ == "__main__":
    main()
