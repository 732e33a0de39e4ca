"""A new user's first hour with a `folder` of their own images, from the console in subprocesses:
the default validation split, `--val-split none`, a parent folder given by mistake, reruns after
a failed start and after a crash mid-run, and the help that documents the layout. Every
subprocess has a timeout the test would fail on (a hang)."""

import csv
import json
import subprocess
import time

import numpy as np
import pytest

from kerasseg import cli, datasets, training
from kerasseg.datasets import folder
from tests import folder_cli
from tests.test_cli_errors import TINY

TIMEOUT = 150


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
    """The console runs, two at a time: {case: (data folder, run folder, CompletedProcess)}."""
    base = tmp_path_factory.mktemp("first_hour")
    cases = {}
    cases["pool"] = (square_set(base / "pool", 10), base / "run_pool", ())
    cases["no_val"] = (square_set(base / "no_val", 6), base / "run_no_val", ("--val-split", "none"))
    broken = square_set(base / "broken", 4)
    cases["failed_start"] = (broken, base / "run_broken", ("--no-file-check",))
    good = (broken / "images" / "im1.png").read_bytes()
    (broken / "images" / "im1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    argvs = [train_argv(data, out, *extra) for data, out, extra in cases.values()]
    procs = folder_cli.run_cli_together(*argvs, timeout=TIMEOUT)
    found = {key: (data, out, proc) for (key, (data, out, _)), proc in zip(cases.items(), procs)}
    # The file repaired, the very same command again.
    (broken / "images" / "im1.png").write_bytes(good)
    found["rerun"] = (broken, base / "run_broken", folder_cli.run_cli(*argvs[-1], timeout=TIMEOUT))
    return found


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


def test_val_split_none_logs_what_exists_and_says_how_best_is_chosen(runs):
    _, out, proc = runs["no_val"]
    assert proc.returncode == 0, proc.stderr
    columns = header(out / "history.csv")
    assert not [c for c in columns if c.startswith("val_")], columns
    assert "NA" not in (out / "history.csv").read_text()
    assert (out / "curves.png").stat().st_size > 0
    assert "could not plot" not in proc.stderr
    assert "no validation split: best.keras is the epoch of lowest training loss" in proc.stdout
    assert "validation mIoU" not in proc.stdout
    with open(out / "best.json") as f:
        assert json.load(f)["monitor"] == "loss"


def test_a_parent_of_several_datasets_is_refused_naming_them(tmp_path, capsys):
    square_set(tmp_path / "parent" / "site_a", 4)
    square_set(tmp_path / "parent" / "site_b", 4)
    code = cli.main(train_argv(tmp_path / "parent", tmp_path / "run"))
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert repr(str(tmp_path / "parent")) in line and "'site_a'" in line and "'site_b'" in line
    assert "--data-dir" in line
    assert not (tmp_path / "run").exists()


def test_a_run_that_failed_at_its_start_does_not_block_the_same_command(runs):
    data, out, failed = runs["failed_start"]
    assert failed.returncode == 2
    assert repr(str(data / "images" / "im1.png")) in failed.stderr
    _, _, rerun = runs["rerun"]
    assert rerun.returncode == 0, rerun.stderr
    assert "already holds a finished run" not in rerun.stderr
    assert "stopped within its first epoch" in rerun.stderr
    assert (out / "last.keras").exists()
    # The new run's history only: one epoch, once.
    with open(out / "history.csv", newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0"]


def test_a_run_that_crashed_mid_run_resumes(tmp_path):
    """A data error in a later epoch (the file spoiled while the run trains) stops the run with
    its one line; once the file is repaired, the same command resumes from the last epoch."""
    data = square_set(tmp_path / "data", 4)
    out = tmp_path / "run"
    argv = list(train_argv(data, out))
    argv[argv.index("--epochs") + 1] = "40"
    image = data / "images" / "im2.png"
    good = image.read_bytes()
    proc = subprocess.Popen(
        folder_cli._command(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=folder_cli._user_env(),
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while (training.backup_epoch(str(out)) or 0) < 1:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no epoch finished"
            time.sleep(0.05)
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    assert repr(str(image)) in err
    done = training.backup_epoch(str(out))
    assert done is not None and done < 40
    image.write_bytes(good)
    again = folder_cli.run_cli(*argv, timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert f"resuming the run in {out} after epoch {done} of 40" in again.stderr
    assert f"trained {40 - done} epoch(s)" in again.stdout


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
