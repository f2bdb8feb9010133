//! The `mtcall` binary end to end: `serve`, two `login`s, `answer` and `call` as separate
//! processes; both sides print the same key fingerprint, and Ctrl-C (SIGINT) hangs up. Then
//! `users`, `calls` and `call show` against the running server's admin address and, once it
//! has stopped, against its data directory; and the server's per-RPC log lines as JSON.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mtcall");

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Lines a child prints on stdout, collected by a thread.
fn lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn wait_for(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains(what) {
            return line;
        }
    }
    panic!("no line containing {what:?}");
}

fn interrupt(child: &Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
}

#[test]
fn login_call_answer_and_hang_up() {
    let dir = std::env::temp_dir().join(format!("mtcall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let data = dir.join("data");
    let log = dir.join("server.log");
    let mut server = Kill(
        Command::new(BIN)
            .args(["serve", "--listen", &addr, "--admin-listen", &admin])
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info,mtcall::rpc=debug")
            .arg("--data")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let server_out = lines(&mut server.0);
    wait_for(&server_out, "listening");
    wait_for(&server_out, &format!("inspector on http://{admin}/"));
    for (phone, name) in [("9996680001", "a"), ("9996680002", "b")] {
        let status = Command::new(BIN)
            .args([
                "login", "--server", &addr, "--phone", phone, "--code", "88888", "--name", name,
            ])
            .arg("--key")
            .arg(data.join("server.pub"))
            .arg("--session")
            .arg(dir.join(format!("{name}.session")))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "login {phone}");
    }
    let mut answer = Kill(
        Command::new(BIN)
            .arg("answer")
            .arg("--session")
            .arg(dir.join("b.session"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let answer_out = lines(&mut answer.0);
    wait_for(&answer_out, "waiting for a call");
    let mut call = Kill(
        Command::new(BIN)
            .args(["call", "9996680002"])
            .arg("--session")
            .arg(dir.join("a.session"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let call_out = lines(&mut call.0);
    let calling = wait_for(&call_out, "(call ");
    let call_id = calling
        .split("(call ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    wait_for(&call_out, "ringing");
    let caller_side = wait_for(&call_out, "key fingerprint");
    let callee_side = wait_for(&answer_out, "key fingerprint");
    let fp = |l: &str| {
        l.split("fingerprint ")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(fp(&caller_side), fp(&callee_side));
    let emoji = |l: &str| {
        l.split("emoji ")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(emoji(&caller_side), emoji(&callee_side));
    assert_eq!(emoji(&caller_side).split(' ').count(), 4, "{caller_side}");
    interrupt(&call.0);
    wait_for(&call_out, "hung up after");
    wait_for(&answer_out, "the other side ended the call (hung up)");
    assert!(call.0.wait().unwrap().success());
    assert!(answer.0.wait().unwrap().success());

    // `mtcall invoke`: a request as JSON, the result as JSON; errors by name.
    let out = Command::new(BIN)
        .args([
            "invoke",
            r#"{"_": "contacts.resolvePhone", "phone": "9996680002"}"#,
        ])
        .arg("--session")
        .arg(dir.join("a.session"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains("\"_\": \"contacts.resolvedPeer\"")
            && text.contains("\"first_name\": \"b\""),
        "{text}"
    );
    let out = Command::new(BIN)
        .args(["invoke", r#"{"_": "phone.receivedCall", "peer": {"_": "inputPhoneCall", "id": 1, "access_hash": 2}}"#])
        .arg("--session")
        .arg(dir.join("a.session"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CALL_PEER_INVALID"));

    // A bot made with `mtcall bot create` logs in with its token.
    let out = Command::new(BIN)
        .args(["bot", "create", "--username", "cli_bot"])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let bot_id = token.split(':').next().unwrap().to_owned();
    let out = Command::new(BIN)
        .args(["login", "--server", &addr, "--bot-token", &token])
        .arg("--key")
        .arg(data.join("server.pub"))
        .arg("--session")
        .arg(dir.join("bot.session"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!("logged in as user {bot_id}")),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What the server saw: users, calls and the call's timeline, from the admin address.
    let inspect = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (users, _) = inspect(&["users", "--admin", &admin]);
    assert!(users.starts_with("ID "), "{users}");
    assert!(
        users.contains("+9996680001") && users.contains("@cli_bot"),
        "{users}"
    );
    let (calls, _) = inspect(&["calls", "--admin", &admin]);
    assert!(
        calls.contains("live calls: 0") && calls.contains("recent calls: 1"),
        "{calls}"
    );
    assert!(
        calls.contains(&call_id) && calls.contains("a → b"),
        "{calls}"
    );
    assert!(
        calls.contains("discarded (hangup)") && calls.contains("answered"),
        "{calls}"
    );
    let (timeline, _) = inspect(&["call", "show", &call_id, "--admin", &admin]);
    // Only what causes what is ordered: each step below waits for the one before it. The
    // caller's `receive_date` push is queued before `boolTrue` goes out, but the timeline
    // records it when the caller's connection takes it, which may come after the callee's
    // next request on a loaded machine.
    let order = [
        "→ server: phone.requestCall ⇒ phone.phoneCall phoneCallWaiting",
        "server → b [",
        "→ server: phone.receivedCall ⇒ boolTrue",
        "→ server: phone.acceptCall",
        "→ server: phone.confirmCall",
        "→ server: phone.discardCall",
    ];
    let position = |o: &str| {
        timeline
            .find(o)
            .unwrap_or_else(|| panic!("{o:?} in {timeline}"))
    };
    let positions: Vec<usize> = order.iter().map(|o| position(o)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{timeline}");
    let ringing = timeline
        .lines()
        .position(|l| l.contains("server → a [") && l.contains("phoneCallWaiting receive_date="))
        .unwrap_or_else(|| panic!("the caller's ringing push in {timeline}"));
    let received = timeline
        .lines()
        .position(|l| l.contains("→ server: phone.receivedCall ⇒ boolTrue"))
        .unwrap();
    assert!(received < ringing, "{timeline}");

    // One JSON log line per RPC.
    let logged = std::fs::read_to_string(&log).unwrap();
    let rpc_line = logged
        .lines()
        .find(|l| l.contains("\"method\":\"phone.receivedCall\""))
        .unwrap_or_else(|| panic!("no receivedCall line in {logged}"));
    for field in [
        "\"target\":\"mtcall::rpc\"",
        "\"level\":\"DEBUG\"",
        "\"result\":\"ok\"",
        "\"user\":",
        "\"key\":",
    ] {
        assert!(rpc_line.contains(field), "{field} in {rpc_line}");
    }
    drop(server);

    // With the server stopped, the same commands read the data directory.
    let nobody = format!("127.0.0.1:{}", free_port());
    let data_arg = data.to_str().unwrap();
    let (calls, note) = inspect(&["calls", "--admin", &nobody, "--data", data_arg]);
    assert!(note.contains("no server at"), "{note}");
    assert!(
        calls.contains("recent calls: 1") && calls.contains(&call_id),
        "{calls}"
    );
    let (shown, _) = inspect(&[
        "call", "show", &call_id, "--admin", &nobody, "--data", data_arg,
    ]);
    assert!(
        shown.starts_with(&format!("call {call_id} · a ("))
            && shown.contains("discarded (hangup), answered"),
        "{shown}"
    );
    let (users, _) = inspect(&["users", "--admin", &nobody, "--data", data_arg]);
    assert!(users.contains("+9996680002"), "{users}");
    let _ = std::fs::remove_dir_all(&dir);
}
