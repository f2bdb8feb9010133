"""What the interop drivers (interop/clients, calls, inspector, pyrogram, mtcute, media and operating run.py)
share: the tally of checks, named steps, a free port below 32768, the `mtcall serve` process and its log, a
suite's phase run as a child that prints `ok`/`FAIL` lines, child
processes spoken to in JSON lines, mtcall's own client (`mtcall login`, `mtcall bot create`, `mtcall call` /
`mtcall answer` read line by line), the calls a scenario left to discard, the environment for the clients,
and main()'s command line and closing report.

A driver imports it with
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
    import harness
Python 3.11 standard library only.
"""

import argparse
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tally:
    """Counts checks and prints one line for each, `ok NAME [(DETAIL)]` or `FAIL NAME: REASON` (the reason
    on one line), after `prefix`; summary() prints `N passed, M failed` last. `hints`: (substring, hint)
    pairs; a failure reason containing a substring gets the first such hint appended in brackets."""

    def __init__(self, prefix="", hints=()):
        self.passed = 0
        self.failed = 0
        self.prefix = prefix
        self.hints = list(hints)
        self.lock = threading.Lock()

    def line(self, text):
        print(f"{self.prefix}{text}", flush=True)

    def ok(self, name, detail=""):
        with self.lock:
            self.passed += 1
            self.line(f"ok {name}" + (f" ({detail})" if detail else ""))

    def fail(self, name, reason):
        reason = " ".join(str(reason).split())
        hint = next((h for pattern, h in self.hints if pattern in reason), None)
        if hint:
            reason += f" [{hint}]"
        with self.lock:
            self.failed += 1
            self.line(f"FAIL {name}: {reason}")

    def info(self, text):
        """Information, not a check: a line starting with `#`."""
        self.line(f"# {text}")

    def block(self, title, lines, mark, width=400):
        """Information: `--- TITLE ---`, then each line (cut at `width`) as `  MARK LINE`; nothing when there
        are no lines."""
        if lines:
            self.info(f"--- {title} ---")
            for line in lines:
                self.info(f"  {mark} {line[:width]}")

    def timed(self, label, fn, *args):
        """fn(*args), then `# LABEL took Ns`."""
        t = time.monotonic()
        fn(*args)
        self.info(f"{label} took {time.monotonic() - t:.1f}s")

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

    def stderr_tail(self, n=20):
        """The last n lines of its stderr."""
        return log_tail(self.log_path, n)

    def tail(self, n=8):
        """The last n lines of its stderr on one line."""
        return " | ".join(self.stderr_tail(n)) or "empty"

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
    """`mtcall serve --data DATA --listen HOST:PORT` with RUST_LOG=`rust_log`, stderr appended to `log`,
    stdout to `log` with the suffix .stdout. Without a `port` each start attempt takes a free one; a given
    port is kept (a restart on the same data dir and port). `extra_args` are appended to the command line;
    a subclass can wrap the command (command()), set up the child (preexec, run in it before the server) or
    log otherwise (rust_log)."""

    rust_log = "info,server=debug"
    preexec = None

    def __init__(self, binary, data, log, port=None, extra_args=(), host="127.0.0.1"):
        self.binary, self.data, self.log, self.host = binary, data, log, host
        self.extra_args = list(extra_args)
        self.port, self.fixed_port = port, port is not None
        self.proc = None
        self.banner = ""

    def command(self):
        return [self.binary, "serve", "--data", str(self.data), "--listen", f"{self.host}:{self.port}",
                *self.extra_args]

    def start(self, attempts=5, timeout=30):
        """Starts the server and waits for its `listening on` banner, which it returns (and keeps in
        .banner). A server that exits early (the port taken, or still held) is started again, up to
        `attempts` times in all."""
        env = dict(os.environ, RUST_LOG=self.rust_log)
        for attempt in range(attempts):
            if not self.fixed_port:
                self.port = free_port()
            out = self.log.with_suffix(".stdout")
            with open(self.log, "ab") as err, open(out, "wb") as stdout:
                self.proc = subprocess.Popen(self.command(), stdout=stdout, stderr=err, stdin=subprocess.DEVNULL,
                                             env=env, preexec_fn=self.preexec)
            deadline = time.monotonic() + timeout
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
                raise RuntimeError(f"server did not report 'listening on' within {timeout} s")
            if attempt + 1 < attempts:
                # exited early: a held port needs longer to come free than a new port takes to find
                time.sleep((1 if self.fixed_port else 0.5) + attempt)
        raise RuntimeError(f"server failed to start (exit {self.proc.returncode}): {' | '.join(self.tail(8))}; "
                           f"see {self.log}")

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

    def kill(self):
        """SIGKILL, not waited for (an emergency stop)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def tail(self, n=60):
        """The last n lines of the server log."""
        return log_tail(self.log, n)


def run_phase(tally, cmd, phase, args, expected, env, timeout):
    """Runs a suite's phase, `cmd + [phase] + args`, killed after `timeout` seconds, and tallies each
    `ok NAME [(DETAIL)]` / `FAIL NAME: REASON` line it prints (others are shown indented); a name in
    `expected` it did not report counts as failed, and so does a non-zero exit without a failed check.
    After a failure, the tail of its stderr. Returns whether the phase passed."""
    started = time.monotonic()
    try:
        p = subprocess.run(cmd + [phase] + args, capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=subprocess.DEVNULL)
        stdout, stderr, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        rc = f"killed after {timeout}s"
    elapsed = time.monotonic() - started
    seen, failed_before = set(), tally.failed
    for line in stdout.splitlines():
        if line.startswith("ok "):
            name, _, detail = line[3:].partition(" (")
            seen.add(name)
            tally.ok(name, detail[:-1] if detail.endswith(")") else detail)
        elif line.startswith("FAIL "):
            name, _, reason = line[5:].partition(": ")
            seen.add(name)
            tally.fail(name, reason)
        elif line.strip():
            tally.line(f"  | {line}")
    for name in expected:
        if name not in seen:
            tally.fail(name, f"not reported ({phase} phase exit status {rc})")
    if rc != 0 and tally.failed == failed_before:
        tally.fail(f"{phase} phase", f"exit status {rc} without a failed check")
    tally.line(f"{phase} phase took {elapsed:.1f}s (exit status {rc})")
    ok = tally.failed == failed_before
    if not ok and stderr.strip():
        tally.line(f"--- {phase} stderr (last 30 lines) ---")
        for line in stderr.splitlines()[-30:]:
            tally.line(f"  ! {line}")
    return ok


# ------------------------------------------------------------------------------------------ mtcall's own client
def mtcall_login(binary, port, data, phone, name, session, timeout=30.0):
    """`mtcall login` signs a test number up (or in) with its code (99966XYYYY takes XXXXX) and saves the
    session to the file `session`; returns the user id. CheckFailed unless it printed `logged in as user ID;
    session saved to SESSION` and the file is there."""
    cmd = [binary, "login", "--server", f"127.0.0.1:{port}", "--key", str(Path(data) / "server.pub"),
           "--phone", phone, "--code", phone[5] * 5, "--name", name, "--session", str(session)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace",
                           stdin=subprocess.DEVNULL, env=client_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"mtcall login {phone} did not finish within {timeout:.0f}s") from None
    out = r.stdout.strip()
    expect(r.returncode == 0, f"mtcall login {phone}: exit status {r.returncode}: {out} {r.stderr.strip()[-400:]}")
    m = re.fullmatch(r"logged in as user ([0-9]+); session saved to (.*)", out)
    expect(m and m.group(2) == str(session), f"mtcall login {phone} printed {out!r}")
    expect(Path(session).is_file(), f"mtcall login {phone}: no session file {session}")
    return m.group(1)


def bot_create(binary, data, username, timeout=30.0):
    """`mtcall bot create` on the data dir: the bot's token ID:SECRET. CheckFailed otherwise."""
    try:
        r = subprocess.run([binary, "bot", "create", "--data", str(data), "--username", username],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, env=client_env(),
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"mtcall bot create did not finish within {timeout:.0f}s") from None
    tokens = [t for t in r.stdout.split() if re.fullmatch(r"\d+:\S+", t)]
    expect(r.returncode == 0 and tokens,
           f"mtcall bot create: exit {r.returncode}: {r.stdout.strip()} {r.stderr.strip()[-300:]}")
    return tokens[-1]


# what `mtcall call` / `mtcall answer` print once the key is agreed
CONNECTED = r"connected; key fingerprint ([0-9a-f]{16}) \((-?[0-9]+)\); emoji (.*); Ctrl-C hangs up"


def expect_connected(m, fingerprint, whose):
    """m: CONNECTED matched on the mtcall client's line; fingerprint: the one `whose` (the library peer)
    computed."""
    hex_fp, dec_fp, emojis = m.group(1), int(m.group(2)), m.group(3).split(" ")
    expect(-(1 << 63) <= dec_fp < 1 << 63, f"{dec_fp} is not an int64")
    expect(int(hex_fp, 16) == dec_fp & 0xFFFFFFFFFFFFFFFF, f"hex {hex_fp} and decimal {dec_fp} differ")
    expect(dec_fp == int(fingerprint), f"mtcall's fingerprint {dec_fp}, {whose} computed {fingerprint}")
    expect(len(emojis) == 4 and all(e and not e.isascii() for e in emojis), f"want 4 emojis, got {m.group(3)!r}")


class Cli:
    """One `mtcall answer` / `mtcall call` process: stdout read line by line in a thread (every line is
    accounted for by expect_line), stderr to a log file. `timeout`: how long a line may take by default."""

    def __init__(self, binary, args, env, log_path, timeout=15.0):
        self.log_path, self.timeout = log_path, timeout
        with open(log_path, "wb") as err:
            self.proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, text=True, encoding="utf-8", errors="replace", bufsize=1)
        self.lines = queue.Queue()
        self.out = []  # every stdout line so far
        self.ended = False  # stdout reached its end
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def describe(self):
        err = [line for line in log_lines(self.log_path) if line.strip()][-4:]
        return f"stdout {self.out}; stderr {' | '.join(err) or 'empty'}"

    def _next(self, timeout):
        """The next stdout line, None at the end of stdout, or queue.Empty after `timeout` seconds."""
        if self.ended:
            return None
        line = self.lines.get(timeout=timeout)
        if line is None:
            self.ended = True
        else:
            self.out.append(line)
        return line

    def expect_line(self, pattern, timeout=None):
        """The next stdout line must match `pattern` (a regex, whole line); returns the match."""
        timeout = self.timeout if timeout is None else timeout
        try:
            line = self._next(timeout)
        except queue.Empty:
            raise CheckFailed(f"no line matching '{pattern}' within {timeout:.0f}s; {self.describe()}") from None
        if line is None:
            raise CheckFailed(f"want a line matching '{pattern}', but the output ended "
                              f"(exit status {self.status()}); {self.describe()}")
        m = re.fullmatch(pattern, line)
        expect(m, f"want a line matching '{pattern}', got {line!r}; {self.describe()}")
        return m

    def expect_quiet(self, seconds):
        """Nothing printed for `seconds`, and still running."""
        try:
            line = self._next(seconds)
        except queue.Empty:
            return
        what = f"printed {line!r}" if line is not None else f"ended its output (exit status {self.status()})"
        raise CheckFailed(f"{what} within {seconds}s; {self.describe()}")

    def expect_exit(self, timeout=None):
        """No more stdout lines, then the exit; returns the exit status."""
        timeout = self.timeout if timeout is None else timeout
        try:
            line = self._next(timeout)
        except queue.Empty:
            raise CheckFailed(f"still running {timeout:.0f}s later; {self.describe()}") from None
        expect(line is None, f"printed another line {line!r}; {self.describe()}")
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"closed stdout but did not exit within 5s; {self.describe()}") from None

    def status(self):
        try:
            return self.proc.wait(2)
        except subprocess.TimeoutExpired:
            return "still running"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------------------ scenarios
def end_calls(live, sessions):
    """After a scenario: discards (reason disconnect) the calls it left, `live` [(session, call_id)], which
    is emptied; then each of `sessions` drains its buffered updates. Failures are ignored (the call was
    already over, or the agent is gone)."""
    for s, cid in live:
        try:
            s.do("discard", call_id=cid, reason="disconnect")
        except Exception:  # noqa: BLE001
            pass
    live.clear()
    time.sleep(0.3)
    for s in sessions:
        try:
            s.drain()
        except Exception:  # noqa: BLE001
            pass


# ------------------------------------------------------------------------------------------ main
def arg_parser(doc):
    """The command line every driver takes, --mtcall BIN (default $MTCALL_BIN) and --keep; the driver adds
    its own options and reads them with parse_args."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mtcall", default=os.environ.get("MTCALL_BIN"), help="mtcall binary (default $MTCALL_BIN)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) even when all passed")
    return ap


def parse_args(ap):
    """ap's arguments, with .mtcall required and made absolute."""
    a = ap.parse_args()
    if not a.mtcall:
        ap.error("--mtcall (or $MTCALL_BIN) is required")
    a.mtcall = str(Path(a.mtcall).resolve())
    return a


def describe_binary(path):
    """`PATH (N bytes, modified TIME)`, for the first `#` line."""
    st = os.stat(path)
    return f"{path} ({st.st_size} bytes, modified {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(st.st_mtime))})"


def finish(tally, work, keep, started, server=None, agents=()):
    """main()'s end: after a failure the tails of the agents' stderr and of the server log; the time the run
    took; the temp dir `work` removed unless something failed or `keep`; exit with the tally's status."""
    if tally.failed:
        for ag in agents:
            tail = ag.stderr_tail()
            tally.block(f"{ag.lib} stderr ({ag.log_path}, last {len(tail)} lines)", tail, "!")
        if server is not None:
            tally.block(f"server log tail ({server.log})", server.tail(40), ">")
    tally.info(f"took {time.monotonic() - started:.1f}s")
    if tally.failed or keep:
        tally.info(f"files kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(tally.summary())
