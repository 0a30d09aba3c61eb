"""Fault injection: run the real ``converge`` console script where the disk fills up.

Two ways to fill a disk, both real: a tiny tmpfs mounted for the test (where the
platform allows it: Linux as root, as in CI), and a file-size limit
(``RLIMIT_FSIZE``) on the process, which makes any write past the limit fail with
``EFBIG`` exactly where a full disk fails with ``ENOSPC``. The second works for any
user on POSIX, so the suite never depends on being allowed to mount."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CONSOLE_SCRIPT = Path(sys.executable).with_name("converge")


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Disk:
    """A directory on a disk that fills up after ``free`` bytes."""

    root: Path
    free: int
    limit_process: bool  # True: the limit is RLIMIT_FSIZE on the converge process

    def run(self, *args: str, timeout: float = 60) -> Outcome:
        def limit() -> None:
            # SIGXFSZ would kill the process; ignored, the write fails with EFBIG.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.free, self.free))

        env = {**os.environ, "CONVERGE_DISABLE_PLUGINS":
               "converge-http,converge-llm,converge-example,converge-ray"}
        env.pop("CONVERGE_DEBUG", None)
        done = subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=self.root, env=env,
                              capture_output=True, timeout=timeout, check=False,
                              preexec_fn=limit if self.limit_process else None)
        return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"),
                       done.stderr.decode("utf-8", "replace"))


def _mount_tmpfs(where: Path, size: int) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount") or sys.platform != "linux":
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture(params=["file-size-limit", "tmpfs"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Disk]]:
    """``small_disk(files, free)`` lays ``files`` (name → text or bytes) on a disk and
    leaves ``free`` bytes for whatever converge writes next."""
    mounted: list[Path] = []

    def lay(root: Path, files: dict[str, str | bytes]) -> None:
        for name, content in files.items():
            if isinstance(content, bytes):
                (root / name).write_bytes(content)
            else:
                (root / name).write_text(content, encoding="utf-8")

    def make(files: dict[str, str | bytes], free: int) -> Disk:
        if request.param == "file-size-limit":
            root = tmp_path / "disk"
            root.mkdir()
            lay(root, files)
            return Disk(root, free, limit_process=True)
        root = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
        # tmpfs counts whole 4 KiB pages per file.
        pages = sum(-(-len(t if isinstance(t, bytes) else t.encode()) // 4096)
                    for t in files.values())
        size = (pages + 2) * 4096 + free
        if not _mount_tmpfs(root, size):
            pytest.skip("mounting a tmpfs needs Linux and root here; the file-size-limit "
                        "variant of this test covers the same failure")
        mounted.append(root)
        lay(root, files)
        # Fill the rest but ``free`` bytes.
        stats = os.statvfs(root)
        spare = stats.f_bavail * stats.f_frsize - free
        if spare > 0:
            (root / ".filler").write_bytes(b"\0" * spare)
        return Disk(root, free, limit_process=False)

    yield make
    for root in mounted:
        subprocess.run(["umount", str(root)], capture_output=True, check=False)
