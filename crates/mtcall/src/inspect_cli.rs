//! `mtcall users`, `mtcall calls` and `mtcall call show ID`: what the call inspector
//! shows, as text. They ask a running server's admin address; when nothing answers there they
//! read the data directory (or database) instead, which knows users and stored calls but not
//! the messages of a call (those live in the running server's memory).

use std::time::Duration;

use serde_json::{Value, json};
use server::Config;
use server::observe::{inspector::CallRecord, timeline, views};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where to ask.
pub struct Source {
    /// The admin address, `http://host:port`.
    pub admin: String,
    /// Its token, if it has one.
    pub token: Option<String>,
    /// The configuration, for the data-directory fallback.
    pub config: Config,
}

/// What a GET returned.
enum Fetched {
    /// 200 and the body.
    Ok(String),
    /// Nothing listens there.
    NoServer(String),
}

/// One GET to the admin address.
async fn get(source: &Source, path: &str) -> Result<Fetched, String> {
    let authority = source
        .admin
        .strip_prefix("http://")
        .ok_or("the admin address must start with http://")?
        .trim_end_matches('/');
    let connect = tokio::net::TcpStream::connect(authority);
    let mut stream = match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Ok(Fetched::NoServer(e.to_string())),
        Err(_) => return Ok(Fetched::NoServer("timed out".into())),
    };
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(t) = &source.token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("{} did not answer in time", source.admin))?
        .map_err(|e| format!("{}: {e}", source.admin))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{} did not answer HTTP", source.admin))?;
    let status = head.split(' ').nth(1).unwrap_or("");
    match status {
        "200" => Ok(Fetched::Ok(body.to_owned())),
        "401" => Err(format!(
            "{} wants a token: --admin-token or MTCALL_ADMIN_TOKEN",
            source.admin
        )),
        _ => Err(format!(
            "{} answered {status}: {}",
            source.admin,
            body.trim()
        )),
    }
}

async fn get_json(source: &Source, path: &str) -> Result<Option<Value>, String> {
    match get(source, path).await? {
        Fetched::Ok(body) => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| format!("the admin address sent bad JSON: {e}")),
        Fetched::NoServer(why) => {
            eprintln!(
                "(no server at {} ({why}); reading {} instead)",
                source.admin,
                where_data(&source.config)
            );
            Ok(None)
        }
    }
}

fn where_data(config: &Config) -> String {
    match &config.database {
        Some(_) => "the database".into(),
        None => config.data_dir.display().to_string(),
    }
}

async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn store::Store>, String> {
    crate::admin::open(config)
        .await
        .map_err(|e| format!("no running server answered, and {e}"))
}

/// Every user's name, from the store.
async fn names(store: &dyn store::Store) -> Result<(Vec<store::User>, views::Names), String> {
    let users = store.users().await.map_err(|e| e.to_string())?;
    let mut names = views::Names::default();
    for u in &users {
        names.insert(u.id, views::display_name(u));
    }
    Ok((users, names))
}

/// Stored calls as inspector records (no messages), live first then ended newest first: as
/// many ended ones as the inspector keeps.
async fn stored_calls(config: &Config) -> Result<(Vec<CallRecord>, views::Names), String> {
    let store = open_store(config).await?;
    let (_, names) = names(store.as_ref()).await?;
    let kept = u32::try_from(config.admin.inspector().recent_calls).unwrap_or(u32::MAX);
    let rows = store.load_calls(kept).await.map_err(|e| e.to_string())?;
    let mut records: Vec<CallRecord> = server::topology::decode(&rows)
        .into_iter()
        .map(CallRecord::stored)
        .collect();
    records.sort_by_key(|r| {
        (
            !r.call.state().is_live(),
            std::cmp::Reverse(r.ended_at_ms.unwrap_or(r.seen_at_ms)),
        )
    });
    Ok((records, names))
}

/// `mtcall users`.
pub async fn users(source: &Source, as_json: bool) -> Result<(), String> {
    let value = match get_json(source, "/api/users").await? {
        Some(v) => v,
        None => {
            let store = open_store(&source.config).await?;
            let (users, _) = names(store.as_ref()).await?;
            let list: Vec<Value> = users
                .iter()
                .map(|u| {
                    json!({"id": u.id, "name": views::display_name(u), "phone": u.phone,
                           "username": u.username, "bot": u.bot, "sessions": null, "busy": null})
                })
                .collect();
            json!({ "users": list })
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = value["users"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|u| {
            let handle = match (u["phone"].as_str(), u["username"].as_str()) {
                (_, Some(name)) => format!("@{name}"),
                (Some(phone), None) => format!("+{phone}"),
                (None, None) => String::new(),
            };
            vec![
                u["id"].to_string(),
                u["name"].as_str().unwrap_or("").to_owned(),
                handle,
                if u["bot"].as_bool() == Some(true) {
                    "bot"
                } else {
                    ""
                }
                .to_owned(),
                u["sessions"]
                    .as_u64()
                    .map_or("-".to_owned(), |n| n.to_string()),
                match u["busy"].as_bool() {
                    Some(true) => "busy",
                    Some(false) => "",
                    None => "-",
                }
                .to_owned(),
            ]
        })
        .collect();
    print_table(
        &["ID", "NAME", "PHONE/USERNAME", "BOT", "SESSIONS", "BUSY"],
        &rows,
    );
    Ok(())
}

/// `mtcall calls`.
pub async fn calls(source: &Source, as_json: bool) -> Result<(), String> {
    let value = match get_json(source, "/api/calls").await? {
        Some(v) => v,
        None => {
            let (records, names) = stored_calls(&source.config).await?;
            let (live, recent): (Vec<_>, Vec<_>) =
                records.iter().partition(|r| r.call.state().is_live());
            json!({
                "live": live.iter().map(|r| views::call_summary(r, &names)).collect::<Vec<_>>(),
                "recent": recent.iter().map(|r| views::call_summary(r, &names)).collect::<Vec<_>>(),
            })
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    for (title, key) in [("live calls", "live"), ("recent calls", "recent")] {
        let list = value[key].as_array().map(Vec::as_slice).unwrap_or(&[]);
        println!("{title}: {}", list.len());
        if list.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                let mut state = c["state"].as_str().unwrap_or("").to_owned();
                if let Some(r) = c["reason"].as_str() {
                    state.push_str(&format!(" ({r})"));
                }
                vec![
                    c["id"].as_str().unwrap_or("").to_owned(),
                    format!(
                        "{} → {}",
                        c["admin"]["name"].as_str().unwrap_or("?"),
                        c["participant"]["name"].as_str().unwrap_or("?")
                    ),
                    state,
                    c["outcome"].as_str().unwrap_or("").to_owned(),
                    c["created_at_ms"]
                        .as_i64()
                        .map(|ms| format!("{} UTC", timeline::time_of_day(ms)))
                        .unwrap_or_default(),
                    c["duration"]
                        .as_i64()
                        .map(|d| format!("{d} s"))
                        .unwrap_or_default(),
                    c["events"].to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "CALLER → CALLEE",
                "STATE",
                "OUTCOME",
                "CREATED",
                "DURATION",
                "MESSAGES",
            ],
            &rows,
        );
        println!();
    }
    Ok(())
}

/// `mtcall call show ID`.
pub async fn show_call(source: &Source, id: i64, as_json: bool) -> Result<(), String> {
    let path = format!("/api/calls/{id}");
    let value = match get(source, &path).await {
        Ok(Fetched::Ok(body)) => {
            serde_json::from_str(&body).map_err(|e| format!("bad JSON: {e}"))?
        }
        Ok(Fetched::NoServer(why)) => {
            eprintln!(
                "(no server at {} ({why}); reading {} instead: the call's messages are only \
                 kept by the running server)",
                source.admin,
                where_data(&source.config)
            );
            let (records, names) = stored_calls(&source.config).await?;
            let record = records.iter().find(|r| r.call.id == id).ok_or(format!(
                "no call {id} is stored (ended calls are kept for an hour)"
            ))?;
            views::call_full(record, &names)
        }
        Err(e) if e.contains("answered 404") => {
            return Err(format!("the server keeps no call {id}"));
        }
        Err(e) => return Err(e),
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print!("{}", timeline::text(&value));
    }
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
