"""The ``kerasseg`` console script.

    kerasseg models | datasets
    kerasseg train    --model unet --backbone resnet50 --dataset camvid --data-dir DIR \\
                      --epochs 50 --batch-size 8 --crop-size 360 480 --output runs/x
    kerasseg evaluate --checkpoint runs/x/best.keras --dataset camvid --data-dir DIR --split test
    kerasseg predict  --checkpoint runs/x/best.keras photo.jpg ... --output preds/
    kerasseg export   --checkpoint runs/x/best.keras --format savedmodel --output exported/
    kerasseg demo     [--output ./kerasseg_demo]

Bad names and paths, and bad data files (a colour or JPEG mask, a corrupt image, a label value the
dataset does not define: found by a scan of the split's files before the model is built, or by
the input pipeline later), end with one line on stderr and exit status 2 (``--debug`` or
``KERASSEG_DEBUG=1`` shows the traceback and every TensorFlow log line); a run stopped by a NaN loss
exits with 1, an interrupted one with 130. Offline, ImageNet weights that are not in Keras's cache
are one line too, naming the file to fetch and ``--weights none``.

The console script enters through ``kerasseg_cli``, which imports this package without
TensorFlow: ``--help`` and ``models`` never import it, other commands import it when they start.
TensorFlow's start-up lines that its own ``TF_CPP_MIN_LOG_LEVEL`` (2 unless you set it) misses,
being printed before its logging is set up, are held back to that level; on a machine without an
NVIDIA driver the CUDA probe's ``failed call to cuInit`` and ``Could not find cuda drivers`` lines
are dropped too (with a driver they are real errors and stay). OpenCV's log lines are off unless
``OPENCV_LOG_LEVEL`` is set: a file it cannot decode is reported by kerasseg, naming it.
"""
import argparse
import ast
import json
import os
import re
import sys
import tempfile
import time

EXIT_USAGE = 2
DEMO_MARKER = ".kerasseg-demo"

# The demo: a small U-Net on the synthetic `shapes` set, sized to reach a validation mIoU
# above 0.8 within three minutes on two CPU cores (the seed fixes the outcome).
DEMO = dict(
    model="unet",
    backbone=None,
    weights=None,
    model_options={"filters": 8},
    dataset_options={"num_images": 2000},
    val_dataset_options={},
    epochs=12,
    steps_per_epoch=100,
    batch_size=8,
    crop_size=64,
    optimizer="adam",
    learning_rate=1e-2,
    warmup_steps=50,
    augment={"scale_range": None, "photometric": False},
    val_batch_size=1,
    val_crop_size=None,
)


# `kerasseg models` without importing a model: each architecture's default backbone (None: its
# own encoder) and the backbone names. A test checks both against the registries.
DEFAULT_BACKBONES = {
    "attention_unet": "resnet50", "deeplabv3": "resnet50", "deeplabv3plus": "resnet50",
    "fc_densenet103": None, "fc_densenet56": None, "fc_densenet67": None, "fcn16s": "vgg16",
    "fcn32s": "vgg16", "fcn8s": "vgg16", "fpn": "resnet50", "linknet": "resnet50",
    "pspnet": "resnet50", "refinenet": "resnet50", "segnet": "vgg16", "unet": None,
    "unetpp": "resnet50",
}
BACKBONE_NAMES = (
    "convnext_base", "convnext_small", "convnext_tiny", "densenet121", "densenet169",
    "densenet201", "efficientnetb0", "efficientnetb1", "efficientnetb2", "efficientnetb3",
    "efficientnetb4", "efficientnetb5", "efficientnetb6", "efficientnetb7", "efficientnetv2b0",
    "efficientnetv2b1", "efficientnetv2b2", "efficientnetv2b3", "efficientnetv2l",
    "efficientnetv2m", "efficientnetv2s", "inceptionv3", "mobilenetv2", "mobilenetv3large",
    "mobilenetv3small", "resnet101", "resnet101v2", "resnet152", "resnet152v2", "resnet50",
    "resnet50v2", "vgg16", "vgg19", "xception",
)


class UsageError(Exception):
    """A bad argument the user can fix; printed as one line, exit status 2."""


# --------------------------------------------------------------------------- start-up

# absl's log line: severity letter, MMDD, time, thread, file:line]
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+\s+\S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to"
# What TensorFlow prints, probing for CUDA, where no NVIDIA driver is installed.
_CUDA_PROBE = ("failed call to cuInit", "Could not find cuda drivers", "cudart_stub.cc")


def _min_log_level():
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def nvidia_driver_present():
    """Whether this machine has an NVIDIA driver (so that TensorFlow may see a GPU)."""
    if not sys.platform.startswith("linux") or os.path.exists("/proc/driver/nvidia/version"):
        return True
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


def _noise(line, level, no_driver):
    if no_driver and any(probe in line for probe in _CUDA_PROBE):
        return True
    if line.startswith(_ABSL_BANNER):
        return level >= 1
    match = _ABSL_LINE.match(line)
    return bool(match) and "IWEF".index(match.group(1)) < level


def default_onednn():
    """Turn TensorFlow's oneDNN kernels on for the CLI where the user has not chosen.

    TensorFlow enables oneDNN by itself only on x86 CPUs with the newer vector extensions
    (AVX-512 VNNI/BF16, AMX); elsewhere, e.g. on AMD EPYC Zen 3, it runs its generic kernels,
    which train a ResNet50 U-Net ~1.6-1.8x slower (benchmarks/onednn.py). kerasseg's layers
    are exact under both (tests/test_onednn.py), so the CLI asks for oneDNN on every x86 CPU;
    ``TF_ENABLE_ONEDNN_OPTS=0`` keeps the generic kernels. Library users decide for themselves.
    """
    import platform

    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _import_tensorflow(debug=False):
    """Import TensorFlow, holding back the start-up lines described in the module docstring."""
    if "tensorflow" in sys.modules:
        return
    default_onednn()  # read by TensorFlow once, when it loads
    if debug or not sys.platform.startswith("linux"):
        import tensorflow  # noqa: F401
        return
    level, no_driver = _min_log_level(), not nvidia_driver_present()
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            if no_driver:
                tf.config.list_physical_devices("GPU")  # the CUDA probe, now, while captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(True) if not _noise(line, level, no_driver)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


# --------------------------------------------------------------------------- helpers


def _parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _options(pairs, flag):
    """['filters=16', 'name=x'] -> {'filters': 16, 'name': 'x'}."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE; got {pair!r}.")
        out[key.strip().replace("-", "_")] = _parse_value(value.strip())
    return out


def _none_or(value):
    return None if value is None or str(value).lower() in ("none", "null", "") else value


def _crop(values):
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise UsageError(f"--crop-size takes one or two integers (height [width]); got {values}.")
    return tuple(values) if len(values) == 2 else (values[0], values[0])


def _check_dataset(name, data_dir):
    from kerasseg import datasets

    if name not in datasets.list_datasets():
        raise UsageError(f"unknown dataset {name!r}; valid datasets: "
                         f"{', '.join(datasets.list_datasets())}.")
    if data_dir is None and _needs_data_dir(name):
        raise UsageError(f"dataset {name!r} reads files: pass --data-dir (the folder holding "
                         f"its official archive's top folder).")
    if data_dir is not None and not os.path.isdir(os.path.expanduser(data_dir)):
        raise UsageError(f"data folder not found: {data_dir!r} (--data-dir of dataset {name!r}).")


def _needs_data_dir(name):
    try:
        from kerasseg.datasets import _registry

        return bool(_registry._entry(name).needs_data_dir)
    except Exception:  # noqa: BLE001 - the loader will say so itself
        return False


def _check_model(name, backbone):
    import kerasseg

    if name not in kerasseg.list_models():
        raise UsageError(f"unknown model {name!r}; valid models: "
                         f"{', '.join(kerasseg.list_models())}.")
    if backbone not in (None, "default") and backbone not in kerasseg.list_backbones():
        raise UsageError(f"unknown backbone {backbone!r}; valid backbones: "
                         f"{', '.join(kerasseg.list_backbones())}.")


def _load_checkpoint(path):
    if not os.path.isfile(path):
        raise UsageError(f"checkpoint not found: {path!r}.")
    import keras

    import kerasseg

    kerasseg._import_all()  # registers the custom layers, losses and metrics (lazy import)
    return keras.models.load_model(path, compile=False)


def _labels_of(checkpoint, dataset, num_classes):
    """(class names, palette) for a checkpoint: from --dataset, else the run's run.json, else
    generic names and the default palette."""
    import numpy as np

    from kerasseg import visualize
    from kerasseg.train import _dataset_meta, load_run_info

    if dataset is not None:
        meta = _dataset_meta(dataset, None, {})
        names, colours = list(meta.class_names), meta.palette
    else:
        run = load_run_info(checkpoint)
        names, colours = run.get("class_names"), run.get("palette")
    if not names or len(names) != num_classes:
        names = [f"class_{i}" for i in range(num_classes)]
    colours = None if colours is None else np.asarray(colours, np.uint8)
    if colours is None or colours.shape != (num_classes, 3):
        colours = visualize.palette(num_classes)
    return names, colours


def _num_classes(model):
    """Classes a checkpoint predicts: its output channels, 2 for a one-channel binary model."""
    return max(2, int(model.outputs[0].shape[-1]))


def _say(text=""):
    print(text, flush=True)


# --------------------------------------------------------------------------- commands


def cmd_models(args):
    # From the static tables above: listing the models must not import TensorFlow.
    _say(f"{'model':<16} default backbone")
    for name in sorted(DEFAULT_BACKBONES):
        backbone = DEFAULT_BACKBONES[name]
        _say(f"{name:<16} {backbone if backbone is not None else '(none: own encoder)'}")
    _say()
    _say("backbones: " + ", ".join(sorted(BACKBONE_NAMES)))
    return 0


def cmd_datasets(args):
    from kerasseg import datasets

    _say(f"{'dataset':<14} {'classes':>7}  data")
    for name in datasets.list_datasets():
        try:
            info = datasets.info(name)
            classes = str(info.num_classes) if info.num_classes else "?"
        except Exception:  # noqa: BLE001 - e.g. `folder` describes itself from its files
            classes = "?"
        where = "--data-dir" if _needs_data_dir(name) else "generated (no files)"
        _say(f"{name:<14} {classes:>7}  {where}")
    return 0


def cmd_train(args):
    from kerasseg import train as training

    backbone = "default" if args.backbone is None else _none_or(args.backbone)
    _check_model(args.model, backbone)
    _check_dataset(args.dataset, args.data_dir)
    weights = _none_or(args.weights)
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise UsageError(f"weights file not found: {weights!r} (--weights takes imagenet, none "
                         f"or a path).")
    options = _options(args.dataset_option, "--dataset-option")
    loss = _parse_loss(args.loss, args.dataset, args.data_dir, options) if args.loss else None
    from kerasseg.backbones import WeightsUnavailableError

    try:
        result = _train(training, args, backbone, weights, loss)
    except WeightsUnavailableError as error:
        raise UsageError(f"{error} On the command line: --weights none.") from None
    if not result.chief:
        return 1 if result.diverged else 0
    _say(f"trained {result.epochs - result.initial_epoch} epoch(s) in {result.seconds:.0f} s")
    if result.best_value is not None:
        _say(f"best validation mIoU {result.best_value:.4f} (epoch {result.best_epoch}): "
             f"{result.best_path}")
    _say(f"last checkpoint: {result.last_path}")
    _say(f"history: {os.path.join(result.output, 'history.csv')}, curves: "
         f"{os.path.join(result.output, 'curves.png')}"
         + (f", TensorBoard: {result.logs_dir}" if result.logs_dir else ""))
    return 1 if result.diverged else 0


def _train(training, args, backbone, weights, loss):
    return training.train(
        args.model, args.dataset, output=args.output, backbone=backbone, weights=weights,
        data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size,
        crop_size=_crop(args.crop_size), steps_per_epoch=args.steps_per_epoch,
        val_steps=args.val_steps, val_batch_size=args.val_batch_size,
        val_crop_size=_crop(args.val_crop_size), optimizer=args.optimizer,
        learning_rate=args.lr, weight_decay="default" if args.weight_decay is None
        else (args.weight_decay or None), warmup_steps=args.warmup_steps, loss=loss,
        mixed_precision=args.mixed_precision,
        jit_compile="auto" if args.jit_compile is None else args.jit_compile,
        strategy=args.strategy, seed=args.seed, val_split=_none_or(args.val_split),
        model_options=_options(args.model_option, "--model-option"),
        dataset_options=_options(args.dataset_option, "--dataset-option"),
        augment=_options(args.augment, "--augment"), tensorboard=not args.no_tensorboard,
        overwrite=args.overwrite, check=not args.no_file_check,
        binary=True if args.binary else "auto")


def _parse_loss(spec, dataset, data_dir, options=None):
    """'cross_entropy+0.5*dice' -> the combined loss, with the dataset's ignore index."""
    from kerasseg import losses
    from kerasseg.train import _dataset_meta

    ignore = _dataset_meta(dataset, data_dir, dict(options or {})).ignore_index
    total = None
    for term in spec.split("+"):
        weight, _, name = term.strip().rpartition("*")
        name = {"ce": "cross_entropy", "crossentropy": "cross_entropy"}.get(name, name)
        try:
            loss = losses.get(name, ignore_index=ignore)
            weight = float(weight) if weight else 1.0
        except ValueError as error:
            raise UsageError(f"--loss {spec!r}: {error}") from None
        loss = loss * weight if weight != 1.0 else loss
        total = loss if total is None else total + loss
    return total


def cmd_evaluate(args):
    from kerasseg import metrics
    from kerasseg.train import check_split, default_verbose, evaluate, load_run_info

    if not os.path.isfile(args.checkpoint):
        raise UsageError(f"checkpoint not found: {args.checkpoint!r}.")
    dataset = args.dataset or load_run_info(args.checkpoint).get("dataset")
    if dataset is None:
        raise UsageError("pass --dataset (the checkpoint's folder has no run.json naming one).")
    _check_dataset(dataset, args.data_dir)
    options = _options(args.dataset_option, "--dataset-option")
    if not args.dataset_option and not args.dataset:
        # The run's validation options describe held-out splits (its training options may
        # e.g. ask for a larger generated training set).
        run = load_run_info(args.checkpoint)
        options = run.get("val_dataset_options", run.get("dataset_options", {}))
    if not args.no_file_check:  # before the model is loaded: a bad file is found in seconds
        check_split(dataset, args.data_dir, args.split, options)
    model = _load_checkpoint(args.checkpoint)
    summary = evaluate(model, dataset, data_dir=args.data_dir, split=args.split,
                       batch_size=args.batch_size, crop_size=_crop(args.crop_size),
                       steps=args.steps, dataset_options=options,
                       verbose=1 if default_verbose() == 1 else 0, check=False)
    _say(f"{dataset} {args.split}: mIoU {summary['mean_iou']:.4f}  pixel accuracy "
         f"{summary['pixel_accuracy']:.4f}  mean accuracy {summary['mean_accuracy']:.4f}")
    _say(metrics.format_report(summary))
    if args.json:
        record = {"checkpoint": os.path.abspath(args.checkpoint), "dataset": dataset,
                  "split": args.split, **summary}
        folder = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
        _say(f"wrote {args.json}")
    return 0


def _read_rgb(path):
    import cv2

    if not os.path.isfile(path):
        raise UsageError(f"image not found: {path!r}.")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f"could not read image {path!r} (not an image format OpenCV knows).")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def cmd_predict(args):
    from kerasseg import inference, visualize

    if not os.path.isfile(args.checkpoint):
        raise UsageError(f"checkpoint not found: {args.checkpoint!r}.")
    for path in args.images:
        if not os.path.isfile(path):
            raise UsageError(f"image not found: {path!r}.")
    model = _load_checkpoint(args.checkpoint)
    num_classes = _num_classes(model)
    _, colours = _labels_of(args.checkpoint, args.dataset, num_classes)
    os.makedirs(args.output, exist_ok=True)
    for path in args.images:
        image = _read_rgb(path)
        labels = inference.predict(model, image, tile=_crop(args.tile), flip=args.flip)
        stem = os.path.splitext(os.path.basename(path))[0]
        written = [
            visualize.save_image(os.path.join(args.output, f"{stem}_mask.png"),
                                 visualize.colorize(labels, colours)),
            visualize.save_image(os.path.join(args.output, f"{stem}_overlay.png"),
                                 visualize.overlay(image, labels, colours, alpha=args.alpha)),
        ]
        if num_classes <= 256:
            written.append(visualize.save_image(os.path.join(args.output, f"{stem}_labels.png"),
                                                labels.astype("uint8")))
        _say(f"{path}: " + ", ".join(written))
    return 0


def cmd_export(args):
    from kerasseg import export

    model = _load_checkpoint(args.checkpoint)
    fmt = args.format.lower()
    options = {"overwrite": args.overwrite}
    if fmt == "savedmodel":
        names, colours = _labels_of(args.checkpoint, args.dataset, _num_classes(model))
        options.update(class_names=names, palette=colours)
    elif args.input_size:
        options["input_size"] = _crop(args.input_size)
    try:
        path = export.export(model, args.output, format=fmt, **options)
    except FileExistsError as error:
        raise UsageError(f"{error} (pass --overwrite to replace it)") from None
    _say(f"exported {fmt} to {path or args.output}")
    return 0


# --------------------------------------------------------------------------- demo


def _prepare_demo_folder(folder, overwrite):
    """Create the demo's folder, or reuse one an earlier demo made; never clobber a user's."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"demo output {folder!r} exists and is not a folder.")
    if os.path.isdir(folder) and os.listdir(folder) and not overwrite \
            and not os.path.exists(os.path.join(folder, DEMO_MARKER)):
        raise UsageError(f"demo output folder {folder!r} is not empty and was not made by the "
                         f"demo; choose another with --output, or pass --overwrite to write "
                         f"into it anyway.")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, DEMO_MARKER), "w") as f:
        f.write("Written by `kerasseg demo`; the demo may overwrite its files here.\n")


def cmd_demo(args):
    started = time.time()
    folder = os.path.abspath(args.output)
    _prepare_demo_folder(folder, args.overwrite)

    from kerasseg import datasets, export, inference, losses, metrics, visualize
    from kerasseg import train as training

    settings = dict(DEMO, epochs=args.epochs or DEMO["epochs"])
    settings["dataset_options"] = {**DEMO["dataset_options"], "seed": args.seed}
    settings["val_dataset_options"] = {**DEMO["val_dataset_options"], "seed": args.seed}
    run_dir = os.path.join(folder, "run")
    _say(f"kerasseg demo: a small U-Net learns the synthetic 'shapes' set "
         f"({settings['epochs']} epochs of {settings['steps_per_epoch']} steps, "
         f"{settings['crop_size']} px crops); outputs go to {folder}")
    result = training.train(dataset="shapes", output=run_dir, seed=args.seed, overwrite=True,
                            tensorboard=False, loss=losses.CrossEntropy() + losses.DiceLoss(),
                            **settings)
    if result.diverged:
        return 1
    info = datasets.info("shapes")
    model = result.model  # the last epoch's weights (last.keras): no choice made on val

    # Each validation image at its own size, padded the way inference.predict pads it.
    summary = training.evaluate(model, "shapes", split="val", verbose=0,
                                dataset_options=settings["val_dataset_options"])
    with open(os.path.join(folder, "validation.json"), "w") as f:
        json.dump(summary, f, indent=2)

    samples = list(datasets.load("shapes", split="val", **settings["val_dataset_options"])
                   .take(args.samples).as_numpy_iterator())
    images = [image for image, _ in samples]
    truths = [mask for _, mask in samples]
    predictions = inference.predict(model, images)
    overlay_dir = os.path.join(folder, "overlays")
    os.makedirs(overlay_dir, exist_ok=True)
    for i, (image, labels) in enumerate(zip(images, predictions)):
        visualize.save_image(os.path.join(overlay_dir, f"val_{i:02d}.png"),
                             visualize.overlay(image, labels, info.palette))
    grid_path = os.path.join(folder, "predictions.png")
    visualize.grid(images, truths, predictions, info.palette, path=grid_path)
    saved = os.path.join(folder, "savedmodel")
    export.saved_model(model, saved, overwrite=True, class_names=list(info.class_names),
                       palette=info.palette)
    elapsed = time.time() - started

    _say("")
    _say(metrics.format_report(summary))
    _say("")
    _say(f"validation mIoU: {summary['mean_iou']:.4f}  pixel accuracy: "
         f"{summary['pixel_accuracy']:.4f}  ('shapes' val split, "
         f"{summary['total_pixels']:.0f} pixels, final model)")
    _say(f"time: {elapsed:.0f} s")
    _say(f"run (best.keras, last.keras, history.csv, curves.png): {run_dir}")
    _say(f"overlays: {overlay_dir}")
    _say(f"image | truth | prediction: {grid_path}")
    _say(f"SavedModel: {saved}")
    _say(f"scores: {os.path.join(folder, 'validation.json')}")
    _say(f"try: kerasseg predict --checkpoint {os.path.join(run_dir, 'last.keras')} "
         f"IMAGE --output predictions/")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kerasseg", description="Semantic segmentation with Keras 3: train, evaluate, "
        "predict, export.")
    debug_help = ("show tracebacks and every TensorFlow log line instead of one-line errors "
                  "(also KERASSEG_DEBUG=1)")
    parser.add_argument("--debug", action="store_true", help=debug_help)
    # Each command takes --debug too; SUPPRESS keeps a subcommand's default from hiding the
    # top-level flag.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help=debug_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name, **kwargs):
        return sub.add_parser(name, parents=[common], **kwargs)

    command("models", help="list the architectures and their default backbones")
    command("datasets", help="list the registered datasets")

    p = command("train", help="train a model; checkpoints go to --output")
    p.add_argument("--model", default="unet", help="architecture (see `kerasseg models`)")
    p.add_argument("--backbone", default=None,
                   help="encoder (default: the model's own; 'none' for the encoder-free variant)")
    p.add_argument("--dataset", required=True, help="dataset name (see `kerasseg datasets`)")
    p.add_argument("--data-dir", help="folder holding the dataset's archive top folder")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8, help="global batch size")
    p.add_argument("--crop-size", type=int, nargs="+", default=[512], metavar="PX",
                   help="training crop: SIZE or HEIGHT WIDTH (default 512)")
    p.add_argument("--steps-per-epoch", type=int, help="default: one pass over the split")
    p.add_argument("--val-steps", type=int, help="default: the whole validation split")
    p.add_argument("--val-batch-size", type=int, default=1)
    p.add_argument("--val-crop-size", type=int, nargs="+", metavar="PX",
                   help="pad/shrink validation images to this size (default: native size)")
    p.add_argument("--val-split", default="val", help="validation split ('none' to skip)")
    p.add_argument("--weights", default="imagenet", help="imagenet, none or a weights file")
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adamw", "adam"))
    p.add_argument("--lr", type=float, help="initial learning rate (sgd 0.01, adamw 1e-4, "
                   "adam 1e-3); decays with power 0.9 over the run")
    p.add_argument("--weight-decay", type=float, help="default sgd 5e-4, adamw 0.01; 0 for none")
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--loss", help="e.g. cross_entropy, dice, cross_entropy+0.5*dice "
                   "(default cross_entropy); a binary loss (binary_cross_entropy, alias bce) "
                   "means --binary")
    p.add_argument("--binary", action="store_true",
                   help="binary (background/foreground) training on a 2-class set, e.g. a "
                   "folder of 0/255 or 0/1 masks: a one-channel sigmoid model, loss "
                   "binary_cross_entropy unless --loss says otherwise (+dice scores the "
                   "foreground), metrics mIoU (both classes) and foreground IoU; also implied "
                   "by a binary --loss")
    p.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 on GPU, mixed_bfloat16 on CPU/TPU")
    p.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA compilation (default: Keras's choice)")
    p.add_argument("--strategy", default="none", choices=("none", "mirrored", "multiworker", "tpu"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="extra builder argument, e.g. filters=32 (repeatable)")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="extra loader argument, e.g. num_images=200 (repeatable)")
    p.add_argument("--augment", action="append", metavar="KEY=VALUE",
                   help="data.prepare option, e.g. scale_range=None (repeatable)")
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--no-file-check", action="store_true",
                   help="skip the scan of the split's image and label files before training")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished run in --output")
    p.add_argument("--output", required=True, help="run folder")

    p = command("evaluate", help="mIoU, accuracy and per-class IoU of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", help="default: the dataset the run trained on (run.json)")
    p.add_argument("--data-dir")
    p.add_argument("--split", default="val")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--crop-size", type=int, nargs="+", metavar="PX",
                   help="pad/shrink images to this size (default: native size)")
    p.add_argument("--steps", type=int, help="evaluate only this many batches")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--no-file-check", action="store_true",
                   help="skip the scan of the split's image and label files before evaluating")

    p = command("predict", help="colour masks and overlays for images")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--output", required=True, help="folder for the PNGs")
    p.add_argument("--dataset", help="palette of this dataset (default: the run's)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    p.add_argument("--tile", type=int, nargs="+", metavar="PX", help="sliding-window size")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")

    p = command("export", help="SavedModel, TFLite or ONNX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", default="savedmodel", choices=("savedmodel", "tflite", "onnx"))
    p.add_argument("--output", required=True)
    p.add_argument("--dataset", help="class names and palette of this dataset (default: the run's)")
    p.add_argument("--input-size", type=int, nargs="+", metavar="PX",
                   help="fixed input size for tflite/onnx")
    p.add_argument("--overwrite", action="store_true")

    p = command("demo", help="train on the synthetic shapes set in about two minutes")
    p.add_argument("--output", default="kerasseg_demo")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty folder the demo did not create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    p.add_argument("--samples", type=int, default=6, help="validation images to draw")
    return parser


COMMANDS = {"models": cmd_models, "datasets": cmd_datasets, "train": cmd_train,
            "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
            "demo": cmd_demo}


def _is_data_error(error):
    registry = sys.modules.get("kerasseg.datasets._registry")
    return registry is not None and isinstance(error, registry.DataError)


_outcome = {"data_error": False}


def _one_line_warnings():
    """Show kerasseg's data warnings (a category with ``kerasseg_one_line``) as one line on
    stderr, not Python's two (location, then source line); other warnings as usual."""
    import warnings

    if getattr(warnings.showwarning, "_kerasseg", False):
        return
    shown = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if getattr(category, "kerasseg_one_line", False):
            text = " ".join(str(message).split())
            print(f"kerasseg: warning: {text}", file=file or sys.stderr, flush=True)
            return
        shown(message, category, filename, lineno, file, line)

    showwarning._kerasseg = True
    warnings.showwarning = showwarning


def main(argv=None):
    """Run one command; returns its exit status (0 done, 1 diverged, 2 error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False) or os.environ.get("KERASSEG_DEBUG"))
    if not debug:
        _one_line_warnings()
    _outcome["data_error"] = False
    if not debug and "cv2" not in sys.modules:  # OpenCV reads it once, when imported
        os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
    if args.command != "models":
        _import_tensorflow(debug)
    if debug:
        import keras

        keras.config.disable_traceback_filtering()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"kerasseg {args.command}: interrupted" + (
            "; run the same command again to resume" if args.command == "train" else ""),
            file=sys.stderr)
        return 130
    except (UsageError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
            ImportError, ConnectionError) as error:
        if debug:
            raise
        _outcome["data_error"] = _is_data_error(error)
        message = " ".join(str(error).split()) or type(error).__name__
        if len(message) > 600:  # e.g. an error quoting a whole tensor
            message = message[:600] + " ... (--debug shows it all)"
        print(f"kerasseg {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def console(argv=None):
    """The console script: ``main``, then exit. After a data error the process ends at once
    (``os._exit``), once its output is flushed: a tf.data pipeline that failed may still have
    threads running the loader's Python code, which can hang or abort the interpreter's exit."""
    code = main(argv)
    if _outcome["data_error"]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(console())
