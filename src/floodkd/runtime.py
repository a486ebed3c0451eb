"""How a stage runs: its thread count, and its output to a log file with a console summary.

Snakemake gives every rule a ``log:`` file and a thread count. ``floodkd <stage> --log L
--threads N`` sends everything the stage prints (Python logging, tqdm, Dask, GDAL's C-level
messages) to ``L`` and keeps the console for one start line and one end line with the
duration, or the error message, so a user sees what ran and why it failed without opening
the log.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from floodkd.errors import InputError

__all__ = ["LOG_FORMAT", "use_threads", "run_logged"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# thread pools read these when they start: BLAS/OpenMP (numpy, scipy, torch), GDAL
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "GDAL_NUM_THREADS")


def use_threads(threads: int) -> None:
    """Limit every thread pool of this process to ``threads``: torch, BLAS, GDAL and Dask."""
    threads = max(int(threads), 1)
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import dask

    dask.config.set(num_workers=threads)
    if "torch" in sys.modules:  # imported already: the variables came too late for it
        sys.modules["torch"].set_num_threads(threads)


class _LogLines(io.TextIOBase):
    """A text stream for a log file: carriage returns become newlines, so each progress-bar
    update is a line of its own instead of a run of overwritten text."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text.replace("\r\n", "\n").replace("\r", "\n"))
        self._stream.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()


@contextmanager
def _output_to(log_path: Path) -> Iterator[TextIO]:
    """Point file descriptors 1 and 2 (and sys.stdout/err) at ``log_path``; yield the console."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = open(os.dup(2), "w", buffering=1)  # noqa: SIM115 - closed below
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    streams = sys.stdout, sys.stderr
    log_stream = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - closed below
    sys.stdout = sys.stderr = _LogLines(log_stream)
    root = logging.getLogger()
    handlers = root.handlers[:]
    to_log = logging.StreamHandler(sys.stderr)
    to_log.setFormatter(logging.Formatter(LOG_FORMAT))
    root.handlers = [to_log]
    # one progress line every 10 s is plenty in a file (tqdm reads TQDM_* variables)
    os.environ.setdefault("TQDM_MININTERVAL", "10")
    try:
        yield console
    finally:
        root.handlers = handlers
        log_stream.flush()
        log_stream.close()
        sys.stdout, sys.stderr = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        console.close()


def run_logged(name: str, log_path: str | Path | None, work: Callable[[], None]) -> int:
    """Run ``work`` as the stage ``name``; return the exit code (0, 1 or 2 for bad input).

    With ``log_path`` the stage's output goes there and the console gets a start line and an
    end line. An InputError's message (file, problem, fix) is shown on the console as well.
    """
    if log_path is None:
        try:
            work()
        except InputError as error:
            print(f"{name}: error: {error}", file=sys.stderr)
            return 2
        return 0
    log_path = Path(log_path)
    started = time.perf_counter()
    with _output_to(log_path) as console:
        print(f"{name}: started (log: {log_path})", file=console)
        try:
            work()
        except InputError as error:
            message = f"{name}: error: {error}"
            print(message, file=sys.stderr)
            print(message, file=console)
            return 2
        except Exception as error:
            traceback.print_exc()
            print(f"{name}: failed after {time.perf_counter() - started:.1f} s: "
                  f"{type(error).__name__}: {error} (traceback in {log_path})", file=console)
            return 1
        print(f"{name}: done in {time.perf_counter() - started:.1f} s", file=console)
    return 0
