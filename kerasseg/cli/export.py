"""``kerasseg export``: a checkpoint as a SavedModel, a TFLite or an ONNX file."""

from kerasseg.cli.checkpoint import labels_of, load_checkpoint
from kerasseg.cli.common import UsageError, crop, say

HELP = "SavedModel, TFLite or ONNX"


def add_arguments(p):
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", default="savedmodel", choices=("savedmodel", "tflite", "onnx"))
    p.add_argument("--output", required=True)
    p.add_argument(
        "--dataset", help="class names and palette of this dataset (default: the checkpoint's)"
    )
    p.add_argument(
        "--input-size", type=int, nargs="+", metavar="PX", help="fixed input size for tflite/onnx"
    )
    p.add_argument("--overwrite", action="store_true")


def run(args):
    # First: loading imports the whole package (the console script imported it lightly).
    model = load_checkpoint(args.checkpoint)
    from kerasseg import export

    fmt = args.format.lower()
    export_options = {"overwrite": args.overwrite}
    if fmt == "savedmodel":
        names, colours = labels_of(model, args.checkpoint, args.dataset)
        export_options.update(class_names=names, palette=colours)
    elif args.input_size:
        export_options["input_size"] = crop(args.input_size, "--input-size")
    try:
        path = export.export(model, args.output, format=fmt, **export_options)
    except FileExistsError as error:
        raise UsageError(f"{error} (pass --overwrite to replace it)") from None
    say(f"exported {fmt} to {path or args.output}")
    return 0
