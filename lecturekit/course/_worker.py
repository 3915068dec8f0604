"""The grading worker: runs ONE submitted notebook, in two processes of its own.

Started by :mod:`lecturekit.course.grading`, never by hand:

* the **supervisor** (``python .../_worker.py supervise ...``, standard library only, so it
  starts in a fraction of a second) makes itself the "child subreaper" of everything below it
  (Linux ``prctl``): a process the notebook starts, even one that detaches with ``setsid`` or a
  double fork, stays in its tree. It starts the runner in a process group of its own, waits for
  it, and then kills every process left below it (also on SIGTERM/SIGINT/SIGHUP from the grader
  and when the grader itself disappears), so nothing a submission started outlives its worker.
  After each cell the runner waits for the supervisor's answer on a pair of pipes: a cell that
  SIGKILLs the supervisor ends the runner before it can announce the next cell, so the grader
  always knows which cell ended the worker (and skips that one on the retry).
* the **runner** (``python -c ... run``) limits its own memory (``RLIMIT_AS``), moves the two
  pipe ends it shares with the grader to unpredictable descriptors and forgets their numbers in
  ``sys.argv``, takes private references to what it uses later, sends the grader a random secret
  **before any student code runs**, then runs the notebook's code cells in order in an IPython
  shell (no Jupyter kernel; a failing cell does not stop the rest, as "Run all" with errors
  allowed), announcing each cell and recording each cell's error (type, message, line).

  Only after the last cell does it ask the grader for the work (``cells-done`` with the secret);
  the grader then sends a one-time token and the test cases, and the runner streams back, case by
  case, what the student's function returned, as plain data. It compares nothing: the verdict is
  computed in the grader's process (:func:`lecturekit.course.checking.evaluate`) against the
  grader's own copy of the reference. Any exception in a case, ``SystemExit`` and
  ``KeyboardInterrupt`` included, fails that case only; a value that cannot be sent fails it with
  a message saying so. While a case runs, every Python call (in this thread, and in threads
  started through ``threading``) is traced: running the exercise's reference code (the list comes
  from the grader, :func:`lecturekit.course.grading.reference_code`) marks the case "used
  reference", whatever route reached it.

What this cannot stop: code that runs in the same process can, in principle, find the secret and
the descriptors in memory and speak the protocol itself, or switch the tracing off and on again
unseen; a student can always re-implement the reference or paste its source (new code, which the
tracing does not recognise), or run it in another process or a thread started without
``threading``. The grader's guarantees and limits are stated in the README.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
FRAME_LIMIT = 256 << 20            # the largest message either side accepts (bytes)


# --------------------------------------------------------------------------- process trees
def _process_table() -> dict[int, tuple[int, str]]:
    """``pid -> (parent pid, state letter)`` for every process visible in /proc."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()
        if len(rest) > 1:
            table[int(name)] = (int(rest[1]), rest[0].decode("ascii", "replace"))
    return table


def descendants(pid: int, *, living_only: bool = True) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...); zombies left out by default."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        if p in found:
            continue
        found.append(p)
        todo += children.get(p, [])
    if living_only:
        found = [p for p in found if table.get(p, (0, "Z"))[1] not in ("Z", "X")]
    return found


def kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid`` (a fallback of the grader: it catches what stayed
    in the worker's session even if the supervisor itself was killed)."""
    for _ in range(20):
        found = []
        for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    rest = fh.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(rest) > 3 and int(rest[3]) == sid and rest[0] not in (b"Z", b"X"):
                found.append(int(name))
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def _reap() -> None:
    """Collect every finished child of this process (no zombies left behind)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(pid: int, rounds: int = 100) -> None:
    """SIGKILL every process below ``pid`` until none is left (also those forked meanwhile)."""
    for _ in range(rounds):
        procs = descendants(pid)
        if not procs:
            break
        for p in procs:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if pid == os.getpid():
            _reap()
        time.sleep(0.01)
    if pid == os.getpid():
        _reap()


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False  # pragma: no cover - elsewhere only the runner's process group is killed
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover
        return False


def supervise(argv: list[str]) -> int:
    """``supervise FD_IN FD_OUT -- RUNNER COMMAND...``: run the runner, then kill what is left."""
    fds = [int(argv[0]), int(argv[1])]
    command = argv[argv.index("--") + 1:]
    _become_subreaper()
    grader = os.getppid()
    runner: list[subprocess.Popen] = []

    def finish(code: int) -> None:
        if runner:
            try:
                os.killpg(runner[0].pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        kill_tree(os.getpid())
        os._exit(code)

    def on_signal(signum, frame):  # noqa: ARG001
        finish(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    def prepare():  # in the runner, before it starts: own process group, dies with us
        os.setpgrp()
        try:
            import ctypes

            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - not Linux
            pass

    # The liveness pipes: after each cell the runner writes a byte on "ping" and waits for our
    # byte on "pong". A cell that SIGKILLs this process (its parent) cannot get past that point,
    # because a process with a pending SIGKILL runs no more user code: the runner reads EOF and
    # ends before it announces the next cell, so the grader knows which cell ended the worker.
    ping_r, ping_w = os.pipe()
    pong_r, pong_w = os.pipe()
    os.set_blocking(pong_w, False)
    command = [*command, str(ping_w), str(pong_r)]
    runner.append(subprocess.Popen(command, pass_fds=[*fds, ping_w, pong_r], preexec_fn=prepare))  # noqa: PLW1509
    for fd in (*fds, ping_w, pong_r):
        os.close(fd)
    import select

    while True:
        code = runner[0].poll()
        if code is not None:
            break
        if os.getppid() != grader:          # the grader is gone: nobody waits for the result
            finish(137)
        if ping_r < 0:
            time.sleep(0.2)
            continue
        try:
            ready = select.select([ping_r], [], [], 0.2)[0]
        except InterruptedError:  # pragma: no cover - signal handlers end the process
            continue
        if not ready:
            continue
        try:
            data = os.read(ping_r, 4096)
        except OSError:
            data = b""
        if not data:                        # every writer closed it: only wait from now on
            os.close(ping_r)
            ping_r = -1
            continue
        try:
            os.write(pong_w, b"." * len(data))
        except (BlockingIOError, OSError):
            pass
    finish(code if code >= 0 else 128 - code)
    return code  # pragma: no cover - finish() does not return


# --------------------------------------------------------------------------- framing
def write_frame(fd: int, data: bytes, _write=os.write) -> None:
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[_write(fd, view):]


def read_exact(fd: int, n: int, _read=os.read) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = _read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_frame(fd: int) -> bytes | None:
    head = read_exact(fd, 8)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > FRAME_LIMIT:
        raise ValueError(f"a message of {size} bytes (the limit is {FRAME_LIMIT})")
    return read_exact(fd, size)


# --------------------------------------------------------------------------- the runner
def _hide(fd: int) -> int:
    """A copy of ``fd`` at a random high descriptor (closed on exec); the original is closed."""
    import fcntl
    import random

    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, random.SystemRandom().randint(200, 900))
    os.close(fd)
    return new


def run(argv: list[str] | None = None) -> int:
    """``run NOTEBOOK FD_IN FD_OUT MEMORY_BYTES SKIP_JSON [PING PONG]`` (see the module docstring);
    SKIP_JSON: ``{"cell index": "why"}`` for cells not to run (they ended an earlier run); PING,
    PONG: the liveness pipes, added by the supervisor."""
    argv = list(sys.argv[1:] if argv is None else argv)
    notebook, fd_in, fd_out, memory = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    skip = argv[4] if len(argv) > 4 else "{}"
    ping, pong = (int(argv[5]), int(argv[6])) if len(argv) > 6 else (-1, -1)
    sys.argv[:] = [""]                                   # nothing of the channel stays visible
    if memory > 0:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    fd_in, fd_out = _hide(fd_in), _hide(fd_out)
    if ping >= 0:
        ping, pong = _hide(ping), _hide(pong)

    import io
    import json
    import linecache
    import threading
    import traceback

    import torch
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from lecturekit.course.checking import NOT_IMPLEMENTED, _clone, _one_line, answer_candidate, to_plain
    from lecturekit.course.checking import __file__ as checking_file

    # Private references: whatever a cell later patches in these modules does not reach us.
    save, load, BytesIO, urandom = torch.save, torch.load, io.BytesIO, os.urandom
    write, read, exit_now = write_frame, read_frame, os._exit
    os_write, os_read = os.write, os.read
    extract_tb, getlines = traceback.extract_tb, linecache.getlines
    base_exception, not_implemented = BaseException, NotImplementedError
    callable_, isinstance_, len_ = callable, isinstance, len
    settrace, gettrace, thread_settrace, join = sys.settrace, sys.gettrace, threading.settrace, os.path.join

    # Reference detection by what runs: while a student function runs on the test cases, every
    # Python function call (in this thread and in threads started through ``threading``) is
    # checked against the code of the exercise's reference (its file, first line and name, so a
    # reloaded module or a helper reached through a closure is the same code). The grader sends
    # the list with the cases; a student cell never sees it.
    watched: list = [None, False]        # [forbidden code of the exercise graded now, seen one]

    def tracer(frame, event, arg):  # noqa: ARG001
        keys = watched[0]
        if keys is not None:
            code = frame.f_code
            if (code.co_filename, code.co_firstlineno, code.co_name) in keys:
                watched[1] = True
        return None

    thread_settrace(tracer)          # threads a cell starts carry it (idle until a case runs)
    library = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(checking_file))))
    dict_, list_, tuple_, str_, type_, sorted_, enumerate_ = dict, list, tuple, str, type, sorted, enumerate
    frozenset_ = frozenset

    def supervisor_alive() -> None:
        """Return only if the supervisor answers (see :func:`supervise`); end this process otherwise."""
        if ping < 0:
            return
        try:
            os_write(ping, b"?")
            if os_read(pong, 1):
                return
        except OSError:
            pass
        exit_now(137)

    def send(message: dict) -> None:
        buf = BytesIO()
        save(message, buf)
        write(fd_out, buf.getvalue())

    def receive() -> dict:
        data = read(fd_in)
        if data is None:
            exit_now(3)
        return load(BytesIO(data), weights_only=True)

    secret = urandom(16).hex()
    send({"kind": "hello", "secret": secret})

    folder = os.path.dirname(os.path.abspath(notebook))
    sys.path.insert(0, folder)

    nb = json.loads(open(notebook, encoding="utf-8").read())
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            cells.append("".join(src) if isinstance(src, list) else src)

    def where(tb) -> str:
        """'code cell N, line L' of the innermost frame that is notebook code."""
        for frame in reversed(extract_tb(tb)):
            lines = getlines(frame.filename) if frame.filename.startswith("<") else []
            text = "".join(lines).rstrip()
            for index, src in enumerate_(cells):
                if text and src.rstrip() == text:
                    return f"code cell {index + 1}, line {frame.lineno}"
        return ""

    def describe_error(err: BaseException) -> str:
        if isinstance_(err, SyntaxError):
            return _one_line(f"{type_(err).__name__}: {err.msg} (line {err.lineno})", 300)
        spot = where(err.__traceback__)
        text = f"{type_(err).__name__}: {err}" if str_(err) else type_(err).__name__
        return _one_line(text + (f" ({spot})" if spot else ""), 300)

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    errors = []
    skip = {int(k): v for k, v in json.loads(skip).items()}
    for index, source in enumerate_(cells):
        send({"kind": "cell", "index": index})
        if index in skip:
            errors.append({"cell": index + 1, "error": _one_line(f"not run: {skip[index]}", 300)})
            continue
        result = shell.run_cell(source, store_history=False)
        supervisor_alive()      # a cell that killed the supervisor ends here, blamed on this cell
        err = result.error_in_exec or result.error_before_exec
        if err is not None:
            errors.append({"cell": index + 1, "error": describe_error(err)})

    # Only now: ask for the work. A cell cannot have received it, because it was never sent.
    send({"kind": "cells-done", "secret": secret, "errors": errors})
    work = receive()
    token = work["token"]
    namespace = shell.user_ns

    def outcome(fn, args, kwargs) -> dict:
        a, kw = _clone(args), _clone(kwargs)
        try:
            out = fn(*a, **kw)
        except not_implemented as err:
            return {"status": NOT_IMPLEMENTED, "error": str_(err) or "NotImplementedError"}
        except base_exception as err:  # SystemExit and KeyboardInterrupt fail this case only
            return {"status": "raised", "error": describe_error(err)}
        try:         # (still traced: a tensor subclass may run code when it is converted)
            return {"status": "ok", "output": to_plain(out),
                    "args_after": [to_plain(v) for v in list_(a)] + [to_plain(kw[k]) for k in sorted_(kw)]}
        except base_exception as err:
            return {"status": "unsendable", "error": _one_line(
                f"your function returned a value that cannot be sent to the grader "
                f"({type_(err).__name__}: {err})", 300)}

    def traced_outcome(fn, args, kwargs, keys) -> dict:
        watched[0], watched[1] = keys, False
        settrace(tracer)
        try:
            result = outcome(fn, args, kwargs)
        finally:
            still_ours = gettrace() is tracer
            settrace(None)
            used, watched[0] = watched[1], None
        if used:
            return {"status": "used reference"}
        if not still_ours:
            return {"status": "untraceable", "error": "your function switched off the grader's call tracing "
                                                      "(sys.settrace), so this case cannot be graded"}
        return result

    thread_settrace(tracer)          # again: a cell may have replaced it
    for ex_id, item in work["exercises"].items():
        name = item["name"]
        keys = frozenset_((join(library, rel), line, code_name) for rel, line, code_name in item.get("forbidden", ()))
        fn = namespace.get(name)
        if item.get("answer") and name in namespace:
            fn = answer_candidate(fn)           # an experiment's answer: a value, not a function
        if not callable_(fn):
            send({"kind": "exercise", "token": token, "exercise": ex_id, "status": "missing",
                  "error": f"{name} is {type_(fn).__name__}" if name in namespace else f"{name} is not defined"})
            send({"kind": "exercise-done", "token": token, "exercise": ex_id})
            continue
        send({"kind": "exercise", "token": token, "exercise": ex_id, "status": "ran"})
        for args, kwargs in item["cases"]:
            result = traced_outcome(fn, tuple_(args), dict_(kwargs), keys)
            message = {"kind": "outcome", "token": token, "exercise": ex_id, **result}
            try:
                buf = BytesIO()
                save(message, buf)
                data = buf.getvalue()
                if len_(data) > FRAME_LIMIT // 2:
                    raise ValueError(f"{len_(data) >> 20} MiB")
            except base_exception as err:
                message = {"kind": "outcome", "token": token, "exercise": ex_id, "status": "unsendable",
                           "error": _one_line(f"your function returned a value that cannot be sent to the "
                                              f"grader ({type_(err).__name__}: {err})", 300)}
                buf = BytesIO()
                save(message, buf)
                data = buf.getvalue()
            write(fd_out, data)
        send({"kind": "exercise-done", "token": token, "exercise": ex_id})
    send({"kind": "bye", "token": token})
    exit_now(0)   # no atexit handlers or finalisers of student code run after the results
    return 0  # pragma: no cover


if __name__ == "__main__":
    if sys.argv[1:2] == ["supervise"]:
        sys.exit(supervise(sys.argv[2:]))
    sys.exit(run(sys.argv[2:]) if sys.argv[1:2] == ["run"] else 2)
