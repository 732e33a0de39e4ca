"""What every command shares: the usage error, one-line error and warning output, argument
parsing helpers and the checks of names and paths made before anything heavy is imported."""

import ast
import os
import sys

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_MESSAGE = 1200  # characters of an error shown on its one line (e.g. one quoting a tensor)

# What the commands report as one line (exit status 2) instead of a traceback.
ONE_LINE_ERRORS = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    ImportError,
    ConnectionError,
)


class UsageError(Exception):
    """A bad argument the user can fix; printed as one line, exit status 2."""


def say(text=""):
    print(text, flush=True)


def debug_requested(args):
    """``--debug`` (before or after the command) or ``KERASSEG_DEBUG=1``."""
    return bool(getattr(args, "debug", False) or os.environ.get("KERASSEG_DEBUG"))


def error_line(command, error):
    """``kerasseg COMMAND: error: MESSAGE``, the message on one line and at most MAX_MESSAGE
    characters."""
    message = " ".join(str(error).split()) or type(error).__name__
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + " ... (--debug shows it all)"
    return f"kerasseg {command}: error: {message}"


def is_data_error(error):
    """Whether ``error`` is a kerasseg data error (a bad file), without importing anything."""
    cls = getattr(sys.modules.get("kerasseg.datasets"), "DataError", None)
    return cls is not None and isinstance(error, cls)


def one_line_warnings():
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


# --------------------------------------------------------------------------- arguments


def parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def options(pairs, flag):
    """['filters=16', 'name=x'] -> {'filters': 16, 'name': 'x'}."""
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE; got {pair!r}.")
        out[key.strip().replace("-", "_")] = parse_value(value.strip())
    return out


def none_or(value):
    return None if value is None or str(value).lower() in ("none", "null", "") else value


def crop(values, flag="--crop-size"):
    """[S] or [H, W] -> (H, W); None stays None."""
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise UsageError(f"{flag} takes one or two integers (height [width]); got {values}.")
    return tuple(values) if len(values) == 2 else (values[0], values[0])


# --------------------------------------------------------------------------- checks


def needs_data_dir(name):
    """Whether dataset ``name`` reads files (so needs --data-dir)."""
    from kerasseg import datasets

    try:
        return bool(datasets.needs_data_dir(name))
    except Exception:  # noqa: BLE001 - the loader will say so itself
        return False


def check_dataset(name, data_dir):
    from kerasseg import datasets

    if name not in datasets.list_datasets():
        raise UsageError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(datasets.list_datasets())}."
        )
    if data_dir is None and needs_data_dir(name):
        raise UsageError(
            f"dataset {name!r} reads files: pass --data-dir (the folder holding "
            f"its official archive's top folder)."
        )
    if data_dir is not None and not os.path.isdir(os.path.expanduser(data_dir)):
        raise UsageError(f"data folder not found: {data_dir!r} (--data-dir of dataset {name!r}).")


def check_model(name, backbone):
    import kerasseg

    if name not in kerasseg.list_models():
        raise UsageError(
            f"unknown model {name!r}; valid models: {', '.join(kerasseg.list_models())}."
        )
    if backbone not in (None, "default") and backbone not in kerasseg.list_backbones():
        raise UsageError(
            f"unknown backbone {backbone!r}; valid backbones: "
            f"{', '.join(kerasseg.list_backbones())}."
        )


def check_file(path, what):
    """A one-line error for a missing input file (``what``: "checkpoint", "image", ...)."""
    if not os.path.isfile(path):
        raise UsageError(f"{what} not found: {path!r}.")
