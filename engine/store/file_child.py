"""The file process: writes uploads to disk durably for the serving process, beside its GIL.

`FileProcess` (engine/store/file_process.py) runs this file as ``python -P file_child.py
THREADS``. It reads requests on stdin and answers each on stdout, framed with `struct`:

- request: `REQUEST` (id, data length, path length, `EXCLUSIVE` or 0), the path (file system
  encoding), the data;
- reply: `REPLY` (id, errno, SHA-256 digest, message length), the message (UTF-8), which is
  empty and errno 0 once the data is written and fsynced.

Why a process: done on threads of the serving process, every system call of an upload (open,
write, fsync, close) handed the GIL back and waited to retake it from the event loop. At 10,000
sittings an upload spent about 1.8 ms on its thread, most of it waiting for the GIL, and two
threads stored about 850 a second (docs/performance.md). Here the only Python beside them is
this file's. It imports nothing but the standard library, so it starts in a quarter of a
second; at the end of its input it finishes what it was given, answers, and exits.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import struct
import sys
import threading
from typing import BinaryIO

REQUEST = struct.Struct("<QIHB")
EXCLUSIVE = 1
"""Create the file only if it does not exist (else errno EEXIST, and nothing is touched)."""
REPLY = struct.Struct("<Qi32sH")
NO_DIGEST = bytes(32)


def write_synced(path: str, data: bytes, exclusive: bool = False) -> None:
    """Plain system calls, not a buffered file; a write that fails leaves no file behind."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o644)
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(descriptor, view[written:])
        os.fsync(descriptor)
    except OSError:
        os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(path)  # a disk that filled up mid-write leaves no half file
        raise
    os.close(descriptor)


def _read_exactly(source: BinaryIO, size: int) -> bytes | None:
    """`size` bytes, or None at the end of input (the serving process closed the pipe)."""
    data = source.read(size) if size else b""
    return data if len(data) == size else None


def serve(source: BinaryIO, sink: BinaryIO, threads: int) -> None:
    """Answer every request read from `source` on `sink`, until `source` ends."""
    work: queue.SimpleQueue[tuple[int, str, bytes, bool] | None] = queue.SimpleQueue()
    sink_lock = threading.Lock()

    def reply(request_id: int, code: int, digest: bytes, message: str) -> None:
        encoded = message.encode()
        with sink_lock, contextlib.suppress(BrokenPipeError):  # the serving process is gone
            sink.write(REPLY.pack(request_id, code, digest, len(encoded)) + encoded)
            sink.flush()

    def run() -> None:
        while (item := work.get()) is not None:
            request_id, path, data, exclusive = item
            try:
                write_synced(path, data, exclusive)
            except OSError as error:
                reply(request_id, error.errno or errno.EIO, NO_DIGEST, error.strerror or str(error))
            else:
                reply(request_id, 0, hashlib.sha256(data).digest(), "")

    workers = [threading.Thread(target=run, name=f"files-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    while (header := _read_exactly(source, REQUEST.size)) is not None:
        request_id, size, path_size, flags = REQUEST.unpack(header)
        path = _read_exactly(source, path_size)
        data = _read_exactly(source, size)
        if path is None or data is None:
            break  # cut off mid-request: the serving process is gone, nobody waits for it
        work.put((request_id, os.fsdecode(path), data, bool(flags & EXCLUSIVE)))
    for _ in workers:
        work.put(None)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer, int(sys.argv[1]))
