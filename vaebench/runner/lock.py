"""One process trains a run: an exclusive `flock` on <run_dir>/.lock, held while the run works.

The kernel drops the lock when its process dies (kill -9 included), so a crashed run never
blocks the next one and there is nothing stale to clean up. The lock file itself is never
deleted (deleting it would let two processes lock two different files of the same name).

On NFS, Linux clients implement flock() with the server's byte-range locks (NLM for NFSv3, the
protocol's own locks for NFSv4), so the guarantee holds across machines when the server's lock
service works. If the client mounts with `nolock` or `local_lock=flock`, flock is local to each
machine and two machines may train one run at once (the results stay valid: every file is
written atomically, the later writer wins). After a client crash, an NFSv4 server frees its
locks when the lease expires (90 s by default).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

LOCK = ".lock"


class RunLock:
    """`with RunLock(run_dir) as lock:` ... `lock.held` says whether this process got it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None
        self.holder = ""  # who holds it, when we did not get it

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mask = os.umask(0o022)
        os.umask(mask)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~mask)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode(), 0)
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
