"""Throughput of kerasseg's Mask R-CNN R50-FPN against torchvision's maskrcnn_resnet50_fpn.

    python benchmarks/mask_rcnn_peers.py [--install] [--rounds 2] [--size 384] [--batch 2]

Both models are built with random weights (kerasseg ``mask_rcnn(90, backbone="resnet50",
weights=None)``, torchvision ``maskrcnn_resnet50_fpn(weights=None, weights_backbone=None,
num_classes=91, min_size=S, max_size=S)``: 90 object classes plus background on both sides, plain
trainable batch norms on both) and fed the same S x S batch and the same ground-truth boxes
(a few random boxes per image, each with a filled-rectangle mask). Inference: kerasseg runs
``model(images, training=False)`` inside a ``tf.function`` on float32 [B, S, S, 3] in [0, 255];
torchvision runs ``model(list of B [3, S, S] tensors in [0, 1])`` in eval mode under
``torch.inference_mode()``. Training: one SGD step (lr 0.01, momentum 0.9) with all five
losses, kerasseg through ``train_on_batch``, torchvision through loss, backward and step.

Every (library, mode) runs in a fresh process: build, warm up (kerasseg's first training step
traces its graph, 20-60 s, never counted), then time ``--iterations`` calls; a round runs
kerasseg inference, torchvision inference, kerasseg training, torchvision training, and the
table gives medians over ``--rounds`` rounds. By default torchvision runs twice per mode, with
torch's OpenMP defaults and with ``OMP_WAIT_POLICY=PASSIVE`` (``--torch-omp``): on a machine
shared with other work torch's spinning OpenMP threads lose far more time than TensorFlow's
sleeping pool threads. torchvision lives in its own virtualenv (a
CUDA build of torch that runs on the CPU; never a kerasseg dependency): ``--install`` creates
it, otherwise ``--torch-python`` points at its interpreter and a missing one skips the peer.

This file runs under both interpreters: its top level imports only the standard library.
"""

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUTPUT = os.path.join(HERE, "results", "mask_rcnn_cpu.md")
DEFAULT_TORCH_PYTHON = "/tmp/torchvenv/bin/python"
TORCH_REQUIREMENTS = ("torch==2.14.1", "torchvision==0.29.1")
LIBRARIES = ("kerasseg", "torchvision", "torchvision_passive")
LABELS = {
    "kerasseg": "kerasseg",
    "torchvision": "torchvision",
    "torchvision_passive": "torchvision, passive",
}
MODEL_NAMES = {
    "kerasseg": 'kerasseg `mask_rcnn(90, backbone="resnet50", weights=None)`',
    "torchvision": "torchvision `maskrcnn_resnet50_fpn(weights=None, num_classes=91)`",
}
# Environment of each library's children (on top of the parent's).
CHILD_ENV = {"torchvision_passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
MODES = ("inference", "training")
NUM_CLASSES = 90  # object classes; torchvision counts background too (91)


# ----------------------------------------------------------------------------------------
# The shared batch: ground truth as plain lists, made once by the parent.
# ----------------------------------------------------------------------------------------


def make_boxes(batch, size, instances, seed=0):
    """[batch][instances] of (y1, x1, y2, x2, class 0..89) in pixels, integer corners so
    that the rectangle masks cover exactly the box."""
    rng = random.Random(seed)
    out = []
    for _ in range(batch):
        image = []
        for _ in range(instances):
            h = rng.randint(size // 8, size // 2)
            w = rng.randint(size // 8, size // 2)
            y1, x1 = rng.randint(0, size - h), rng.randint(0, size - w)
            image.append([y1, x1, y1 + h, x1 + w, rng.randrange(NUM_CLASSES)])
        out.append(image)
    return out


def _images(np, batch, size):
    """float32 [B, S, S, 3] in [0, 255], the same values on both sides."""
    return np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _masks(np, boxes, size):
    masks = np.zeros((len(boxes), len(boxes[0]), size, size), "uint8")
    for b, image in enumerate(boxes):
        for m, (y1, x1, y2, x2, _) in enumerate(image):
            masks[b, m, y1:y2, x1:x2] = 1
    return masks


# ----------------------------------------------------------------------------------------
# Children: build one model, time one mode, print one JSON line.
# ----------------------------------------------------------------------------------------


def _time(step, warmup, iterations):
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    warmup_s = time.perf_counter() - start
    times, cpu = [], []
    for _ in range(iterations):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return {
        "seconds": times,
        "median_s": statistics.median(times),
        "cpu_seconds": cpu,
        "median_cpu_s": statistics.median(cpu),
        "warmup_s": warmup_s,
    }


def child_kerasseg(spec):
    import keras
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    import kerasseg

    batch, size, boxes = spec["batch"], spec["size"], spec["boxes"]
    start = time.perf_counter()
    model = kerasseg.mask_rcnn(NUM_CLASSES, backbone="resnet50", weights=None)
    build_s = time.perf_counter() - start
    images = tf.constant(_images(np, batch, size))
    info = {}
    if spec["mode"] == "inference":
        infer = tf.function(lambda x: model(x, training=False))

        def step():
            out = infer(images)
            info["detections"] = float(np.mean(out["num_detections"].numpy()))
    else:
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        targets = {
            "boxes": np.array([[b[:4] for b in image] for image in boxes], "float32"),
            "classes": np.array([[b[4] for b in image] for image in boxes], "int32"),
            "masks": _masks(np, boxes, size),
        }

        def step():
            logs = model.train_on_batch(images, targets, return_dict=True)
            info["loss"] = float(logs["loss"])

    result = _time(step, spec["warmup"], spec["iterations"])
    result.update(
        info,
        build_s=build_s,
        params=int(model.count_params()),
        onednn=bool(_pywrap_util_port.IsMklEnabled()),
        tf_version=tf.__version__,
        keras_version=keras.__version__,
        threads=[
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        ],
    )
    return result


def child_torchvision(spec):
    import numpy as np
    import torch
    import torchvision
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    batch, size, boxes = spec["batch"], spec["size"], spec["boxes"]
    start = time.perf_counter()
    model = maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=NUM_CLASSES + 1,
        min_size=size,
        max_size=size,
    )
    build_s = time.perf_counter() - start
    array = _images(np, batch, size)
    images = [
        torch.from_numpy(array[b]).permute(2, 0, 1).contiguous() / 255.0 for b in range(batch)
    ]
    info = {}
    if spec["mode"] == "inference":
        model.eval()

        def step():
            with torch.inference_mode():
                out = model(images)
            info["detections"] = float(np.mean([len(o["boxes"]) for o in out]))
    else:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        masks = _masks(np, boxes, size)
        targets = [
            {
                # (y1, x1, y2, x2) -> (x1, y1, x2, y2); classes 0..89 -> labels 1..90
                "boxes": torch.tensor(
                    [[b[1], b[0], b[3], b[2]] for b in image], dtype=torch.float32
                ),
                "labels": torch.tensor([b[4] + 1 for b in image], dtype=torch.int64),
                "masks": torch.from_numpy(masks[i]),
            }
            for i, image in enumerate(boxes)
        ]

        def step():
            losses = model(images, targets)
            loss = sum(losses.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            info["loss"] = float(loss.detach())

    result = _time(step, spec["warmup"], spec["iterations"])
    result.update(
        info,
        build_s=build_s,
        params=sum(p.numel() for p in model.parameters()),
        torch_version=torch.__version__,
        torchvision_version=torchvision.__version__,
        mkldnn=bool(torch.backends.mkldnn.is_available()),
        threads=[torch.get_num_threads(), torch.get_num_interop_threads()],
        torch_config=torch.__config__.parallel_info().splitlines()[:6],
    )
    return result


def run_child(spec):
    load = os.getloadavg()[0]
    result = (child_kerasseg if spec["library"] == "kerasseg" else child_torchvision)(spec)
    result["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    result.update(library=spec["library"], mode=spec["mode"], load_at_start=load)
    return result


# ----------------------------------------------------------------------------------------
# Parent: spawn the children alternately, collect, tabulate.
# ----------------------------------------------------------------------------------------


def torch_ready(python):
    if not os.path.exists(python):
        return False, f"{python} does not exist"
    proc = subprocess.run(
        [python, "-c", "import torch, torchvision"], capture_output=True, text=True
    )
    if proc.returncode:
        return False, proc.stderr.strip().splitlines()[-1:]
    return True, ""


def install_torch(python):
    venv = os.path.dirname(os.path.dirname(python))
    if not os.path.exists(python):
        print(f"creating the virtualenv {venv}", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    print("installing:", " ".join(TORCH_REQUIREMENTS), "(about 5.5 GB)", flush=True)
    subprocess.check_call([python, "-m", "pip", "install", *TORCH_REQUIREMENTS])


def spawn(python, spec, timeout):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **CHILD_ENV.get(spec["library"], {}))
    proc = subprocess.run(
        [python, os.path.abspath(__file__), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(
        f"child {spec['library']} ({spec['mode']}) failed with code "
        f"{proc.returncode}:\n{proc.stderr[-3000:]}"
    )


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarize(results, batch):
    """{(library, mode): {"ips": median img/s, "runs": img/s per round, "cpu_runs": img per
    CPU-second per round, "cores": CPU-s per wall-s per round, "loads", "last": the last
    child's result}}."""
    table = {}
    for r in results:
        entry = table.setdefault(
            (r["library"], r["mode"]), {"runs": [], "cpu_runs": [], "cores": [], "loads": []}
        )
        entry["runs"].append(batch / r["median_s"])
        entry["cpu_runs"].append(batch / r["median_cpu_s"])
        entry["cores"].append(sum(r["cpu_seconds"]) / sum(r["seconds"]))
        entry["loads"].append(r["load_at_start"])
        entry["last"] = r
    for entry in table.values():
        entry["ips"] = statistics.median(entry["runs"])
        entry["cpu_ips"] = statistics.median(entry["cpu_runs"])
    return table


def _ratio(table, peer, mode, key):
    ours, theirs = table.get(("kerasseg", mode)), table.get((peer, mode))
    if not (ours and theirs):
        return None
    return statistics.median(a / b for a, b in zip(ours[key], theirs[key]))


def markdown(table, libraries, args, loads, command):  # noqa: C901 - one report, top to bottom
    def cell(lib, mode, key="ips"):
        entry = table.get((lib, mode))
        return "-" if entry is None else f"{entry[key]:.3f}"

    def ratio(peer, mode, key="runs"):
        value = _ratio(table, peer, mode, key)
        return "-" if value is None else f"{value:.2f}x"

    def field(lib, name, default="?"):
        for mode in MODES:
            entry = table.get((lib, mode))
            if entry and name in entry["last"]:
                return entry["last"][name]
        return default

    peers = [lib for lib in libraries if lib != "kerasseg"]
    params = {lib: field(lib, "params", None) for lib in libraries}
    lines = [
        "# Mask R-CNN R50-FPN: kerasseg against torchvision, CPU throughput",
        "",
        f"Command: `{command}`",
        "",
        f"Batch {args.batch} at {args.size}x{args.size}, 90 object classes (+ background), random "
        f"weights, {args.instances} ground-truth boxes per image for training (the same boxes and "
        f"images on both sides). Each (library, mode) runs in a fresh process: "
        f"{args.warmup} warm-up call(s), then the median of {args.iterations} timed calls; a "
        "round runs every library's inference, then every library's training, kerasseg first, "
        f"and the images/s are medians over {args.rounds} round(s). Ratio = "
        "kerasseg / torchvision, the median over rounds of the ratio within a round; "
        "'img/CPU-s' is images per CPU-second of the process. "
        + (
            "torchvision runs with torch's default OpenMP settings and, as "
            "'torchvision, passive', with `OMP_WAIT_POLICY=PASSIVE` (its idle threads sleep "
            "instead of spinning; see the notes)."
            if "torchvision_passive" in libraries
            else ""
        ),
        "",
        "| library | model | parameters | inference img/s | training img/s | "
        "inference img/CPU-s | training img/CPU-s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for lib in libraries:
        p = params[lib]
        lines.append(
            f"| {LABELS[lib]} | {MODEL_NAMES[lib.split('_')[0]]} | "
            f"{'-' if p is None else f'{p / 1e6:.2f} M'} | "
            f"{cell(lib, 'inference')} | {cell(lib, 'training')} | "
            f"{cell(lib, 'inference', 'cpu_ips')} | {cell(lib, 'training', 'cpu_ips')} |"
        )
    for peer in peers:
        param_ratio = (
            "-"
            if None in (params["kerasseg"], params[peer])
            else f"{params['kerasseg'] / params[peer]:.3f}x"
        )
        lines.append(
            f"| **ratio** | kerasseg / {LABELS[peer]} | {param_ratio} | "
            f"**{ratio(peer, 'inference')}** | **{ratio(peer, 'training')}** | "
            f"{ratio(peer, 'inference', 'cpu_runs')} | {ratio(peer, 'training', 'cpu_runs')} |"
        )
    dets = {
        LABELS[lib]: table[(lib, "inference")]["last"].get("detections")
        for lib in libraries
        if (lib, "inference") in table
    }
    warm = {
        f"{LABELS[lib]} {mode}": table[(lib, mode)]["last"]["warmup_s"]
        for lib in libraries
        for mode in MODES
        if (lib, mode) in table
    }
    onednn_env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    lines += [
        "",
        "Per round: img/s [CPU-seconds per second of the timed calls, i.e. cores in use; "
        "1-minute load average as the process started]:",
        "",
    ]
    for mode in MODES:
        for lib in libraries:
            entry = table.get((lib, mode))
            if entry:
                lines.append(
                    f"- {LABELS[lib]}, {mode}: "
                    + ", ".join(
                        f"{v:.3f} [{c:.2f} cores; load {load:.1f}]"
                        for v, c, load in zip(entry["runs"], entry["cores"], entry["loads"])
                    )
                )
    lines += [
        "",
        "Detections per image at inference (last process; random weights, score threshold "
        "0.05): " + ", ".join(f"{k} {v:.1f}" for k, v in dets.items() if v is not None) + ". "
        "Warm-up time of the last process of each kind (not timed): "
        + ", ".join(f"{k} {v:.0f} s" for k, v in warm.items())
        + ".",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores ({platform.machine()}), shared with "
        "other work: 1-minute load average when the children started "
        + (
            f"min {min(loads):.2f}, median {statistics.median(loads):.2f}, max {max(loads):.2f}"
            if loads
            else "-"
        )
        + " (the benchmark itself keeps about 2 busy). "
        f"TF_ENABLE_ONEDNN_OPTS={'unset' if onednn_env is None else onednn_env} "
        f"(oneDNN {'on' if field('kerasseg', 'onednn', False) else 'off'} in TensorFlow); "
        f"TensorFlow {field('kerasseg', 'tf_version')}, Keras {field('kerasseg', 'keras_version')}"
        f", intra/inter-op threads {field('kerasseg', 'threads')} (0 = TensorFlow's default); "
        + (
            f"torch {field(peers[0], 'torch_version')}, torchvision "
            f"{field(peers[0], 'torchvision_version')} (mkldnn "
            f"{'available' if field(peers[0], 'mkldnn', False) else 'not available'}), "
            f"`torch.set_num_threads({os.cpu_count()})`, threads (intra, inter) "
            f"{field(peers[0], 'threads')}."
            if peers
            else "torchvision not run."
        ),
        f"Written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.",
        "",
        "Notes:",
        "",
        "- Parameters: Keras counts the backbone batch norms' moving mean and variance "
        "(2 x 26,560) as parameters, torch holds them as buffers; the layers are the same "
        "size (see `kerasseg.mask_rcnn`'s docstring).",
        "- With random weights both models keep their full 100 detections per image at "
        "inference (torchvision's random box head gave 800 to 2,800 of its 90,000 "
        "class scores over 0.05 with three seeds), so both run the mask head on 100 boxes, "
        "as a trained model does on a busy COCO image.",
        "- The machine is small and shared: trust figures only from runs whose processes had "
        "both cores (about 2 cores in use above at inference). Under oversubscription torch's "
        "OpenMP threads spin at their barriers while a sibling thread is descheduled, so with "
        "torch's defaults torchvision's wall time, and its CPU time (the spinning counts), grow "
        "far more than TensorFlow's (whose pool threads sleep). Seen on 2026-12-01 at a load "
        "average of about 5, batch 1: torchvision's inference took 5.4-8.1 s per 320x320 "
        "image, against 2.5-2.8 s with `OMP_WAIT_POLICY=PASSIVE` and about 1.4 s on a quiet "
        "machine. The passive rows are the fairer comparison on a loaded machine; on a "
        "dedicated one both should agree.",
        "- Both sides run the mask head in training on the positive ROIs they sampled (at "
        "most 128 per image; kerasseg pads to a fixed 128 only under XLA). Before kerasseg "
        "did so (2026-12-01), its fixed 128 padded slots made training 0.68x torchvision's; "
        f"with {args.instances} ground-truth boxes per image torchvision had 14, 34, 44 and "
        "47 positives in its first four steps (320x320, seed 0).",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=384, help="image side, a multiple of 32")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5, help="timed calls per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    parser.add_argument("--instances", type=int, default=4, help="ground-truth boxes per image")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON)
    parser.add_argument(
        "--torch-omp",
        choices=("default", "passive", "both"),
        default="both",
        help="torchvision with torch's default OpenMP waiting, with OMP_WAIT_POLICY=PASSIVE, "
        "or both (one process each per round)",
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="create the torch virtualenv at --torch-python's and pip-install "
        + " ".join(TORCH_REQUIREMENTS),
    )
    parser.add_argument(
        "--output", default=DEFAULT_OUTPUT, help="markdown results file ('-' for stdout only)"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per child process")
    parser.add_argument(
        "--report",
        metavar="JSON",
        help="write the markdown again from the raw timings of an earlier run (its .json) "
        "instead of measuring",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size % 32:
        parser.error("--size must be a multiple of 32")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0

    if args.report:
        with open(args.report) as f:
            raw = json.load(f)
        argv, results, output = raw["argv"], raw["results"], args.output
        args = parse_args(argv)
        args.output = output
        libraries = [lib for lib in LIBRARIES if any(r["library"] == lib for r in results)]
        command = "python benchmarks/mask_rcnn_peers.py" + "".join(f" {a}" for a in argv)
        loads = [r["load_at_start"] for r in results]
        text = markdown(summarize(results, args.batch), libraries, args, loads, command)
        print(text)
        if args.output != "-":
            with open(args.output, "w") as f:
                f.write(text)
            print(f"wrote {args.output}")
        return 0

    ok, why = torch_ready(args.torch_python)
    if not ok and args.install:
        install_torch(args.torch_python)
        ok, why = torch_ready(args.torch_python)
    libraries = ["kerasseg"]
    if ok:
        libraries += {
            "default": ["torchvision"],
            "passive": ["torchvision_passive"],
            "both": ["torchvision", "torchvision_passive"],
        }[args.torch_omp]
    else:
        print(
            f"torchvision is not usable from {args.torch_python} ({why}); run with --install "
            "or pass --torch-python: skipping the peer",
            file=sys.stderr,
        )

    boxes = make_boxes(args.batch, args.size, args.instances)
    pythons = {lib: args.torch_python for lib in libraries}
    pythons["kerasseg"] = sys.executable
    results, loads = [], []
    for round_ in range(args.rounds):
        for mode in args.modes:
            for lib in libraries:  # A then B: the libraries alternate
                spec = {
                    "library": lib,
                    "mode": mode,
                    "batch": args.batch,
                    "size": args.size,
                    "boxes": boxes,
                    "warmup": args.warmup,
                    "iterations": args.iterations,
                }
                r = spawn(pythons[lib], spec, args.timeout)
                results.append(r)
                loads.append(r["load_at_start"])
                print(
                    f"round {round_ + 1}/{args.rounds} {lib:19s} {mode:9s} "
                    f"{args.batch / r['median_s']:7.3f} img/s "
                    f"({args.batch / r['median_cpu_s']:.3f} img/CPU-s; load "
                    f"{r['load_at_start']:.2f}, build {r['build_s']:.0f} s, warm-up "
                    f"{r['warmup_s']:.0f} s)",
                    flush=True,
                )

    command = "python benchmarks/mask_rcnn_peers.py" + "".join(f" {a}" for a in argv)
    text = markdown(summarize(results, args.batch), libraries, args, loads, command)
    print("\n" + text)
    if args.output != "-":
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text)
        raw = os.path.splitext(args.output)[0] + ".json"
        with open(raw, "w") as f:
            json.dump({"argv": argv, "boxes": boxes, "results": results}, f, indent=1)
        print(f"wrote {args.output} and {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
