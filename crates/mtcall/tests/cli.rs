//! The `mtcall` binary end to end: `serve`, two `login`s, `answer` and `call` as separate
//! processes; both sides print the same key fingerprint, and Ctrl-C (SIGINT) hangs up.

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
    let data = dir.join("data");
    let mut server = Kill(
        Command::new(BIN)
            .args(["serve", "--listen", &addr])
            .arg("--data")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&lines(&mut server.0), "listening");
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
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
