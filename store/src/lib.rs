//! Durable storage behind one small trait.
//!
//! The hub's whole state (assets, gateways, events, work orders) and the
//! agent's (what each asset's commissioning learned) are sets of JSON
//! records under string keys. The trait asks for exactly what they need:
//! read a key, read a key range, and commit a group of writes atomically
//! **and durably** (on disk when `commit` returns), which is what lets the
//! hub's ingest acknowledge a message only after its effects are stored.
//!
//! [`SledStore`] implements it with sled. sled 0.34 is beta software, so it
//! stays behind this trait and every commit is flushed before returning.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Backend(String),
    #[error("stored record `{key}` is not readable: {reason}")]
    Corrupt { key: String, reason: String },
}

/// One write of a commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

/// Key-value storage with atomic, durable commits.
pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Applies all writes or none, and returns only once they are durable.
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
}

/// Reads a JSON record.
pub fn get_json<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match store.get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: key.to_owned(),
                reason: e.to_string(),
            }),
    }
}

/// Reads every JSON record under a prefix. An unreadable record is logged
/// and skipped: one bad record must not hide all the others.
pub fn scan_json<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<T>, StoreError> {
    Ok(store
        .scan_prefix(prefix)?
        .into_iter()
        .filter_map(|(key, bytes)| match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(%key, "skipping unreadable record: {e}");
                None
            }
        })
        .collect())
}

/// A `Put` of a JSON record.
pub fn put_json<T: Serialize>(key: impl Into<String>, value: &T) -> Write {
    Write::Put(
        key.into(),
        serde_json::to_vec(value).expect("stored records always serialise"),
    )
}

/// How long [`SledStore::open`] waits for a database another store of this
/// process is still closing. A database locked for longer is in use by
/// another process (a second agent on the same data folder): an error.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The sled implementation: one tree, keys as UTF-8 bytes.
pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    /// Opens (or creates) the database in `dir`. If the database is locked
    /// (by a store of this process that is still closing: sled's background
    /// threads release the lock shortly after the last handle is dropped),
    /// it waits up to [`LOCK_WAIT`] for the lock.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        loop {
            let opened = sled::Config::new()
                .path(dir)
                // Every commit flushes itself; no periodic flusher thread.
                .flush_every_ms(None)
                .open();
            match opened {
                Ok(db) => return Ok(SledStore { db }),
                // sled says so only in words (kind `Other`).
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "cannot open {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl Store for SledStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item.map_err(backend)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for w in writes {
            match w {
                Write::Put(k, v) => batch.insert(k.as_bytes(), v),
                Write::Delete(k) => batch.remove(k.as_bytes()),
            }
        }
        self.db.apply_batch(batch).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(())
    }
}

/// A store that refuses every commit while it is set full, as on a full
/// disk ("No space left on device"); reads go through. For testing what
/// its users do when writes fail.
pub struct FillableStore<S> {
    inner: S,
    full: std::sync::atomic::AtomicBool,
}

impl<S: Store> FillableStore<S> {
    pub fn new(inner: S) -> Self {
        FillableStore {
            inner,
            full: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Makes commits fail (`true`) or work again (`false`).
    pub fn set_full(&self, full: bool) {
        self.full.store(full, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<S: Store> Store for FillableStore<S> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan_prefix(prefix)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if self.full.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Backend("No space left on device".into()));
        }
        self.inner.commit(writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_visible_ordered_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .commit(vec![
                    put_json("asset/B", &2),
                    put_json("asset/A", &1),
                    put_json("event/x", &"e"),
                ])
                .unwrap();
            store.commit(vec![Write::Delete("event/x".into())]).unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let assets: Vec<i32> = scan_json(&store, "asset/").unwrap();
        assert_eq!(assets, vec![1, 2]);
        assert_eq!(store.get("event/x").unwrap(), None);
        assert_eq!(get_json::<i32>(&store, "asset/B").unwrap(), Some(2));
    }

    #[test]
    fn a_database_in_use_is_refused_after_the_wait_and_free_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = SledStore::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let err = SledStore::open(dir.path())
            .err()
            .expect("locked")
            .to_string();
        assert!(err.contains("could not acquire lock"), "{err}");
        assert!(started.elapsed() >= LOCK_WAIT);
        drop(held);
        for _ in 0..20 {
            // Dropped and reopened at once, again and again.
            drop(SledStore::open(dir.path()).unwrap());
        }
    }

    #[test]
    fn an_unreadable_record_is_skipped_in_scans_and_an_error_on_get() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        store
            .commit(vec![
                put_json("asset/A", &1),
                Write::Put("asset/B".into(), b"\xff torn".to_vec()),
                put_json("asset/C", &3),
            ])
            .unwrap();
        let assets: Vec<i32> = scan_json(&store, "asset/").unwrap();
        assert_eq!(assets, vec![1, 3]);
        let err = get_json::<i32>(&store, "asset/B").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}
