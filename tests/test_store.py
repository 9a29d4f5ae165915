"""The results store: file modes, temporary files of killed writes, kept and set-aside files."""

import os
import stat
import textwrap
from pathlib import Path

import pytest

from vaebench.cli import main
import vaebench.runner.run  # noqa: F401  (registers models, datasets, metrics)
from vaebench.runner.store import atomic_write_bytes, remove_temp_files, set_aside, write_json

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_json(tmp_path / "a.json", {"x": 1})
    atomic_write_bytes(tmp_path / "b.bin", b"data")
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_keep_previous_keeps_the_old_file(tmp_path):
    atomic_write_bytes(tmp_path / "c", b"one", keep_previous=tmp_path / "c.prev")
    assert not (tmp_path / "c.prev").exists()
    atomic_write_bytes(tmp_path / "c", b"two", keep_previous=tmp_path / "c.prev")
    assert (tmp_path / "c").read_bytes() == b"two" and (tmp_path / "c.prev").read_bytes() == b"one"


def test_remove_temp_files_removes_only_temporary_files(tmp_path):
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"x" * 1000)
    (tmp_path / ".metrics.json.q.tmp").write_bytes(b"y" * 10)
    (tmp_path / "checkpoint.pt").write_bytes(b"keep")
    (tmp_path / "notes.tmp").write_bytes(b"keep")  # not ours: no leading dot
    assert remove_temp_files(tmp_path) == 1010
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "notes.tmp"]


def test_set_aside_renames_never_deletes(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"broken")
    aside = set_aside(tmp_path / "checkpoint.pt")
    assert aside.parent == tmp_path and aside.name.startswith("checkpoint.pt.damaged-")
    assert aside.read_bytes() == b"broken" and not (tmp_path / "checkpoint.pt").exists()


def test_temporary_files_of_killed_writes_are_cleaned_when_the_run_starts_again(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(textwrap.dedent("""
        name: tmpclean
        datasets: [{name: mnist, params: {train_size: 64}}]
        models: [{name: vae, params: {latent_dim: 2}}]
        train: {steps: 2, batch_size: 8, checkpoint_every: 1, log_every: 1}
        metrics: [{name: recon_error, params: {num_examples: 16}}]
    """))
    from vaebench.runner.suite import expand, load_suite
    (spec,) = expand(load_suite(suite))
    run_dir = tmp_path / "r" / "tmpclean" / spec.run_id
    run_dir.mkdir(parents=True)
    leftovers = [run_dir / f".checkpoint.pt.k{i}.tmp" for i in range(3)]
    for p in leftovers:
        p.write_bytes(b"\0" * 4096)
    assert main(["run", str(suite), "--results", str(tmp_path / "r"), "--data-root", str(DATA),
                 "--no-progress"]) == 0
    assert not any(p.exists() for p in leftovers)
    assert not list(run_dir.glob(".*.tmp"))
    assert "removed 12288 bytes of temporary files" in (run_dir / "events.log").read_text()
