"""The ``kerasseg`` console script.

    kerasseg models | datasets
    kerasseg train    --model unet --backbone resnet50 --dataset camvid --data-dir DIR \\
                      --epochs 50 --batch-size 8 --crop-size 360 480 --output runs/x
    kerasseg evaluate --checkpoint runs/x --split test
    kerasseg predict  --checkpoint runs/x photo.jpg photos/ 'more/*.jpg' --output preds/
    kerasseg export   --checkpoint runs/x --format savedmodel|tflite|onnx --output exported/
    kerasseg demo     [--output ./kerasseg_demo] [--task semantic|instance]
    kerasseg pseudo-labels --dataset shapes --supervision scribbles|points|boxes|image \\
                      --output pseudo/

``--checkpoint`` takes a .keras file or a run folder (its best.keras, else last.keras);
``evaluate`` defaults to the dataset and data folder the run trained on (its run.json).
``predict`` writes NAME_mask.png, NAME_overlay.png (with a legend of the classes present) and
NAME_labels.png (a palette PNG of class indices), keeping the inputs' folders relative to their
common parent, so that same-named images never overwrite each other. A TFLite export takes the
run's training crop unless ``--input-size`` says otherwise.

Instance checkpoints (Mask R-CNN, trained on an instance set such as ``shapes_instances``) go
through the same commands: ``evaluate`` prints COCO box and mask AP and writes them to JSON,
``predict`` writes detection overlays and per-image JSON (boxes, classes, scores, RLE masks).

One module per command (``kerasseg.cli.train`` ...: its options ``add_arguments`` and its
``run``); ``common`` holds what they share, ``startup`` the TensorFlow import, ``checkpoint``
the loading of a checkpoint and of what it predicts (class names and colours, from the model).

Bad names and paths, and bad data files (a colour or JPEG mask, a corrupt image, a label value the
dataset does not define: found by a scan of the split's files before the model is built, or by
the input pipeline later), end with one line on stderr and exit status 2 (``--debug`` or
``KERASSEG_DEBUG=1`` shows the traceback and every TensorFlow log line); a run stopped by a NaN loss
exits with 1, an interrupted one with 130. Offline, ImageNet weights that are not in Keras's cache
are one line too, naming the file to fetch and ``--weights none``.

The console script enters through ``kerasseg_cli``, which imports this package without
TensorFlow: ``--help`` and ``models`` never import it (this module and the command modules import
nothing heavy at the top), other commands import it when they start, with its start-up noise held
back (``kerasseg.cli.startup``). OpenCV's log lines are off unless ``OPENCV_LOG_LEVEL`` is set: a
file it cannot decode is reported by kerasseg, naming it.
"""

import argparse
import os
import sys

from kerasseg.cli import datasets, demo, evaluate, export, models, predict, pseudo_labels, train
from kerasseg.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ONE_LINE_ERRORS,
    UsageError,
    debug_requested,
    error_line,
    is_data_error,
    one_line_warnings,
)
from kerasseg.cli.demo import DEMO
from kerasseg.cli.demo import MARKER as DEMO_MARKER
from kerasseg.cli.models import BACKBONE_NAMES, DEFAULT_BACKBONES
from kerasseg.cli.startup import default_onednn, import_tensorflow, nvidia_driver_present

__all__ = [
    "BACKBONE_NAMES",
    "COMMANDS",
    "DEFAULT_BACKBONES",
    "DEMO",
    "DEMO_MARKER",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "console",
    "default_onednn",
    "import_tensorflow",
    "main",
    "nvidia_driver_present",
]

# Command name -> its module (``add_arguments(parser)``, ``run(args)``, ``HELP``).
COMMANDS = {
    "models": models,
    "datasets": datasets,
    "train": train,
    "evaluate": evaluate,
    "predict": predict,
    "export": export,
    "demo": demo,
    "pseudo-labels": pseudo_labels,
}
# Commands that run without TensorFlow.
LIGHT_COMMANDS = ("models",)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (they hold layouts), and every option's default in its help
    unless the help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or "default" in text.lower()
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        shown = str(shown).replace("%", "%%")
        return f"{text} (default: {shown})" if text else f"default: {shown}"


def _description(module):
    """A command's --help text: its HELP line, then its DESCRIPTION where it has one."""
    extra = getattr(module, "DESCRIPTION", "")
    return module.HELP[0].upper() + module.HELP[1:] + "." + (f"\n\n{extra}" if extra else "")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kerasseg",
        description="Semantic and instance segmentation with Keras 3: train, evaluate, "
        "predict, export.",
        formatter_class=HelpFormatter,
    )
    debug_help = (
        "show tracebacks and every TensorFlow log line instead of one-line errors "
        "(also KERASSEG_DEBUG=1)"
    )
    parser.add_argument("--debug", action="store_true", help=debug_help)
    # Each command takes --debug too; SUPPRESS keeps a subcommand's default from hiding the
    # top-level flag.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        command = sub.add_parser(
            name,
            parents=[common],
            help=module.HELP,
            description=_description(module),
            formatter_class=HelpFormatter,
        )
        module.add_arguments(command)
    return parser


_outcome = {"data_error": False}


def _start(args, debug):
    """Before a command runs: one-line warnings, OpenCV quiet, TensorFlow imported quietly."""
    if not debug:
        one_line_warnings()
        if "cv2" not in sys.modules:  # OpenCV reads it once, when imported
            os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
    if args.command not in LIGHT_COMMANDS:
        import_tensorflow(debug)
    if debug:
        import keras

        keras.config.disable_traceback_filtering()


def main(argv=None):
    """Run one command; returns its exit status (0 done, 1 diverged, 2 error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    debug = debug_requested(args)
    _outcome["data_error"] = False
    _start(args, debug)
    try:
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print(
            f"kerasseg {args.command}: interrupted"
            + ("; run the same command again to resume" if args.command == "train" else ""),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (UsageError, *ONE_LINE_ERRORS) as error:
        if debug:
            raise
        _outcome["data_error"] = is_data_error(error)
        print(error_line(args.command, error), file=sys.stderr)
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
