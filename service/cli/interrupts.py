"""SIGINT (Ctrl-C) and SIGTERM while a command works on the database.

Before its commit, a signal cancels the work, which rolls back: nothing is kept, the command
says `error: interrupted` (exit 130) or `error: terminated` (SIGTERM, exit 143), and temporary
files are removed on the way out. From just before a commit until the command has printed its
result, signals are held: what was committed is always reported (a new key is never lost). A
signal still held when the next transaction begins is acted on then; one still held when the
command ends came too late to stop anything, and the command exits as it would have.

Once a signal is acted on, further ones are ignored so that the rollback, the closing of
connections and the removal of temporary files are not cut short (SIGKILL still stops it), and
that clean-up is quiet: one line says what happened, never a traceback.
"""

import asyncio
import logging
import signal
import threading
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The command was stopped by a signal before its commit: nothing of it was kept.

    Not a KeyboardInterrupt, which Typer turns into a silent exit 130: service.cli.entry prints
    it as one line."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def message(self) -> str:
        return "terminated (SIGTERM)" if self.signum == signal.SIGTERM else "interrupted"

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class Interrupts:
    """The process's handler of SIGINT and SIGTERM while a command runs (see the module)."""

    def __init__(self) -> None:
        self._installed = False
        self._task: asyncio.Task[Any] | None = None
        self._held = False
        self.pending: int | None = None
        """A signal held since a commit, not acted on yet."""
        self.received: int | None = None
        """The signal acted on, once one was."""

    def install(self) -> None:
        """Only from the main thread (a command run in a test's worker thread keeps Python's)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            signal.signal(signum, self._on_signal)
        self._installed = True

    def hold(self) -> None:
        """Just before a commit: signals wait until release() (or the end of the command).

        Raises Interrupted when a signal was already acted on: its cancellation of the task may
        not have landed yet (it lands at the next await, which could be the COMMIT itself, after
        the server received it); raised here, before COMMIT is sent, the transaction rolls back
        and "nothing was kept" stays true."""
        if self.received is not None:
            raise Interrupted(self.received)
        self._held = True

    @property
    def holding(self) -> bool:
        """Between a commit and the report of it (the next transaction, or the end)."""
        return self._held

    def release(self) -> None:
        """Act on a held signal now (more work follows what was reported)."""
        self._held = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            self._act(signum)

    async def guard(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` as the task a signal cancels."""
        if not self._installed:
            return await work
        self._task = asyncio.current_task()
        try:
            return await work
        finally:
            self._task = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            return
        if self._held:
            self.pending = self.pending or signum
            return
        self._act(signum)

    def _act(self, signum: int) -> None:
        self.received = signum
        # A connection close the cancellation cuts short is no news on the way out; SQLAlchemy's
        # pool would log it ("Exception closing connection") with a traceback.
        logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
        task = self._task
        if task is None or task.done():
            raise Interrupted(signum)
        task.get_loop().call_soon_threadsafe(task.cancel)


INTERRUPTS = Interrupts()
"""One per process, as signal handlers are."""
