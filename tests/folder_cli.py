"""Shared by the CLI and binary-mask tests: generated `folder` sets and the CLI in a subprocess."""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_squares(base, foreground, n, rng, size=64, name="im{i}", bad=None):
    """`n` dark-noise images with one bright square each into base/images and base/masks,
    masks 0 / `foreground`; mask number `bad` gets one pixel of value 128. The same `rng`
    state gives the same images and squares whatever `foreground` is."""
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for i in range(n):
        image = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        side = int(rng.integers(12, 28))
        y0, x0 = rng.integers(0, size - side, 2)
        image[y0 : y0 + side, x0 : x0 + side] = rng.integers(200, 256, (side, side, 3))
        mask[y0 : y0 + side, x0 : x0 + side] = foreground
        if i == bad:
            mask[0, 0] = 128
        stem = name.format(i=i)
        Image.fromarray(image).save(os.path.join(base, "images", f"{stem}.png"))
        Image.fromarray(mask).save(os.path.join(base, "masks", f"{stem}.png"))


def _user_env():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("KERASSEG_DEBUG", "TF_CPP_MIN_LOG_LEVEL", "OPENCV_LOG_LEVEL"):
        env.pop(name, None)
    return env


def _command(argv):
    return [sys.executable, "-m", "kerasseg.cli", *map(str, argv)]


def run_cli(*argv, timeout):
    """`python -m kerasseg.cli ARGV` with the defaults users get (no debug, TensorFlow's and
    OpenCV's log levels unset); a run that reaches `timeout` has hung."""
    return subprocess.run(
        _command(argv), capture_output=True, text=True, env=_user_env(), timeout=timeout
    )


def run_cli_together(*argvs, timeout, jobs=2):
    """`run_cli` for each ARGV, `jobs` processes at a time (their start-ups are mostly one
    thread each, so two share the suite's two cores well); a list of CompletedProcess in the
    order given. A process that runs past `timeout` has hung: TimeoutExpired."""
    with tempfile.TemporaryDirectory() as folder:
        waiting, running, done = list(enumerate(argvs)), [], {}
        try:
            while waiting or running:
                while waiting and len(running) < jobs:
                    i, argv = waiting.pop(0)
                    out = open(os.path.join(folder, f"{i}.out"), "w+")
                    err = open(os.path.join(folder, f"{i}.err"), "w+")
                    proc = subprocess.Popen(
                        _command(argv), stdout=out, stderr=err, text=True, env=_user_env()
                    )
                    running.append((i, argv, proc, out, err, time.monotonic()))
                i, argv, proc, out, err, started = running.pop(0)
                proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
                out.seek(0)
                err.seek(0)
                done[i] = subprocess.CompletedProcess(
                    _command(argv), proc.returncode, out.read(), err.read()
                )
                out.close()
                err.close()
        finally:
            for _, _, proc, out, err, _ in running:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                out.close()
                err.close()
        return [done[i] for i in range(len(argvs))]
