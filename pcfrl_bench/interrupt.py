"""Stopping cleanly: SIGTERM and SIGHUP raise like Ctrl-C, and child processes stop with their parent.

An interruption is an exception in the main thread (:class:`~pcfrl_bench.errors.Interrupted`, a
KeyboardInterrupt), so every ``finally`` and context manager runs on the way out: atomic writes remove their temp
file, temporary folders are deleted, DataLoader workers are shut down, folder locks released. Records and
checkpoints are only ever replaced by a rename, so what is on disk stays whole and ``--resume`` continues.
:func:`run_in_processes` runs calls in forked children and, when interrupted, stops every one of them the same
way (SIGTERM, then SIGKILL after a grace period) before re-raising.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import Interrupted, PcfrlError

if TYPE_CHECKING:  # multiprocessing is imported by the functions that start processes (every command imports this)
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
GRACE_S = 30.0  # how long an interrupted child may take to clean up before it is killed


_pending: int | None = None  # the stop signal that arrived, if any


def _raise(signum: int, frame: Any) -> None:
    global _pending
    _pending = signum
    raise Interrupted(signum)


def check_interrupted() -> None:
    """Raise :class:`Interrupted` again if a stop signal arrived. A signal handler's exception is lost when the
    handler happens to run inside a finaliser or an at-fork hook (e.g. while a DataLoader forks its workers):
    long loops call this once per step so that the stop is never missed."""
    if _pending is not None:
        raise Interrupted(_pending)


@contextmanager
def signals_raise(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, ``signals`` raise :class:`Interrupted` in the main thread (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _pending
    previous = {s: signal.signal(s, _raise) for s in signals}
    unraisable = sys.unraisablehook

    def quiet(info: Any) -> None:  # a stop lost in a finaliser is raised again by check_interrupted: no noise
        if not isinstance(info.exc_value, Interrupted):
            unraisable(info)
    sys.unraisablehook = quiet
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sys.unraisablehook = unraisable
        _pending = None


def exit_with_parent(parent: int, poll_s: float = 1.0, grace_s: float = GRACE_S) -> None:
    """In a child: a daemon thread sends this process SIGTERM as soon as ``parent`` is gone (killed), so it
    cleans up and ends instead of training on unattended; it is killed if still alive ``grace_s`` later."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if the pipe can send it (it pickles, and rebuilds from its reduced form as unpickling would: checked
    with ``copy.deepcopy``, nothing is unpickled), else a PcfrlError (user errors) or RuntimeError with its text."""
    import copy
    import pickle
    import traceback

    try:
        pickle.dumps(exc)
        copy.deepcopy(exc)
        return exc
    except Exception:  # noqa: BLE001 (any pickling failure: send the text instead)
        if isinstance(exc, PcfrlError):
            return PcfrlError(str(exc))
        text = "".join(traceback.format_exception(exc))
        return RuntimeError(f"{type(exc).__name__} in a worker process: {exc}\n{text}")


def _child(fn: Callable[..., Any], args: tuple, conn: Connection, parent: int) -> None:
    exit_with_parent(parent)
    with signals_raise():
        try:
            outcome: tuple[str, Any] = ("ok", fn(*args))
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the unwinding has cleaned up; say nothing
            raise SystemExit(128 + getattr(exc, "signum", signal.SIGINT)) from None
        except BaseException as exc:  # noqa: BLE001 (handed to the parent, which raises it)
            outcome = ("error", _portable(exc))
    conn.send(outcome)
    conn.close()


def stop_processes(processes: Sequence[BaseProcess], grace_s: float = GRACE_S) -> None:
    """SIGTERM every live process (each cleans up and exits), then SIGKILL those still alive after ``grace_s``."""
    for p in processes:
        if p.is_alive():
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    try:
        for p in processes:
            p.join(max(0.0, deadline - time.monotonic()))
    finally:  # also on a second Ctrl-C while waiting
        for p in processes:
            if p.is_alive():
                p.kill()
                p.join()


def run_in_processes(fn: Callable[..., Any], calls: Sequence[tuple], jobs: int,
                     on_done: Callable[[int, Any], None] | None = None, grace_s: float = GRACE_S) -> list[Any]:
    """``fn(*args)`` for every ``args`` of ``calls``, each in its own forked child, at most ``jobs`` at a time;
    the results in the order of ``calls`` (``on_done(i, result)`` as each finishes).

    A child's exception is raised here after the other children are stopped; a child that dies (killed) is a
    PcfrlError. Ctrl-C or SIGTERM (here or in a child) stops every child and re-raises here: nothing keeps
    running, each child's temp files are removed by its own unwinding."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    results: list[Any] = [None] * len(calls)
    pending = list(enumerate(calls))
    running: dict[Connection, tuple[int, BaseProcess]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, args = pending.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_child, args=(fn, args, send, os.getpid()), name=f"worker-{i}")
                process.start()
                send.close()
                running[receive] = (i, process)
            ready = wait(list(running), timeout=1.0)
            check_interrupted()  # a stop whose exception was lost while a child was forked
            for conn in ready:
                i, process = running.pop(conn)
                try:
                    status, value = conn.recv()
                except EOFError:  # it ended without an answer: killed, or interrupted itself
                    process.join()
                    code = process.exitcode or 0
                    signum = code - 128 if code > 128 else -code  # exit status 128 + N, or killed by N
                    if signum in (signal.SIGINT, *STOP_SIGNALS):
                        raise Interrupted(signum) from None
                    raise PcfrlError(f"a worker process ended without a result (exit status {code}); "
                                     "run again with --resume") from None
                finally:
                    conn.close()
                process.join()
                if status == "error":
                    raise value
                results[i] = value
                if on_done is not None:
                    on_done(i, value)
    finally:
        stop_processes([p for _, p in running.values()], grace_s)
        for conn in running:
            conn.close()
    return results
