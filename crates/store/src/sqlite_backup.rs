//! Backups of the SQLite store: a consistent copy taken while servers write (SQLite's online
//! backup API, all pages in one step under one read transaction, so the copy is the database
//! as of one commit; in WAL mode writers go on meanwhile), a check that a file is a database
//! this version can open, and restoring one over a data directory's database (the server must
//! be stopped; the database it replaces is kept).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::sqlite::MIGRATIONS;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Its schema version.
    pub schema_version: i64,
    /// Accounts.
    pub users: i64,
    /// Calls, live and ended.
    pub calls: i64,
    /// Its size in bytes.
    pub bytes: u64,
}

fn failed(what: &str, path: &Path) -> impl Fn(rusqlite::Error) -> StoreError {
    let context = format!("{what} {}", path.display());
    move |e| StoreError::Unavailable(format!("{context}: {e}"))
}

/// Copies every page of `from` into `to` in one step (one read transaction on `from`); a
/// step that finds the database locked is tried again, for up to ten seconds.
fn copy_pages(from: &Connection, to: &mut Connection, target: &Path) -> Result<(), StoreError> {
    let error = failed("copying the database to", target);
    let backup = Backup::new(from, to).map_err(&error)?;
    for _ in 0..200 {
        match backup.step(-1).map_err(&error)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Err(StoreError::Unavailable(format!(
        "copying the database to {}: it stayed locked",
        target.display()
    )))
}

/// Writes a consistent copy of the database `database` to `to` (which must not exist): the
/// copy goes to `to` with a `.partial` suffix, is checked, synced and then renamed, so `to`
/// is either absent or whole.
pub fn backup_sqlite(database: &Path, to: &Path) -> Result<BackupSummary, StoreError> {
    if to.exists() {
        return Err(StoreError::Unavailable(format!(
            "{} exists already: give a new file",
            to.display()
        )));
    }
    let source = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed("opening", database))?;
    source
        .busy_timeout(Duration::from_secs(5))
        .map_err(failed("opening", database))?;
    let partial = with_suffix(to, "partial");
    let _ = fs::remove_file(&partial);
    let result = (|| {
        let mut target = Connection::open(&partial).map_err(failed("creating", &partial))?;
        copy_pages(&source, &mut target, &partial)?;
        // A backup is one file: no WAL beside it.
        target
            .execute_batch("PRAGMA journal_mode=DELETE;")
            .map_err(failed("finishing", &partial))?;
        drop(target);
        let summary = check_sqlite_backup(&partial)?;
        fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::Unavailable(format!("syncing {}: {e}", partial.display())))?;
        fs::rename(&partial, to)
            .map_err(|e| StoreError::Unavailable(format!("renaming to {}: {e}", to.display())))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// Checks that `path` is an intact mtcall database this version can open (SQLite's
/// `quick_check`, a schema version it knows, its tables present) and says what it holds.
pub fn check_sqlite_backup(path: &Path) -> Result<BackupSummary, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Unavailable(format!(
            "{} is not a file",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(failed("opening", path))?;
    let corrupt = |e: rusqlite::Error| {
        StoreError::Corrupt(format!("{} is not an mtcall database: {e}", path.display()))
    };
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(corrupt)?;
    if check != "ok" {
        return Err(StoreError::Corrupt(format!(
            "{} fails SQLite's integrity check: {check}",
            path.display()
        )));
    }
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(corrupt)?;
    if schema_version < 1 || schema_version > MIGRATIONS.len() as i64 {
        return Err(StoreError::Corrupt(format!(
            "{} has schema version {schema_version}; this mtcall knows 1 to {}",
            path.display(),
            MIGRATIONS.len()
        )));
    }
    let count = |table: &str| -> Result<i64, StoreError> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(corrupt)
    };
    let bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary {
        schema_version,
        users: count("users")?,
        calls: count("calls")?,
        bytes,
    })
}

/// Replaces the database `database` with the backup `from` (checked first). The database it
/// replaces, if any, is first copied to `keep` (which must not exist). No server may have
/// `database` open: the caller makes sure of that.
pub fn restore_sqlite(
    from: &Path,
    database: &Path,
    keep: &Path,
) -> Result<BackupSummary, StoreError> {
    let summary = check_sqlite_backup(from)?;
    if database.exists() {
        backup_sqlite(database, keep)?;
    }
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(failed("opening", from))?;
    let mut target = Connection::open(database).map_err(failed("opening", database))?;
    copy_pages(&source, &mut target, database)?;
    target
        .execute_batch("PRAGMA journal_mode=WAL;")
        .map_err(failed("finishing", database))?;
    Ok(summary)
}

/// `path` with `.suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, NewUser, SqliteStore, Store};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mtcall-backup-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn user(phone: &str) -> NewUser {
        NewUser {
            phone: Some(phone.into()),
            first_name: "A".into(),
            last_name: String::new(),
            username: None,
            bot_secret: None,
        }
    }

    #[tokio::test]
    async fn a_backup_restores_what_was_written_before_it_and_refuses_bad_files() {
        let dir = scratch("restore");
        let db = dir.join("mtcall.db");
        let store = SqliteStore::open(&db, Durability::Normal).unwrap();
        store.create_user(user("15550000001"), 1).await.unwrap();
        let copy = dir.join("copy.db");
        let taken = backup_sqlite(&db, &copy).unwrap();
        assert_eq!(taken.users, 1);
        assert!(
            backup_sqlite(&db, &copy).is_err(),
            "an existing file is kept"
        );
        store.create_user(user("15550000002"), 2).await.unwrap();
        drop(store);

        let kept = dir.join("mtcall.db.before-restore");
        let restored = restore_sqlite(&copy, &db, &kept).unwrap();
        assert_eq!(restored.users, 1);
        let store = SqliteStore::open(&db, Durability::Normal).unwrap();
        assert!(store.user_by_phone("15550000001").await.unwrap().is_some());
        assert!(store.user_by_phone("15550000002").await.unwrap().is_none());
        assert_eq!(
            check_sqlite_backup(&kept).unwrap().users,
            2,
            "the replaced database is kept"
        );
        assert!(
            restore_sqlite(&copy, &db, &kept).is_err(),
            "a kept copy is never overwritten"
        );

        let junk = dir.join("junk.db");
        fs::write(&junk, b"not a database at all, not even close to one").unwrap();
        assert!(matches!(
            check_sqlite_backup(&junk),
            Err(StoreError::Corrupt(_))
        ));
        assert!(restore_sqlite(&junk, &db, &dir.join("other")).is_err());
        assert!(check_sqlite_backup(&dir.join("absent.db")).is_err());
        let _ = fs::remove_dir_all(dir);
    }
}
