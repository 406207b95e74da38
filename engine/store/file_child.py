"""The file process: appends uploads to segment files durably, beside the serving process's GIL.

`FileProcess` (engine/store/file_process.py) runs this file as ``python -P file_child.py
FOLDER``. It reads requests on stdin and answers each on stdout, framed with `struct`:

- request: `REQUEST` (id, data length), the data;
- reply: `REPLY` (id, errno, SHA-256 digest, offset, text length), the text (UTF-8): the
  segment's file name (in FOLDER) once the data is written there at that offset and synced, or
  with a non-zero errno, why it was not.

Why segments: creating a file costs this machine's file system 0.5–0.8 ms of CPU, synced or
not, and one file and one fsync an upload used a fifth of a core at 1,000 uploads a second.
Appending a batch's uploads to one file and syncing it once (`fdatasync`) costs 10–13 µs an
upload (docs/performance.md). The store records segment and offset; `engine.fixation` reads a
chunk back from them.

Why a process: done on threads of the serving process, every system call of an upload handed
the GIL back and waited to retake it from the event loop. It imports nothing but the standard
library, so it starts in a quarter of a second; at the end of its input it finishes what it
was given, answers, and exits.
"""

from __future__ import annotations

import calendar
import errno
import hashlib
import os
import signal
import struct
import sys
import time
from dataclasses import dataclass

REQUEST = struct.Struct("<QI")
REPLY = struct.Struct("<Qi32sQH")
NO_DIGEST = bytes(32)
READ_SIZE = 1 << 20
SEGMENT_BYTES = 256 << 20
"""A segment takes appends until it holds this much…"""
SEGMENT_SECONDS = 600.0
"""…or is this old; then the next upload starts a new one. Retention removes a segment only
when every upload in it is purged and it is well past this age, so never one still written."""
SEGMENT_SUFFIX = ".seg"


@dataclass(slots=True)
class Request:
    request_id: int
    data: bytes


class Requests:
    """Requests parsed out of what was read so far: `feed` bytes, `take` the complete ones."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def take(self) -> list[Request]:
        taken: list[Request] = []
        start = 0
        buffer = self._buffer
        while len(buffer) - start >= REQUEST.size:
            request_id, size = REQUEST.unpack_from(buffer, start)
            end = start + REQUEST.size + size
            if len(buffer) < end:
                break
            taken.append(Request(request_id, bytes(buffer[start + REQUEST.size : end])))
            start = end
        del buffer[:start]
        return taken

    @property
    def cut_off(self) -> bool:
        """Part of a request is left: at the end of input, its sender is gone."""
        return bool(self._buffer)


def segment_name(started: float, pid: int, number: int) -> str:
    """Sortable by start time (UTC), and never the same for two children or two segments."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    return f"{stamp}-{pid}-{number:04d}{SEGMENT_SUFFIX}"


def segment_started(name: str) -> float | None:
    """When the segment `name` was started (seconds since the epoch), or None for another file."""
    stamp, _, _ = name.partition("-")
    if not name.endswith(SEGMENT_SUFFIX):
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


class Segments:
    """The folder's segment files as this process appends to them.

    The current segment is opened by name for each batch, not held open between batches: one
    moved or removed under this process is noticed at once and a new one started, instead of
    being written into unseen. Anything that fails leaves its request refused and the segment
    given up (a failed write or sync leaves its end unknown); the next batch starts a new one.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._name: str | None = None
        self._size = 0
        self._started = 0.0
        self._count = 0

    def write_all(self, requests: list[Request]) -> bytes:
        """Append every request to the current segment, sync it once; the replies, in one piece."""
        name, offsets, failure = self.append_batch([request.data for request in requests])
        encoded = name.encode()
        replies: list[bytes] = []
        for request, offset in zip(requests, offsets, strict=False):
            digest = hashlib.sha256(request.data).digest()
            replies += (REPLY.pack(request.request_id, 0, digest, offset, len(encoded)), encoded)
        if failure is not None:
            replies += (_refused(r.request_id, failure) for r in requests[len(offsets) :])
        return b"".join(replies)

    def append_batch(self, datas: list[bytes]) -> tuple[str, list[int], OSError | None]:
        """Append `datas` in order to the current segment and sync it once: the segment's name,
        the offsets of the first ones, now durable, and why the rest (if any) were not."""
        try:
            descriptor = self._open()
        except OSError as error:
            return "", [], error
        name = self._name or ""
        offsets: list[int] = []
        failure: OSError | None = None
        try:
            for data in datas:
                try:
                    _write_whole(descriptor, data)
                except OSError as error:
                    failure = error  # this one and the rest are refused; the rest of the
                    break  # segment is unknown, so the next batch starts another
                offsets.append(self._size)
                self._size += len(data)
            try:
                os.fdatasync(descriptor)
            except OSError as error:
                failure, offsets = error, []  # never retried: what the cache held is unknown
        finally:
            os.close(descriptor)
        if failure is not None or self._size >= SEGMENT_BYTES:
            self._give_up()
        return name, offsets, failure

    def _open(self) -> int:
        """A descriptor on the segment to append to: the current one, or a new one."""
        if self._name is not None and time.monotonic() - self._started < SEGMENT_SECONDS:
            try:
                descriptor = os.open(
                    self._path(self._name), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
                )
            except FileNotFoundError:
                pass  # removed under us: what it held is the remover's doing; start another
            else:
                try:
                    self._size = os.fstat(descriptor).st_size  # its end, whoever wrote last
                except OSError:
                    os.close(descriptor)
                    raise
                return descriptor
        self._give_up()
        os.makedirs(self.folder, exist_ok=True)
        self._count += 1
        name = segment_name(time.time(), os.getpid(), self._count)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        descriptor = os.open(self._path(name), flags, 0o644)
        try:
            _sync_folder(self.folder)  # the new name is durable before anything in it is acked
        except OSError:
            os.close(descriptor)
            raise
        self._name, self._size, self._started = name, 0, time.monotonic()
        return descriptor

    def _give_up(self) -> None:
        self._name = None

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)


def _write_whole(descriptor: int, data: bytes) -> None:
    view, written = memoryview(data), 0
    while written < len(view):
        written += os.write(descriptor, view[written:])


def _sync_folder(folder: str) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _refused(request_id: int, error: OSError) -> bytes:
    message = (error.strerror or str(error)).encode()
    code = error.errno or errno.EIO
    return REPLY.pack(request_id, code, NO_DIGEST, 0, len(message)) + message


def serve(folder: str, source: int, sink: int) -> None:
    """Answer every request read from file descriptor `source` on `sink`, until `source` ends."""
    requests = Requests()
    segments = Segments(folder)
    while chunk := os.read(source, READ_SIZE):
        requests.feed(chunk)
        taken = requests.take()
        if not taken:
            continue
        replies = memoryview(segments.write_all(taken))
        try:
            while replies:
                replies = replies[os.write(sink, replies) :]
        except BrokenPipeError:
            return  # the serving process is gone: nobody waits for these


if __name__ == "__main__":
    # Ctrl-C in a terminal and a service manager's stop reach every process of the group; the
    # server then closes this pipe once the uploads it received are answered, and that ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(sys.argv[1], sys.stdin.fileno(), sys.stdout.fileno())
