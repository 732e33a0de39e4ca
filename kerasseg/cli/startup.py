"""Importing TensorFlow for a command: oneDNN on by default, start-up noise held back.

TensorFlow's start-up lines that its own ``TF_CPP_MIN_LOG_LEVEL`` (2 unless you set it) misses,
being printed before its logging is set up, are held back to that level; on a machine without an
NVIDIA driver the CUDA probe's ``failed call to cuInit`` and ``Could not find cuda drivers`` lines
are dropped too (with a driver they are real errors and stay).
"""

import os
import re
import sys
import tempfile

# absl's log line: severity letter, MMDD, time, thread, file:line]
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+\s+\S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to"
# What TensorFlow prints, probing for CUDA, where no NVIDIA driver is installed.
_CUDA_PROBE = ("failed call to cuInit", "Could not find cuda drivers", "cudart_stub.cc")


def min_log_level():
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


def is_noise(line, level, no_driver):
    """Whether TensorFlow's start-up ``line`` is held back at log ``level``."""
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

    With oneDNN off, TensorFlow takes CPU memory straight from malloc, so every large temporary
    is a fresh mmap whose pages fault in again each step; oneDNN brings a pooling allocator of
    its own. There the CLI asks for TensorFlow's pooling (BFC) allocator instead
    (``TF_CPU_ALLOCATOR_USE_BFC=true``, unless set): the instance demo's training step took
    0.37 s without it and 0.18 s with it on a 2-core AMD EPYC (0.17 s with oneDNN).
    """
    import platform

    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false"):
        os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


def import_tensorflow(debug=False):
    """Import TensorFlow, holding back the start-up lines described in the module docstring."""
    if "tensorflow" in sys.modules:
        return
    default_onednn()  # read by TensorFlow once, when it loads
    if debug or not sys.platform.startswith("linux"):
        import tensorflow  # noqa: F401

        return
    level, no_driver = min_log_level(), not nvidia_driver_present()
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
            kept = [line for line in text.splitlines(True) if not is_noise(line, level, no_driver)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
