"""``kerasseg export``: a checkpoint as a SavedModel, a TFLite or an ONNX file.

A SavedModel and an ONNX file take images of any height and width. A TFLite file takes one
size: ``--input-size``, else the run's training crop (``crop_size`` in the run.json beside the
checkpoint), else the model's own fixed input size; with none of these it is a one-line error
asking for ``--input-size``. ``--input-size`` also fixes the height and width of an ONNX file,
and is refused for a SavedModel (which it would not change).
"""

from kerasseg.cli.checkpoint import (
    CHECKPOINT_HELP,
    labels_of,
    load_checkpoint,
    resolve_checkpoint,
    task_of,
)
from kerasseg.cli.common import UsageError, crop, say

HELP = "SavedModel, TFLite or ONNX"
DESCRIPTION = """\
A SavedModel and an ONNX file take uint8 images of any height and width. A TFLite file takes
one size: --input-size, else the run's training crop (crop_size in the run.json beside the
checkpoint), else the model's own fixed input size; it is an error when none of them is known.
--input-size fixes the height and width of an ONNX file too; a SavedModel refuses it."""
INPUT_SIZE_HELP = (
    "height [width] of the input: tflite takes only this size (default: the run's training "
    "crop, from run.json, else the model's fixed size); onnx: fixes the size (default: any "
    "size); not for savedmodel (any size)"
)


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument(
        "--format",
        default="savedmodel",
        choices=("savedmodel", "tflite", "onnx"),
        help="what to write",
    )
    p.add_argument(
        "--output", required=True, help="the SavedModel folder, or the .tflite / .onnx file"
    )
    p.add_argument(
        "--dataset", help="class names and palette of this dataset (default: the checkpoint's)"
    )
    p.add_argument("--input-size", type=int, nargs="+", metavar="PX", help=INPUT_SIZE_HELP)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")


def _run_crop(checkpoint):
    """The training crop (H, W) recorded in the checkpoint's run.json, or None."""
    from kerasseg.training import load_run_info

    value = load_run_info(checkpoint).get("crop_size")
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
        return None  # absent, null (no crop) or not a size: not a size to guess from
    return crop(value) if len(value) in (1, 2) else None


def tflite_size(args, model):
    """The (H, W) a TFLite export takes; a one-line error when nothing says."""
    from kerasseg import inference

    if args.input_size:
        return crop(args.input_size, "--input-size")
    size = _run_crop(args.checkpoint) or inference.model_static_size(model)
    if size is None:
        raise UsageError(
            f"a TFLite file takes one input size and {args.checkpoint!r} records none (no "
            f"run.json with a crop_size beside it, no fixed model input): pass --input-size H W."
        )
    return size


def _input_description(model, fmt, size):
    """What the file takes, as its input tensor's shape (TFLite's batch is 1 unless the
    interpreter resizes it; an instance model's is always 1)."""
    from kerasseg import inference

    channels = inference.model_channels(model)
    batch = "1" if fmt == "tflite" or task_of(model) == "instance" else "N"
    if size is None:
        return f" (input {batch}xHxWx{channels}, any height and width)"
    return f" (input {batch}x{size[0]}x{size[1]}x{channels})"


def run(args):
    fmt = args.format.lower()
    if fmt == "savedmodel" and args.input_size:
        raise UsageError("--input-size applies to tflite and onnx; a SavedModel takes any size.")
    args.checkpoint = resolve_checkpoint(args.checkpoint)
    # First: loading imports the whole package (the console script imported it lightly).
    model = load_checkpoint(args.checkpoint)
    from kerasseg import export

    export_options, size = {"overwrite": args.overwrite}, None
    if fmt == "savedmodel":
        names, colours = labels_of(model, args.checkpoint, args.dataset)
        export_options.update(class_names=names, palette=colours)
    elif fmt == "tflite":
        size = export_options["input_size"] = tflite_size(args, model)
    else:
        size = export_options["input_size"] = crop(args.input_size, "--input-size")
    try:
        path = export.export(model, args.output, format=fmt, **export_options)
    except FileExistsError as error:
        raise UsageError(f"{error} (pass --overwrite to replace it)") from None
    say(f"exported {fmt} to {path or args.output}{_input_description(model, fmt, size)}")
    return 0
