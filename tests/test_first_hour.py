"""A new user's first hour with a `folder` of their own images, from the console in subprocesses:
the default validation split, `--val-split none`, a parent folder given by mistake, reruns after
a failed start and after a crash mid-run, and the help that documents the layout. Every
subprocess has a timeout the test would fail on (a hang)."""

import csv
import json
import threading
import time

import numpy as np
import pytest

from kerasseg import cli, datasets, training
from kerasseg.datasets import folder
from tests import folder_cli
from tests.test_cli_errors import TINY

TIMEOUT = 150
CORRUPT = b"\x89PNG\r\n\x1a\n" + bytes(200)  # a PNG signature, then nothing decodable


def square_set(root, n):
    folder_cli.write_squares(str(root), 1, n, np.random.default_rng(0), size=48)
    (root / "classes.txt").write_text("ground\nsquare\n")
    return root


def train_argv(data, out, *extra):
    return [
        str(a)
        for a in (
            "train",
            *TINY,
            "--dataset",
            "folder",
            "--data-dir",
            data,
            "--output",
            out,
            *extra,
        )
    ]


def header(path):
    with open(path, newline="") as f:
        return next(csv.reader(f))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The console runs, side by side: the first natural command on a pool of images, and one
    that fails at its start on a corrupt image: {case: (data folder, run folder, process)}."""
    base = tmp_path_factory.mktemp("first_hour")
    pool = square_set(base / "pool", 10)
    broken = square_set(base / "broken", 4)
    (broken / "images" / "im1.png").write_bytes(CORRUPT)
    cases = {
        "pool": (pool, base / "run_pool", ()),
        "failed_start": (broken, base / "run_broken", ("--no-file-check",)),
    }
    argvs = [train_argv(data, out, *extra) for data, out, extra in cases.values()]
    procs = folder_cli.run_cli_together(*argvs, timeout=TIMEOUT)
    return {key: (data, out, proc) for (key, (data, out, _)), proc in zip(cases.items(), procs)}


def run_here(capsys, argv):
    capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_pool_without_split_folders_holds_out_a_validation_split(runs):
    data, out, proc = runs["pool"]
    assert proc.returncode == 0, proc.stderr
    expected = len(folder.held_out([f"im{i}" for i in range(10)], 0.2))
    assert expected == 2
    assert f"holding out {expected} of 10 images" in proc.stderr
    assert "val_fraction" in proc.stderr and "--val-split none" in proc.stderr
    assert "val_mean_iou" in header(out / "history.csv")
    assert "best validation mIoU" in proc.stdout
    with open(out / "run.json") as f:
        assert json.load(f)["data_dir"] == str(data)


def test_a_run_that_failed_at_its_start_does_not_block_the_same_command(runs, capsys):
    data, out, failed = runs["failed_start"]
    assert failed.returncode == 2
    (line,) = [l for l in failed.stderr.splitlines() if not l.startswith("kerasseg: warning:")]
    assert line.startswith("kerasseg train: error: ")
    assert repr(str(data / "images" / "im1.png")) in line
    assert (out / "history.csv").exists() and not (out / "last.keras").exists()
    square_set(data, 4)  # the file repaired; then the very same command
    code, _, err = run_here(capsys, train_argv(data, out, "--no-file-check"))
    assert code == 0, err
    assert "already holds a finished run" not in err
    assert "stopped within its first epoch" in err
    assert (out / "last.keras").exists()
    with open(out / "history.csv", newline="") as f:  # the new run's epoch, once
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0"]


def test_val_split_none_logs_what_exists_and_says_how_best_is_chosen(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_here(
        capsys, train_argv(square_set(tmp_path / "data", 6), out, "--val-split", "none")
    )
    assert code == 0, err
    columns = header(out / "history.csv")
    assert not [c for c in columns if c.startswith("val_")], columns
    assert "NA" not in (out / "history.csv").read_text()
    assert (out / "curves.png").stat().st_size > 0
    assert "could not plot" not in err
    assert "no validation split: best.keras is the epoch of lowest training loss" in stdout
    assert "validation mIoU" not in stdout
    with open(out / "best.json") as f:
        assert json.load(f)["monitor"] == "loss"


def test_a_parent_of_several_datasets_is_refused_naming_them(tmp_path, capsys):
    square_set(tmp_path / "parent" / "site_a", 4)
    square_set(tmp_path / "parent" / "site_b", 4)
    code, _, err = run_here(capsys, train_argv(tmp_path / "parent", tmp_path / "run"))
    assert code == 2
    (line,) = err.splitlines()
    assert repr(str(tmp_path / "parent")) in line and "'site_a'" in line and "'site_b'" in line
    assert "--data-dir" in line
    assert not (tmp_path / "run").exists()


def test_a_run_that_crashed_mid_run_resumes(tmp_path, capsys):
    """A data error in a later epoch (the file spoiled while the run trains) stops the run with
    its one line; once the file is repaired, the same command resumes from the last epoch."""
    data, out = square_set(tmp_path / "data", 4), tmp_path / "run"
    argv = train_argv(data, out, "--no-file-check")
    argv[argv.index("--epochs") + 1] = "40"
    image = data / "images" / "im2.png"
    good = image.read_bytes()

    def spoil_after_the_first_epoch():
        deadline = time.monotonic() + TIMEOUT
        while (training.backup_epoch(str(out)) or 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        image.write_bytes(CORRUPT)

    spoiler = threading.Thread(target=spoil_after_the_first_epoch, daemon=True)
    spoiler.start()
    code, _, err = run_here(capsys, argv)
    spoiler.join()
    assert code == 2, err
    assert repr(str(image)) in err.splitlines()[-1]
    done = training.backup_epoch(str(out))
    assert done is not None and 1 <= done < 40
    image.write_bytes(good)
    code, stdout, err = run_here(capsys, argv)
    assert code == 0, err
    assert f"resuming the run in {out} after epoch {done} of 40" in err
    assert f"trained {40 - done} epoch(s)" in stdout


# --------------------------------------------------------------------------- in process


@pytest.mark.parametrize("n, held", [(1, 0), (2, 1), (4, 1), (10, 2), (30, 6)])
def test_held_out_counts_and_is_stable(n, held):
    stems = [f"img_{i:03d}" for i in range(n)]
    val = folder.held_out(stems, 0.2)
    assert len(val) == held and val <= set(stems)
    assert folder.held_out(list(reversed(stems)), 0.2) == val  # order does not matter
    if n >= 2:
        assert len(stems) - len(val) >= 1


def test_pool_info_and_splits_partition_the_files(tmp_path):
    square_set(tmp_path, 10)
    info = datasets.info("folder", data_dir=tmp_path)
    assert info.splits == {"all": 10, "train": 8, "val": 2}
    assert datasets.info("folder", data_dir=tmp_path, val_fraction=0.5).splits["val"] == 5

    def stems(split, **options):
        ds = datasets.load("folder", data_dir=tmp_path, split=split, **options)
        return len(list(ds.as_numpy_iterator()))

    with pytest.warns(folder.SplitNote, match="holding out 2 of 10"):
        assert stems("val") == 2
    assert stems("train") == 8 and stems("all") == 10
    assert stems("val", val_fraction=0.3) == 3 and stems("train", val_fraction=0.3) == 7
    with pytest.raises(ValueError, match="no validation images"):
        datasets.load("folder", data_dir=tmp_path, split="val", val_fraction=0.0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        datasets.load("folder", data_dir=tmp_path, split="val", val_fraction=1.5)


def test_a_dataset_without_val_trains_without_validation_when_val_is_the_default(capsys):
    nyu = datasets.info("nyudv2")
    assert training.default_validation("val", nyu) is None
    err = capsys.readouterr().err
    assert "'nyudv2' has no 'val' split (splits: train, test)" in err
    assert training.default_validation("test", nyu) == "test"
    assert training.default_validation("val", datasets.info("shapes")) == "val"
    assert capsys.readouterr().err == ""


def test_help_documents_your_own_data_and_every_default():
    commands = cli.build_parser()._subparsers._group_actions[0].choices

    def help_of(name):
        return " ".join(commands[name].format_help().split())

    for text in (help_of("datasets"), help_of("train")):
        for fact in ("D/images/", "D/masks/", "classes.txt", "255", "JPEG", "val_fraction"):
            assert fact in text
    train = help_of("train")
    for default in ("(default: 50)", "(default: 8)", "(default: val)", "(default: 0)"):
        assert default in train
    assert "Train a model" in train and "Example: kerasseg train --dataset folder" in train
    # Every option of every command says its default, or has none worth saying.
    for name, parser in commands.items():
        for action in parser._actions:
            if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
                assert action.help, (name, action.option_strings)
