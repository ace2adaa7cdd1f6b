"""The `tenantry` executable: the Typer app, with every failure a user can cause as one line.

The garbage collector stays off while the process starts (every import allocates long-lived
objects that a collection would only walk over) and comes back, with those objects frozen out of
its way, when a command starts its work (service.cli.common.begin_work).

Click and Typer print usage errors as a boxed, several-line message and uncaught exceptions as a
traceback; here each becomes `error: ...` on one stderr line and a non-zero exit (2 for usage
errors, as Click's, 1 for the rest). TENANTRY_DEBUG=1 shows the traceback instead.
"""

import contextlib
import errno
import gc
import os
import signal
import sys
from typing import Any, NoReturn

DEBUG_VARIABLE = "TENANTRY_DEBUG"
TYPER_INTERRUPTED = 130
"""What Typer returns, without a word, for a KeyboardInterrupt: a Ctrl-C before a command's work
began (service.cli.interrupts handles it from then on), or during `tenantry migrate`."""


def main() -> NoReturn:
    gc.disable()
    _refuse_undecodable_arguments()
    from service.cli.interrupts import Interrupted
    from service.cli.main import app

    try:
        code = app(standalone_mode=False, prog_name="tenantry")
    except BrokenPipeError as exc:
        _output_lost(exc)
    except SystemExit:
        # Click answers EPIPE on its own: stdout and stderr wrapped (PacifyFlushWrapper), then a
        # silent exit 1; here it gets its one line like every other failure.
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _output_lost(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))
        raise
    except Interrupted as exc:
        _fail(exc.message, exc.exit_status)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        # Click's exceptions are matched by shape: Typer 0.2x vendors its own copy of Click.
        kind = type(exc).__name__
        if kind == "NoArgsIsHelpError":
            # A group run with no command: its help on stdout, exit 2 (Click's status).
            print(exc.ctx.get_help())  # type: ignore[attr-defined]
            _exit(2)
        if kind == "Abort":
            _fail("aborted", 1)
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            _fail(_usage_line(exc), exc.exit_code)  # type: ignore[attr-defined]
        if isinstance(exc, OSError) and _is_stdout_error(exc):
            _output_lost(exc)
        if os.environ.get(DEBUG_VARIABLE):
            raise
        from tenancy.one_line import describe

        _fail(describe(exc, hint=f"{DEBUG_VARIABLE}=1 shows the traceback"), 1)
    if code == TYPER_INTERRUPTED:
        _fail("interrupted", code)
    try:
        sys.stdout.flush()  # what is still buffered: a full disk or a closed pipe shows here
    except OSError as exc:
        _output_lost(exc)
    _exit(code if isinstance(code, int) else 0)


def _refuse_undecodable_arguments() -> None:
    """An argument that is not UTF-8 (Python keeps its bytes as surrogates) could never name a
    tenant, a key or a display name, nor reach PostgreSQL: a usage error, not a driver's."""
    for argument in sys.argv[1:]:
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            _fail(f"argument {argument!r} is not valid UTF-8 text", 2)


def _usage_line(exc: Any) -> str:
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see `{ctx.command_path} --help`)"
    return message


def _fail(message: str, code: int) -> NoReturn:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _broken_pipe()
    print(f"error: {message}", file=sys.stderr, flush=True)
    _exit(code)


def _is_stdout_error(exc: OSError) -> bool:
    """An error writing the command's output (ENOSPC, EPIPE, EIO), not one of its own work."""
    return exc.errno in (errno.ENOSPC, errno.EPIPE, errno.EIO) and exc.filename is None


def _output_lost(exc: OSError) -> NoReturn:
    """The output could not be written: one line on stderr, exit 1. If the command had
    committed what it did (signals are held from a commit until its result is printed:
    service.cli.interrupts), the line says so, so that a retry is not a surprise."""
    from service.cli.interrupts import INTERRUPTS

    _quiet_stdout()
    if isinstance(exc, BrokenPipeError):
        what = "output closed early (broken pipe)"
    else:
        what = f"output could not be written ({exc.strerror or exc})"
    if INTERRUPTS.holding:
        what += (
            "; what the command did is committed, only its output is lost (`tenantry tenants"
            " list` shows tenants; `tenantry keys create SLUG` issues another key)"
        )
    print(f"error: {what}", file=sys.stderr, flush=True)
    _exit(1)


def _quiet_stdout() -> None:
    """stdout to /dev/null: what is buffered is dropped, the flush at exit cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    with contextlib.suppress(OSError):
        sys.stdout.flush()


def _broken_pipe() -> NoReturn:
    # stdout's reader went away (`tenantry migrate --sql | head`): nothing more can be written to
    # it, and the flush at exit must not print "Exception ignored ... BrokenPipeError".
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    print("error: output closed early (broken pipe)", file=sys.stderr, flush=True)
    _exit(1)


def _exit(code: int) -> NoReturn:
    # The outcome is decided and printed: a SIGINT or SIGTERM now could only cut the exit short
    # and make its status say otherwise (Python resets its own handlers as it finalizes).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)
