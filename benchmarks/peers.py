"""Throughput of kerasseg models against their peers in other Keras segmentation libraries.

    python benchmarks/peers.py [--install] [--rounds 3] [--quick] [--pairs NAME ...]

Each pair puts a kerasseg model beside the nearest model of another library:

    unet_resnet50          kerasseg unet(backbone="resnet50")
                           vs segmentation_models Unet("resnet50")
    deeplabv3plus_resnet50 kerasseg deeplabv3plus("resnet50", output_stride=32)
                           vs keras-hub DeepLabV3ImageSegmenter
    unet_paper             kerasseg unet(backbone=None)
                           vs keras-unet-collection unet_2d
    segformer_b0           kerasseg segformer(variant="b0")
                           vs keras-hub SegFormerImageSegmenter (MiT-B0)

Every measurement (library, model, mode) runs in a fresh Python process so that one model's
graphs, caches and allocator state never slow down the next; within a round the two libraries
alternate (A B A B) and the table reports the median over rounds. Both sides are built with
random weights, take the same float32 batch (values in [0, 255]), are compiled the same way
(Adam, sparse categorical cross-entropy on softmax outputs, the same ``jit_compile``) and are
timed with the same calls: ``predict_on_batch`` for inference, ``train_on_batch`` for training.

The peers are never dependencies of kerasseg: ``--install`` pip-installs them into the running
environment; without it a missing peer is reported and its pair skipped.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUTPUT = os.path.join(HERE, "results", "peers_cpu.md")

# import name -> pip requirement
PEER_PACKAGES = {
    "segmentation_models": "segmentation-models",
    "keras_hub": "keras-hub",
    "keras_unet_collection": "keras-unet-collection",
}

# Model keys understood by the child process (see build_model) and how they are described.
MODELS = {
    "kerasseg/unet_resnet50": 'kerasseg `unet(backbone="resnet50")`',
    "sm/unet_resnet50": 'segmentation_models `Unet("resnet50")`',
    "kerasseg/deeplabv3plus_resnet50": 'kerasseg `deeplabv3plus(backbone="resnet50", '
    "output_stride=32, atrous_rates=(6, 12, 18), "
    "decoder_convs=1, decoder_kernel_size=1)`",
    "keras_hub/deeplabv3plus_resnet50": "keras-hub `DeepLabV3ImageSegmenter` (ResNet50, P5/P2)",
    "kerasseg/unet_paper": 'kerasseg `unet(backbone=None, upsampling="nearest", batch_norm=False)`',
    "kuc/unet_2d": "keras-unet-collection `unet_2d(filter_num=[64..1024])`",
    "kerasseg/segformer_b0": 'kerasseg `segformer(variant="b0")`',
    "keras_hub/segformer_b0": "keras-hub `SegFormerImageSegmenter` (MiT-B0, 256-wide decoder)",
}

# name -> (kerasseg model, peer model, import name of the peer)
PAIRS = {
    "unet_resnet50": ("kerasseg/unet_resnet50", "sm/unet_resnet50", "segmentation_models"),
    "deeplabv3plus_resnet50": (
        "kerasseg/deeplabv3plus_resnet50",
        "keras_hub/deeplabv3plus_resnet50",
        "keras_hub",
    ),
    "unet_paper": ("kerasseg/unet_paper", "kuc/unet_2d", "keras_unet_collection"),
    "segformer_b0": ("kerasseg/segformer_b0", "keras_hub/segformer_b0", "keras_hub"),
}

MODES = ("inference", "training")


# ----------------------------------------------------------------------------------------
# Child: build one model, time one mode, print one JSON line.
# ----------------------------------------------------------------------------------------


def _resnet50_v1_keras_hub():
    import keras_hub

    # keras-hub's "resnet_50_imagenet" preset architecture, built from its config (no download).
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="bottleneck_block",
        use_pre_activation=False,
        image_shape=(None, None, 3),
    )


def build_model(key, classes, size):
    """Build model ``key`` with random weights for ``classes`` classes and size x size RGB input."""
    shape = (size, size, 3)
    if key.startswith("kerasseg/"):
        import kerasseg

        options = {
            "kerasseg/unet_resnet50": ("unet", {"backbone": "resnet50"}),
            # keras-hub's preset configuration: ASPP (rates 6, 12, 18) on the undilated
            # stride-32 map, one 1x1 decoder convolution. kerasseg's default (output stride
            # 16, the paper's two 3x3 decoder convolutions) costs over twice the FLOPs.
            "kerasseg/deeplabv3plus_resnet50": (
                "deeplabv3plus",
                {
                    "backbone": "resnet50",
                    "output_stride": 32,
                    "atrous_rates": (6, 12, 18),
                    "decoder_convs": 1,
                    "decoder_kernel_size": 1,
                },
            ),
            # unet_2d's decoder: nearest upsampling, then two 3x3 convolutions; no batch norm.
            "kerasseg/unet_paper": (
                "unet",
                {"backbone": None, "filters": 64, "upsampling": "nearest", "batch_norm": False},
            ),
            "kerasseg/segformer_b0": ("segformer", {"variant": "b0"}),
        }[key]
        return kerasseg.build(options[0], classes, weights=None, input_shape=shape, **options[1])
    if key == "sm/unet_resnet50":
        os.environ["SM_FRAMEWORK"] = "tf.keras"
        import segmentation_models as sm

        return sm.Unet(
            "resnet50",
            input_shape=shape,
            classes=classes,
            activation="softmax",
            encoder_weights=None,
        )
    if key == "keras_hub/deeplabv3plus_resnet50":
        import keras_hub

        # The configuration of keras-hub's "deeplab_v3_plus_resnet50_pascalvoc" preset.
        backbone = keras_hub.models.DeepLabV3Backbone(
            image_encoder=_resnet50_v1_keras_hub(),
            projection_filters=48,
            low_level_feature_key="P2",
            spatial_pyramid_pooling_key="P5",
            upsampling_size=8,
            dilation_rates=[6, 12, 18],
            image_shape=shape,
        )
        return keras_hub.models.DeepLabV3ImageSegmenter(
            backbone=backbone, num_classes=classes, activation="softmax"
        )
    if key == "keras_hub/segformer_b0":
        import keras
        import keras_hub

        # keras-hub's "segformer_b0_ade20k_512" architecture, built from its config.
        encoder = keras_hub.models.MiTBackbone(
            image_shape=shape,
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
        hub = keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=classes)
        # keras-hub's segmenter gives logits: softmax them, as the kerasseg side does.
        return keras.Model(hub.inputs, keras.layers.Softmax()(hub.outputs[0]))
    if key == "kuc/unet_2d":
        from keras_unet_collection import models

        return models.unet_2d(
            shape, [64, 128, 256, 512, 1024], n_labels=classes, output_activation="Softmax"
        )
    raise ValueError(f"Unknown model key {key!r}; valid: {sorted(MODELS)}")


def run_child(spec):
    """Time one (model, mode); returns a dict for the parent."""
    import keras
    import numpy as np

    load = os.getloadavg()[0]
    # Before building: every library's layers take the global policy at construction.
    keras.mixed_precision.set_global_policy(spec["policy"])
    start = time.perf_counter()
    model = build_model(spec["model"], spec["classes"], spec["size"])
    build_s = time.perf_counter() - start
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[],  # keras-hub's tasks would otherwise add an accuracy metric
        jit_compile=spec["jit_compile"],
    )
    rng = np.random.default_rng(0)
    batch, size, classes = spec["batch"], spec["size"], spec["classes"]
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, classes, (batch, size, size)).astype("int32")

    if spec["mode"] == "inference":

        def step():
            out = model.predict_on_batch(images)
            assert out.shape == (batch, size, size, classes), out.shape
    else:

        def step():
            model.train_on_batch(images, labels)

    start = time.perf_counter()
    for _ in range(spec["warmup"]):
        step()
    warmup_s = time.perf_counter() - start
    times, cpu_times = [], []
    for _ in range(spec["iters"]):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    result = {
        "model": spec["model"],
        "mode": spec["mode"],
        "params": int(model.count_params()),
        "seconds": times,
        "median_s": statistics.median(times),
        "cpu_seconds": cpu_times,
        "median_cpu_s": statistics.median(cpu_times),
        "build_s": build_s,
        "warmup_s": warmup_s,
        "load_at_start": load,
    }
    if spec.get("flops"):
        result["gflops"] = gflops_per_image(model, size)
    return result


from flops import gflops_per_image  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)

# ----------------------------------------------------------------------------------------
# Parent: spawn the children, collect, tabulate.
# ----------------------------------------------------------------------------------------


def missing_peers(names):
    return [n for n in names if importlib.util.find_spec(n) is None]


def install_peers(names):
    requirements = [PEER_PACKAGES[n] for n in names]
    print("installing:", " ".join(requirements), flush=True)
    subprocess.check_call([sys.executable, "-m", "pip", "install", *requirements])


def spawn(spec, timeout):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", SM_FRAMEWORK="tf.keras")
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(
        f"child {spec['model']} ({spec['mode']}) failed with code "
        f"{proc.returncode}:\n{proc.stderr[-3000:]}"
    )


def version_of(module):
    try:
        from importlib.metadata import version

        return version(PEER_PACKAGES.get(module, module))
    except Exception:  # noqa: BLE001 - only for the report
        return "?"


def summarize(results, batch):
    """{(model, mode): {"ips": median images/s, "runs": images/s per round, "cpu_runs":
    images per CPU-second per round, "params": n, "gflops": per image or None}}."""
    table = {}
    for r in results:
        entry = table.setdefault(
            (r["model"], r["mode"]), {"runs": [], "cpu_runs": [], "params": r["params"]}
        )
        entry["runs"].append(batch / r["median_s"])
        entry["cpu_runs"].append(batch / r["median_cpu_s"])
        if "gflops" in r:
            entry["gflops"] = r["gflops"]
    for entry in table.values():
        entry["ips"] = statistics.median(entry["runs"])
    return table


def markdown(table, pairs, args, loads, command):
    lines = [
        "# kerasseg against its peers: throughput",
        "",
        f"Command: `{command}`",
        "",
        f"Batch {args.batch} at {args.size}x{args.size}, {args.classes} classes, random weights. "
        f"Images/s are medians over {args.rounds} round(s); each round runs one fresh process "
        f"per (model, mode), the two libraries of a pair alternating; inside a process the "
        f"median of {args.iters} timed `predict_on_batch` calls (inference) or "
        f"{args.train_iters} `train_on_batch` steps (training; Adam, sparse categorical "
        f"cross-entropy) after {args.warmup} warm-up call(s). `jit_compile={args.jit_compile}` "
        f"and dtype policy `{args.mixed_precision}` for every model. GFLOPs: one inference "
        "of one image, counted by TensorFlow's profiler "
        "(multiply-add = 2). Ratio = kerasseg / peer, the median over rounds of the ratio "
        "within a round (its two runs are back to back); in brackets the same in images per "
        "CPU-second of the process, which other load on the machine disturbs less.",
        "",
        "| pair | model | parameters | GFLOPs/image | inference img/s | training img/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for pair in pairs:
        ours, theirs, _ = PAIRS[pair]
        got = {}
        for key in (ours, theirs):
            inf, train = table.get((key, "inference")), table.get((key, "training"))
            params = (inf or train or {}).get("params")
            got[key] = {
                "params": params,
                "gflops": (inf or {}).get("gflops"),
                "inf": inf,
                "train": train,
            }
            lines.append(
                f"| {pair} | {MODELS[key]} | {_num(params, 1e6, ' M')} | "
                f"{_num(got[key]['gflops'])} | {_num(inf and inf['ips'])} | "
                f"{_num(train and train['ips'])} |"
            )
        a, b = got[ours], got[theirs]
        lines.append(
            f"| {pair} | **ratio** | {_div(a['params'], b['params'])} | "
            f"{_div(a['gflops'], b['gflops'])} | {_speed_ratio(a['inf'], b['inf'])} | "
            f"{_speed_ratio(a['train'], b['train'])} |"
        )
    import keras
    import tensorflow as tf

    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; 1-minute load average "
        f"when the children started: min {min(loads):.2f}, median "
        f"{statistics.median(loads):.2f}, max {max(loads):.2f} (the benchmark itself keeps "
        f"about 1-2 busy). TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        + ", ".join(f"{PEER_PACKAGES[p]} {version_of(p)}" for p in PEER_PACKAGES)
        + ".",
        f"Written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.",
        "",
    ]
    return "\n".join(lines)


def _num(value, scale=1.0, unit=""):
    return "-" if not value else f"{value / scale:.2f}{unit}"


def _div(a, b):
    return "-" if not (a and b) else f"{a / b:.2f}x"


def _speed_ratio(ours, theirs):
    """Median over rounds of the ratio within a round: the two measurements of a round ran
    back to back, so a change of load between rounds cancels out."""
    if not (ours and theirs):
        return "-"
    wall = statistics.median(a / b for a, b in zip(ours["runs"], theirs["runs"]))
    cpu = statistics.median(a / b for a, b in zip(ours["cpu_runs"], theirs["cpu_runs"]))
    return f"**{wall:.2f}x** ({cpu:.2f}x)"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10, help="timed inference calls per process")
    parser.add_argument("--train-iters", type=int, default=5, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--classes", type=int, default=12)
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="passed to model.compile for both libraries (Keras's 'auto' "
        "means no XLA on a CPU-only machine)",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("float32", "mixed_float16", "mixed_bfloat16"),
        default="float32",
        help="Keras dtype policy for every model (mixed_float16 on a GPU)",
    )
    parser.add_argument(
        "--no-flops",
        dest="flops",
        action="store_false",
        help="skip counting GFLOPs (a profiler pass per model)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round, 2 inference calls, 1 training step, 1 warm-up",
    )
    parser.add_argument(
        "--install", action="store_true", help="pip-install the missing peer libraries first"
    )
    parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, help="markdown results file ('-' for stdout only)"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per child process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.iters, args.train_iters, args.warmup = 1, 2, 1, 1
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0

    needed = [PAIRS[p][2] for p in args.pairs]
    missing = missing_peers(needed)
    if missing and args.install:
        install_peers(missing)
        importlib.invalidate_caches()
        missing = missing_peers(needed)
    pairs = [p for p in args.pairs if PAIRS[p][2] not in missing]
    for name in missing:
        print(
            f"peer library {name!r} is not installed (pip install {PEER_PACKAGES[name]}, or "
            f"run with --install): skipping "
            f"{', '.join(p for p in args.pairs if PAIRS[p][2] == name)}",
            file=sys.stderr,
        )
    if not pairs:
        return 1

    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    results, loads = [], []
    for round_ in range(args.rounds):
        for pair in pairs:
            for mode in args.modes:
                for key in PAIRS[pair][:2]:  # A then B: the libraries alternate
                    spec = {
                        "model": key,
                        "mode": mode,
                        "batch": args.batch,
                        "size": args.size,
                        "classes": args.classes,
                        "jit_compile": jit,
                        "warmup": args.warmup,
                        "policy": args.mixed_precision,
                        "iters": args.iters if mode == "inference" else args.train_iters,
                        # counted once, after the timing, in the first round
                        "flops": args.flops and round_ == 0 and mode == "inference",
                    }
                    r = spawn(spec, args.timeout)
                    results.append(r)
                    loads.append(r["load_at_start"])
                    print(
                        f"round {round_ + 1}/{args.rounds} {key:34s} {mode:9s} "
                        f"{args.batch / r['median_s']:7.2f} img/s  (load {r['load_at_start']:.2f}, "
                        f"build {r['build_s']:.0f}s, warm-up {r['warmup_s']:.0f}s)",
                        flush=True,
                    )

    command = "python benchmarks/peers.py" + "".join(f" {a}" for a in argv)
    text = markdown(summarize(results, args.batch), pairs, args, loads, command)
    print("\n" + text)
    if args.output != "-":
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text)
        raw = os.path.splitext(args.output)[0] + ".json"
        with open(raw, "w") as f:
            json.dump({"argv": argv, "results": results}, f, indent=1)
        print(f"wrote {args.output} and {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
