//! `mtcall backup PATH` and `mtcall restore PATH`: the embedded SQLite database copied while
//! servers run (SQLite's online backup API: the copy is the database as of one commit, so every
//! transition acknowledged before it began is in it), and a copy put back while no server runs.
//! A PostgreSQL database is backed up with PostgreSQL's own tools instead. The database holds
//! accounts, keys of clients and calls; the data directory's `server.key`, `keys/` and
//! `server.secret` are files to copy beside it.

use std::path::Path;

use server::Config;
use store::BackupSummary;

const POSTGRES_ADVICE: &str = "this server uses PostgreSQL: back it up with `pg_dump --format=custom --file=mtcall.dump URL` \
     (restore with `pg_restore --clean --dbname=URL mtcall.dump`), and copy the data directory's \
     server.key, keys/ and server.secret";

fn describe(summary: &BackupSummary) -> String {
    format!(
        "{} users, {} calls, {} bytes, schema version {}",
        summary.users, summary.calls, summary.bytes, summary.schema_version
    )
}

/// Writes a consistent copy of the data directory's database to `to`.
pub fn backup(config: &Config, to: &Path) -> Result<(), String> {
    if config.database.is_some() {
        return Err(POSTGRES_ADVICE.into());
    }
    let database = config.data_dir.join("mtcall.db");
    if !database.exists() {
        return Err(format!(
            "no database at {} (pass --data)",
            database.display()
        ));
    }
    let summary = store::backup_sqlite(&database, to).map_err(|e| e.to_string())?;
    println!(
        "backed up {} to {}: {}",
        database.display(),
        to.display(),
        describe(&summary)
    );
    eprintln!(
        "keep a copy of {}'s server.key, keys/ and server.secret with it: clients pin the keys, and access hashes derive from the secret",
        config.data_dir.display()
    );
    Ok(())
}

/// Replaces the data directory's database with the backup `from`, refusing while a server runs.
pub fn restore(config: &Config, from: &Path) -> Result<(), String> {
    if config.database.is_some() {
        return Err(POSTGRES_ADVICE.into());
    }
    let _lock = server::data_dir::DirLock::exclusive(&config.data_dir)?;
    let database = config.data_dir.join("mtcall.db");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let keep = config
        .data_dir
        .join(format!("mtcall.db.before-restore-{now}"));
    let summary = store::restore_sqlite(from, &database, &keep).map_err(|e| e.to_string())?;
    println!(
        "restored {} from {}: {}",
        database.display(),
        from.display(),
        describe(&summary)
    );
    if keep.exists() {
        println!("the database it replaced is kept as {}", keep.display());
    }
    Ok(())
}
