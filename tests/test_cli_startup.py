"""The console script starts fast and quietly: `--help` and `models` never import TensorFlow;
commands that do import it print none of its start-up noise (CUDA probes on a machine without a
GPU); `import kerasseg` still registers everything `keras.models.load_model` needs, and the
package's public names are written out."""

import importlib.metadata
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python(code, *, env=None, timeout=150):
    environment = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("KERASSEG_DEBUG", "TF_CPP_MIN_LOG_LEVEL", "KERASSEG_LAZY_IMPORT"):
        environment.pop(name, None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        cwd=REPO,
    )


# --------------------------------------------------------------------------- no TensorFlow


def _entries():
    entries = {
        "python -m kerasseg.cli": ["-m", "kerasseg.cli"],
        "python -m kerasseg_cli": ["-m", "kerasseg_cli"],
    }
    script = os.path.join(os.path.dirname(sys.executable), "kerasseg")
    if os.path.isfile(script):  # the installed console script
        entries["kerasseg"] = [script]
    return entries


@pytest.mark.parametrize("entry", sorted(_entries()))
@pytest.mark.parametrize("argv", [["--help"], ["models"], ["train", "--help"]])
def test_help_and_models_do_not_import_tensorflow(entry, argv):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("KERASSEG_LAZY_IMPORT", None)
    # -X importtime lists every module the process imports, on stderr.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *_entries()[entry], *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = [
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "kerasseg" in imported
    heavy = [m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "cv2")]
    assert heavy == []
    assert [line for line in proc.stderr.splitlines() if not line.startswith("import time:")] == []
    if argv == ["models"]:
        assert "unet" in proc.stdout and "backbones: " in proc.stdout


def test_console_script_enters_through_the_light_module():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [e.value for e in scripts if e.name == "kerasseg"] == ["kerasseg_cli:main"]


@pytest.fixture(scope="module")
def lazy_run(tmp_path_factory):
    """A process that imports kerasseg the console's way (no TensorFlow), then builds, saves
    and loads a model; the file it saves is loaded again in a fresh process below."""
    path = tmp_path_factory.mktemp("lazy") / "m.keras"
    proc = python(f"""
        import os, sys
        os.environ["KERASSEG_LAZY_IMPORT"] = "1"
        import kerasseg
        del os.environ["KERASSEG_LAZY_IMPORT"]
        assert "tensorflow" not in sys.modules
        assert {{"unet", "build", "losses", "training", "inference"}} <= set(dir(kerasseg))
        # A submodule first, as the CLI's commands do: it asks kerasseg for its parts while
        # half imported, which must not rerun kerasseg/__init__ underneath it.
        from kerasseg.models import MODELS
        assert kerasseg.unet is MODELS["unet"] and kerasseg.models.MODELS is MODELS
        model = kerasseg.unet(3, backbone=None, weights=None, filters=4, depth=2)
        assert "kerasseg.losses" in sys.modules and "kerasseg.metrics" in sys.modules
        model.save({str(path)!r})
        import keras
        keras.models.load_model({str(path)!r})
        print("OK")
        """)
    return proc, path


def test_lazy_import_loads_and_registers_on_first_use(lazy_run):
    proc, _ = lazy_run
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-2000:]


def test_import_then_load_model_needs_no_custom_objects(lazy_run):
    # The documented order: import kerasseg (before or after keras), then load_model, in a
    # process that has built nothing.
    saved, path = lazy_run
    assert saved.returncode == 0, saved.stderr[-2000:]
    proc = python(f"""
        import kerasseg
        import keras
        model = keras.models.load_model({str(path)!r})
        print(type(model).__name__, model.output_shape)
        """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("(None, None, None, 3)")


# --------------------------------------------------------------------------- public names


def test_public_names_are_written_out_and_match_the_registries():
    import kerasseg
    from kerasseg import cli
    from kerasseg.models import MODELS
    from kerasseg.training import model_defaults

    architectures = [name for name in kerasseg.__all__ if name in MODELS]
    assert sorted(architectures) == kerasseg.list_models() == sorted(MODELS)
    assert {n: model_defaults(n).get("backbone") for n in MODELS} == cli.DEFAULT_BACKBONES
    assert sorted(cli.BACKBONE_NAMES) == kerasseg.list_backbones()
    for name in kerasseg.__all__:
        assert getattr(kerasseg, name) is not None and name in dir(kerasseg)
    for name in architectures:
        assert getattr(kerasseg, name) is MODELS[name]
    from kerasseg import export, inference, train, unet, visualize  # noqa: F401

    assert unet is MODELS["unet"] and train.train and inference.predict and export.saved_model
    with pytest.raises(AttributeError, match="no attribute 'unet_xl'"):
        kerasseg.unet_xl  # noqa: B018


# --------------------------------------------------------------------------- no CUDA noise


def test_commands_that_import_tensorflow_print_no_cuda_probe_noise():
    from kerasseg import cli

    proc = python("""
        import sys, kerasseg_cli
        sys.exit(kerasseg_cli.main(["datasets"]))
        """)
    assert proc.returncode == 0, proc.stderr
    assert "shapes" in proc.stdout
    if not cli.nvidia_driver_present():
        assert proc.stderr == ""
    for noise in ("cuInit", "cuda drivers", "absl::InitializeLog", "cudart_stub"):
        assert noise not in proc.stderr


def test_noise_filter_keeps_real_errors():
    from kerasseg.cli.startup import is_noise

    banner = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    )
    stub = (
        "I0000 00:00:1796120224.010291    4204 cudart_stub.cc:31] Could not find cuda "
        "drivers on your machine, GPU will not be used.\n"
    )
    cuinit = (
        "E0000 00:00:1796120227.108359    4204 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
    )
    other_error = "E0000 00:00:1796120227.108359    4204 foo.cc:12] out of memory\n"
    info = "I0000 00:00:1796120224.009997    4204 port.cc:153] oneDNN custom operations are on.\n"
    # No driver: the CUDA probe is noise at every level.
    assert all(is_noise(line, 2, True) for line in (banner, stub, cuinit, info))
    assert not is_noise(other_error, 2, True) and not is_noise("Segmentation fault\n", 2, True)
    # A driver: a failing cuInit is a real error and stays; INFO lines follow the level.
    assert not is_noise(cuinit, 2, False) and not is_noise(other_error, 2, False)
    assert is_noise(info, 1, False) and not is_noise(info, 0, False)
    assert not is_noise(banner, 0, False) and not is_noise(stub, 0, False)
    assert is_noise(other_error, 3, False)


def test_debug_flag_parses_before_and_after_the_command():
    from kerasseg.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--debug", "models"]).debug is True
    assert parser.parse_args(["models", "--debug"]).debug is True
    assert parser.parse_args(["models"]).debug is False
