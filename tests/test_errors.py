"""Every user or environment error: one message without a traceback, exit 2, nothing written."""

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from vaebench.cli import main

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

SUITE = """
name: err
datasets: [{name: mnist, params: {train_size: 64}}]
models: [{name: vae, params: {latent_dim: 2}}]
seeds: [0]
train: {steps: 2, batch_size: 8, checkpoint_every: 1, log_every: 1}
metrics: [{name: recon_error, params: {num_examples: 16}}]
"""


def suite_file(tmp_path, text=SUITE, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_argv(tmp_path, suite, *extra, results=None):
    return ["run", str(suite), "--results", str(results or tmp_path / "r"), "--data-root", str(DATA),
            "--no-progress", *extra]


def assert_clean_error(code, capsys, *phrases):
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("vaebench: error: ") and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in err, (phrase, err)
    return err


CUDA_NOT_THERE = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or cuda:0 without one

# (suite text or a function of the suite text, phrases the error must contain)
BAD_SUITES = {
    "train_size not a number": (SUITE.replace("train_size: 64", 'train_size: "abc"'),
                                ["datasets[0].params.train_size", "'abc'"]),
    "train_size fractional": (SUITE.replace("train_size: 64", "train_size: 2.5"),
                              ["datasets[0].params.train_size", "2.5"]),
    "train_size zero": (SUITE.replace("train_size: 64", "train_size: 0"),
                        ["datasets[0].params.train_size", "greater than 0"]),
    "train_size negative": (SUITE.replace("train_size: 64", "train_size: -5"),
                            ["datasets[0].params.train_size", "-5"]),
    "latent_dim zero": (SUITE.replace("latent_dim: 2", "latent_dim: 0"), ["latent_dim", "0"]),
    "latent_dim negative": (SUITE.replace("latent_dim: 2", "latent_dim: -3"), ["latent_dim", "-3"]),
    "seed negative": (SUITE.replace("seeds: [0]", "seeds: [-1]"), ["seeds[0]", "-1"]),
    "seed too large": (SUITE.replace("seeds: [0]", "seeds: [4294967296]"), ["seeds[0]", "4294967296"]),
    "steps a boolean": (SUITE.replace("steps: 2", "steps: true"), ["train.steps", "True"]),
    "batch larger than the split": (SUITE.replace("batch_size: 8", "batch_size: 128"),
                                    ["batch_size 128", "64 training images"]),
    "metric listed twice": (SUITE.replace("metrics: [", "metrics: [recon_error, "),
                            ["metrics", "recon_error", "twice"]),
    "device without a GPU": (SUITE + f"device: '{CUDA_NOT_THERE}'\n", [CUDA_NOT_THERE]),
    "metric param out of range": (SUITE.replace("recon_error, params: {num_examples: 16}",
                                                "elbo, params: {num_examples: -5}"),
                                  ["metrics[0].params.num_examples", "-5"]),
    "metric param wrong type": (SUITE.replace("num_examples: 16", "num_examples: many"),
                                ["metrics[0].params.num_examples", "'many'"]),
}


@pytest.mark.parametrize("case", list(BAD_SUITES))
def test_bad_values_in_a_suite(tmp_path, capsys, case):
    text, phrases = BAD_SUITES[case]
    path = suite_file(tmp_path, text)
    assert_clean_error(main(run_argv(tmp_path, path)), capsys, *phrases)
    assert not (tmp_path / "r").exists()


def test_suite_not_utf8(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(SUITE.replace("name: err", "name: caf\xe9").encode("latin-1"))
    assert_clean_error(main(run_argv(tmp_path, path)), capsys, str(path), "not UTF-8")


def test_set_with_invalid_yaml(tmp_path, capsys):
    code = main(run_argv(tmp_path, suite_file(tmp_path), "--set", "seeds=[0"))
    assert_clean_error(code, capsys, "--set 'seeds=[0'", "not valid YAML")
    assert not (tmp_path / "r").exists()


def test_a_folder_as_the_suite(tmp_path, capsys):
    assert_clean_error(main(run_argv(tmp_path, tmp_path)), capsys, f"{tmp_path} is a folder")


def test_results_pointing_at_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code = main(run_argv(tmp_path, suite_file(tmp_path), results=tmp_path / "file"))
    assert_clean_error(code, capsys, "--results", str(tmp_path / "file"), "is a file")
    assert (tmp_path / "file").read_text() == "x"


def test_truncated_mnist_file_says_it_is_truncated(tmp_path, capsys):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        os.symlink(DATA / "MNIST" / "raw" / name, raw / name)
    with open(DATA / "MNIST" / "raw" / "train-images-idx3-ubyte", "rb") as f:
        (raw / "train-images-idx3-ubyte").write_bytes(f.read(100_000))
    argv = ["run", str(suite_file(tmp_path)), "--results", str(tmp_path / "r"),
            "--data-root", str(tmp_path / "data"), "--no-progress"]
    assert_clean_error(main(argv), capsys, str(raw / "train-images-idx3-ubyte"), "truncated")
    assert not (tmp_path / "r").exists()


def test_leaderboard_output_pointing_at_a_folder(tmp_path, capsys):
    assert main(run_argv(tmp_path, suite_file(tmp_path))) == 0
    capsys.readouterr()
    (tmp_path / "out").mkdir()
    code = main(["leaderboard", str(tmp_path / "r" / "err"), "-o", str(tmp_path / "out")])
    assert_clean_error(code, capsys, "-o", str(tmp_path / "out"), "is a folder")
    assert list((tmp_path / "out").iterdir()) == []


def _pngs(folder, n=3, size=28):
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        x = (torch.rand(size, size, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(x, "L").save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("case", ["damaged png", "bad weights", "batch size 0", "device tpu"])
def test_fid_errors(tmp_path, capsys, case):
    real, fake = _pngs(tmp_path / "real"), _pngs(tmp_path / "fake")
    args = ["fid", str(real), str(fake), "--data-root", str(DATA), "--extractor", "inception"]
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"\x80\x04not really weights" * 10)
    if case == "damaged png":
        data = (fake / "1.png").read_bytes()
        (fake / "1.png").write_bytes(data[: len(data) // 2])
        phrases = [str(fake / "1.png"), "damaged"]
    elif case == "bad weights":
        phrases = [str(weights), "not pytorch-fid's Inception weights"]
    elif case == "batch size 0":
        args += ["--batch-size", "0"]
        phrases = ["--batch-size", "0"]
    else:
        args += ["--device", "tpu"]
        phrases = ["device 'tpu'", "auto, cpu, cuda"]
    code = main(args + ["--fid-weights", str(weights)])
    assert_clean_error(code, capsys, *phrases)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, options) -> a fresh tmpfs folder (read-only or tiny filesystems need root)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a read-only or full filesystem needs root (CI runs as root)")
    mounted = []

    def mount(name, options):
        folder = tmp_path / name
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=False)


def test_read_only_results_folder(tmp_path, capsys, tmpfs):
    results = tmpfs("ro", "rw,size=256m")
    assert main(run_argv(tmp_path, suite_file(tmp_path), results=results)) == 0
    capsys.readouterr()
    subprocess.run(["mount", "-o", "remount,ro", str(results)], check=True)
    assert_clean_error(main(["leaderboard", str(results / "err")]), capsys, str(results / "err"),
                       "Read-only file system")
    text = SUITE.replace("seeds: [0]", "seeds: [1]")  # a new run to start
    code = main(run_argv(tmp_path, suite_file(tmp_path, text, "t.yaml"), results=results))
    assert_clean_error(code, capsys, "Read-only file system")
    assert main(["status", str(results / "err")]) == 0  # reading still works


def test_full_disk_at_start(tmp_path, capsys, tmpfs):
    results = tmpfs("full", "size=256k")
    with open(results / "filler", "wb") as f:
        try:
            f.write(b"\0" * (1 << 20))
        except OSError:
            pass
    code = main(run_argv(tmp_path, suite_file(tmp_path), results=results / "r"))
    assert_clean_error(code, capsys, "No space left on device")
    assert sorted(p.name for p in results.iterdir()) == ["filler"]  # nothing written
