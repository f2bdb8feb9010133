"""What the interop drivers (interop/clients/run.py, interop/calls/run.py, interop/inspector/run.py)
share: the tally of checks, named steps, a free port below 32768, the `mtcall serve` process and its
log, child processes spoken to in JSON lines, and the environment for the clients.

A driver imports it with
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
    import harness
Python 3.11 standard library only.
"""

import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import Future
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tally:
    """Counts checks and prints one line for each, `ok NAME [(DETAIL)]` or `FAIL NAME: REASON`, after
    `prefix`; summary() prints `N passed, M failed` last."""

    def __init__(self, prefix=""):
        self.passed = 0
        self.failed = 0
        self.prefix = prefix
        self.lock = threading.Lock()

    def line(self, text):
        print(f"{self.prefix}{text}", flush=True)

    def ok(self, name, detail=""):
        with self.lock:
            self.passed += 1
            self.line(f"ok {name}" + (f" ({detail})" if detail else ""))

    def fail(self, name, reason):
        with self.lock:
            self.failed += 1
            self.line(f"FAIL {name}: {reason}")

    def info(self, text):
        """Information, not a check: a line starting with `#`."""
        self.line(f"# {text}")

    def summary(self):
        """Prints `N passed, M failed`; returns the exit status, 1 if any check failed."""
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


def free_port():
    """A free TCP port on 127.0.0.1 below 32768: GramJS's StringSession keeps the port as an int16."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768")


def log_lines(path):
    """A log file's lines without ANSI colours ([] if it cannot be read)."""
    try:
        return ANSI.sub("", Path(path).read_text(errors="replace")).splitlines()
    except OSError:
        return []


def log_tail(path, n=40):
    return log_lines(path)[-n:]


class CheckFailed(Exception):
    """A check's condition did not hold; its message is the reason reported."""


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


class Steps:
    """Named checks run in order as decorated functions: `@steps("name")` (or `@steps.step("name")`) runs
    the function at once and tallies `ok NAME [(DETAIL)]` with what it returned, or `FAIL NAME: REASON`.
    Once one fails the rest are failed as not run, unless `soft` (then each check stands alone). Names get
    `title / ` in front when a title is given; exceptions of the `clean` classes are reported by their
    message alone, others with their class name."""

    def __init__(self, tally, title=None, soft=False, clean=(CheckFailed,)):
        self.tally, self.title, self.soft, self.clean = tally, title, soft, clean
        self.broken = None

    def __call__(self, name):
        full = f"{self.title} / {name}" if self.title else name

        def run(fn):
            if self.broken:
                self.tally.fail(full, f"not run ({self.broken})")
                return
            try:
                detail = fn()
            except Exception as e:  # noqa: BLE001 - every failure is one failed check
                reason = str(e) if isinstance(e, self.clean) else f"{type(e).__name__}: {e}"
                self.tally.fail(full, " ".join(reason.split()))
                if not self.soft:
                    self.broken = f"'{name}' failed"
                return
            self.tally.ok(full, detail or "")

        return run

    step = __call__


class AgentError(CheckFailed):
    """A request to a JSON-lines child that failed; .error is its error object ({rpc, code, class, text})."""

    def __init__(self, lib, op, error):
        self.lib, self.op, self.error = lib, op, error
        super().__init__(f"{lib} {op}: " + (f"{error.get('class')}: {error.get('text')}"
                                            if error.get("class") else str(error.get("text"))))


class JsonLines:
    """A child process spoken to in JSON lines (the call agents, the inspector's page checker): requests
    {"id", "op", ...} are answered by {"id", "ok", "result"|"error"}; every other line it prints (such as
    {"ready": ...}) is queued for next(). stderr goes to log_path. A request that hangs kills the child,
    so the requests after it fail at once instead of each waiting out its timeout."""

    def __init__(self, lib, cmd, env, log_path, op_timeout=15.0):
        self.lib, self.log_path, self.op_timeout = lib, log_path, op_timeout
        self.stderr = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=env, text=True, bufsize=1)
        self.pending = {}
        self.lock = threading.Lock()
        self.next_id = 0
        self.dead = None  # reason, once the child hung or exited
        self.lines = queue.Queue()  # what is not an answer; None once the child exited
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                fut = self.pending.pop(msg.get("id"), None) if "id" in msg else None
            if fut is None:
                self.lines.put(msg)
            elif not fut.done():
                fut.set_result(msg)
        with self.lock:
            self.dead = self.dead or f"{self.lib} exited (status {self.proc.poll()})"
            pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_result({"ok": False, "error": {"text": self.dead}})
        self.lines.put(None)

    def write(self, obj):
        """Sends one line as it is (no answer is awaited)."""
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def next(self, timeout):
        """The next line that is not an answer; CheckFailed when none comes in time or the child exited."""
        try:
            msg = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise CheckFailed(f"{self.lib}: nothing within {timeout:.0f}s; stderr {self.tail()}") from None
        if msg is None:
            self.lines.put(None)
            raise CheckFailed(f"{self.lib} exited ({self.proc.poll()}); stderr {self.tail()}")
        return msg

    def wait_ready(self, timeout=30):
        """The child's {"ready": ...} line."""
        msg = self.next(timeout)
        if not msg.get("ready"):
            raise CheckFailed(f"{self.lib}: expected a ready line, got {msg}")
        return msg

    def send(self, op, **args):
        """Sends a request; returns a Future of its answer (with .op)."""
        fut = Future()
        fut.op = op
        with self.lock:
            if self.dead:
                fut.set_result({"ok": False, "error": {"text": self.dead}})
                return fut
            self.next_id += 1
            rid = self.next_id
            self.pending[rid] = fut
        try:
            self.write(dict(args, id=rid, op=op))
        except OSError as e:
            with self.lock:
                self.pending.pop(rid, None)
            fut.set_result({"ok": False, "error": {"text": f"{self.lib}: {e}"}})
        return fut

    def result(self, fut, timeout=None):
        """The answer's result, or AgentError."""
        timeout = self.op_timeout if timeout is None else timeout
        try:
            msg = fut.result(timeout)
        except TimeoutError:
            self.kill(f"{self.lib} killed: '{fut.op}' hung for {timeout:.0f}s")
            raise AgentError(self.lib, fut.op, {"text": f"no answer within {timeout:.0f}s (killed)"}) from None
        if not msg.get("ok"):
            raise AgentError(self.lib, fut.op, msg.get("error") or {})
        return msg.get("result")

    def do(self, op, op_timeout=None, **args):
        """A request and its result."""
        return self.result(self.send(op, **args), op_timeout)

    def kill(self, reason):
        with self.lock:
            self.dead = self.dead or reason
        if self.proc.poll() is None:
            self.proc.kill()

    def tail(self, n=8):
        return " | ".join(log_tail(self.log_path, n)) or "empty"

    def close(self, exit_op=True):
        """Asks it to exit (an "exit" request, unless not exit_op), closes its stdin and waits; kills it if
        it does not go."""
        if self.proc.poll() is None:
            try:
                if exit_op:
                    self.do("exit", op_timeout=10)
                self.proc.stdin.close()
                self.proc.wait(10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def client_env():
    """The environment for the clients and mtcall's client commands: ours without RUST_LOG."""
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    return env


class Server:
    """`mtcall serve --data DATA --listen 127.0.0.1:PORT` with RUST_LOG=info,server=debug, stderr appended
    to `log`, stdout to `log` with the suffix .stdout. Without a `port` each start attempt takes a free
    one; a given port is kept (a restart on the same data dir and port). `extra_args` are appended to the
    command line."""

    def __init__(self, binary, data, log, port=None, extra_args=()):
        self.binary, self.data, self.log = binary, data, log
        self.extra_args = list(extra_args)
        self.port, self.fixed_port = port, port is not None
        self.proc = None
        self.banner = ""

    def start(self, attempts=5):
        """Starts the server and waits for its `listening on` banner, which it returns (and keeps in
        .banner). A server that exits early (the port taken, or still held) is started again."""
        env = dict(os.environ, RUST_LOG="info,server=debug")
        for attempt in range(attempts):
            if not self.fixed_port:
                self.port = free_port()
            out = self.log.with_suffix(".stdout")
            with open(self.log, "ab") as err, open(out, "wb") as stdout:
                self.proc = subprocess.Popen(
                    [self.binary, "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}",
                     *self.extra_args],
                    stdout=stdout, stderr=err, stdin=subprocess.DEVNULL, env=env)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                text = out.read_text(errors="replace")
                if "listening on" in text:
                    self.banner = text.strip()
                    return self.banner
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            else:
                self.stop()
                raise RuntimeError("server did not report 'listening on' within 30 s")
            # exited early: a held port needs longer to come free than a new port takes to find
            time.sleep((1 if self.fixed_port else 0.5) + attempt)
        raise RuntimeError(f"server failed to start (exit {self.proc.returncode}); see {self.log}")

    def stop(self):
        """SIGTERM and wait; returns None if it stopped cleanly (or was not running), else a reason."""
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            self.proc = None
            return None if rc in (None, 0) else f"server had already exited with {rc}"
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return "server did not stop within 15 s of SIGTERM (killed)"
        self.proc = None
        return None if rc == 0 else f"server exited with {rc} after SIGTERM"

    def tail(self, n=60):
        """The last n lines of the server log."""
        return log_tail(self.log, n)
