"""An archive's data as pg_restore writes it, read from its stdout as it comes (`archive_data`
parses it): never written to disk, and bounded, so that a small archive which expands to more
than the bound (TENANTRY_IMPORT_MAX_BYTES) is refused once it passes it: what was loaded until
then (COPY, with indexes and WAL) is rolled back.

pg_restore runs in its own process group: a Ctrl-C at the terminal reaches the import, which
rolls back and then stops pg_restore, rather than pg_restore first, whose cut-short output must
never pass for the whole of the data (its exit status is checked once the stream is read).
"""

import io
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tenancy.lifecycle.archive_toc import InvalidArchive
from tenancy.lifecycle.pgtools import PgTool


class ArchiveTooLarge(InvalidArchive):
    """The archive's data expands beyond the bound: refused, nothing imported."""


class _Bounded(io.RawIOBase):
    """A pipe's bytes, counted; ArchiveTooLarge once more than `limit` were read."""

    def __init__(self, pipe: BinaryIO, limit: int) -> None:
        self._pipe = pipe
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._pipe.readinto(buffer)  # type: ignore[attr-defined]
        self._read += count or 0
        if self._read > self._limit:
            raise ArchiveTooLarge(
                f"refused: the archive's data expands to more than {self._limit} bytes "
                "(TENANTRY_IMPORT_MAX_BYTES); raise it to import this archive"
            )
        return count


class DataStream:
    """pg_restore's script of some entries of an archive, as lines (`lines`)."""

    def __init__(self, process: subprocess.Popen[bytes], errors: BinaryIO, limit: int) -> None:
        assert process.stdout is not None
        self._process = process
        self._pipe = process.stdout
        self._errors = errors
        self.lines: BinaryIO = io.BufferedReader(_Bounded(self._pipe, limit))  # type: ignore[assignment]

    def check_complete(self) -> None:
        """Once `lines` was read to its end: InvalidArchive unless pg_restore succeeded, so a
        stream it cut short (a damaged archive) is never taken for the whole of the data."""
        if self.lines.read(1):
            raise RuntimeError("the data stream was not read to its end")
        if self._process.wait() != 0:
            self._errors.seek(0)
            detail = self._errors.read().decode(errors="replace").strip().splitlines()
            reason = detail[0] if detail else f"exit {self._process.returncode}"
            raise InvalidArchive(f"refused: pg_restore cannot read the archive's data: {reason}")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self.lines.close()
        self._pipe.close()


@contextmanager
def restored_data(tool: PgTool, archive: Path, use_list: Path, limit: int) -> Iterator[DataStream]:
    """The data of the entries named in `use_list`, streamed; pg_restore is stopped on the way
    out (at once if the stream was not read to its end)."""
    with tempfile.TemporaryFile() as errors:
        process = tool.start(
            errors,
            "--data-only",
            "--no-owner",
            "--no-privileges",
            f"--use-list={use_list}",
            "--file=-",
            str(archive),
        )
        stream = DataStream(process, errors, limit)
        try:
            yield stream
        finally:
            stream.stop()
