"""Unit tests of the safety helpers: safe_path, the memory estimate, atomic writes, checkpoints."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest

from reconstruction.data import CaptureError
from reconstruction.data.memory import capture_bytes, check_memory, gib, suggest_downscale
from reconstruction.data.paths import UnsafePathError, safe_path

# ------------------------------------------------------------------ safe_path


def test_safe_path_accepts_names_inside(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    assert safe_path(tmp_path, "images/a.png") == tmp_path / "images" / "a.png"
    assert safe_path(tmp_path, "./images/a.png").resolve() == (tmp_path / "images" / "a.png").resolve()
    assert safe_path(tmp_path, "images/../images/a.png").resolve() == (tmp_path / "images/a.png").resolve()
    assert safe_path(tmp_path, "images/missing.png") == tmp_path / "images" / "missing.png"
    (tmp_path / "link.png").symlink_to("images/a.png")  # a link that stays inside is fine
    assert safe_path(tmp_path, "link.png") == tmp_path / "link.png"


def test_safe_path_through_a_symlinked_capture_folder(tmp_path):
    real = tmp_path / "real"
    (real / "images").mkdir(parents=True)
    (real / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "alias").symlink_to(real)
    assert safe_path(tmp_path / "alias", "images/a.png").is_file()


@pytest.mark.parametrize("name, says", [
    ("../x.png", "'..'"),
    ("images/../../x.png", "'..'"),
    ("/etc/passwd", "absolute"),
    ("a\x00b.png", "NUL"),
])
def test_safe_path_refuses_names_outside(tmp_path, name, says):
    (tmp_path / "cap" / "images").mkdir(parents=True)
    with pytest.raises(UnsafePathError) as err:
        safe_path(tmp_path / "cap", name)
    assert says in str(err.value)
    assert "capture folder" in str(err.value) or "NUL" in str(err.value)


def test_safe_path_refuses_symlinks_to_outside_and_loops(tmp_path):
    cap = tmp_path / "cap"
    cap.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (cap / "out.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(UnsafePathError, match="symlink to .*outside the capture folder"):
        safe_path(cap, "out.png")
    (cap / "dir").symlink_to(tmp_path)  # a folder link to outside
    with pytest.raises(UnsafePathError, match="outside the capture folder"):
        safe_path(cap, "dir/secret.png")
    (cap / "a").symlink_to("b")
    (cap / "b").symlink_to("a")
    with pytest.raises(UnsafePathError, match="symlink loop"):
        safe_path(cap, "a")


# ------------------------------------------------------------------ memory


def test_memory_estimate_and_suggestion():
    one = capture_bytes(10, 1000, 800)
    assert one == 10 * 1000 * 800 * 20 + 1000 * 800 * 8
    assert capture_bytes(10, 1000, 800, 2) < one / 3
    d = suggest_downscale(10, 1000, 800, one // 10)
    assert d is not None and capture_bytes(10, 1000, 800, d) <= one // 10
    assert capture_bytes(10, 1000, 800, d - 1) > one // 10
    assert suggest_downscale(10, 1000, 800, 1000) is None  # not even one decode fits


def test_check_memory_refuses_with_numbers(tmp_path):
    check_memory(tmp_path, 4, 64, 64, available=10**9)  # fits: nothing happens
    with pytest.raises(CaptureError) as err:
        check_memory(tmp_path / "transforms.json", 100, 4000, 3000, available=8 * 2**30)
    msg = str(err.value)
    need = capture_bytes(100, 4000, 3000)
    assert gib(need) in msg and "8.0 GiB" in msg and "transforms.json" in msg
    d = int(msg.split("--downscale ")[1].split()[0])
    assert capture_bytes(100, 4000, 3000, d) <= 4 * 2**30 < capture_bytes(100, 4000, 3000, d - 1)


# ------------------------------------------------------------------ atomic writes


def test_atomic_write_replaces_whole_files(tmp_path):
    from reconstruction.atomic import atomic_write, atomic_write_with

    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "hello")
    assert target.read_text() == "hello"
    atomic_write(target, b"\x00" * (3 << 20))  # several chunks
    assert target.stat().st_size == 3 << 20
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    atomic_write_with(tmp_path / "b.txt", lambda p: Path(p).write_text("via a name"))
    assert (tmp_path / "b.txt").read_text() == "via a name"
    assert not list(tmp_path.rglob("*.tmp"))


def _fill_disk(monkeypatch):
    """Every atomic write fails with ENOSPC after 3 bytes."""
    import reconstruction.atomic as atomic

    real = atomic._fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, b):
            self.f.write(bytes(b)[:3])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(atomic, "_fdopen", lambda fd, mode: Full(real(fd, mode)))


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    import reconstruction.atomic as atomic

    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    _fill_disk(monkeypatch)
    with pytest.raises(OSError) as err:
        atomic.atomic_write(target, b"new content")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]

    def half(p):
        Path(p).write_bytes(b"ha")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic.atomic_write_with(target, half)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


# ------------------------------------------------------------------ checkpoints


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_round_trip_and_refusals(tmp_path):
    import torch

    from reconstruction.engine import CheckpointError, load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "ck.pt", "nerf", {"w": torch.arange(3.0), "config": {"lr": 0.1}})
    ck = load_checkpoint(path)
    assert ck["method"] == "nerf" and torch.equal(ck["state"]["w"], torch.arange(3.0))
    marker = tmp_path / "marker"
    for data in (pickle.dumps(_Evil(marker), protocol=2), pickle.dumps({"x": _Evil(marker)})):
        (tmp_path / "evil.pt").write_bytes(data)
        with pytest.raises(CheckpointError, match="refused"):
            load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "cut.pt")


def test_checkpoint_save_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch):
    import torch

    from reconstruction.engine import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "ck.pt", "nerf", {"w": torch.ones(4)})
    before = path.read_bytes()
    _fill_disk(monkeypatch)
    with pytest.raises(OSError) as err:
        save_checkpoint(path, "nerf", {"w": torch.zeros(100)})
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path)["state"]["w"], torch.ones(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
