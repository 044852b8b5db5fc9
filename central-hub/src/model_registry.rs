//! The hub's model registry: the signed packages engineers have uploaded.
//!
//! The hub checks a package exactly as a gateway will (format, signature by
//! a key in the hub config's `[models] trusted_keys`, every file's hash)
//! before it keeps it, so a rollout can never offer gateways a package they
//! are bound to refuse for its signature. A name and version, once
//! uploaded, always mean the same bytes: uploading them again is a no-op,
//! uploading other bytes under them is refused. This is part of the ledger
//! (a child module) so that it shares the store and the writer lock.

use protocol::package::{self, PackageError, PackageManifest, VerifyingKey, Version};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Ledger;
use crate::audit::Actor;
use store::{StoreError, Write, get_json, put_json, scan_json};

/// A package kept by the hub (key `model/{name}/{version}`; its bytes under
/// `model-package/{sha256}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub version: Version,
    /// SHA-256 of the whole package.
    pub sha256: String,
    pub size: u64,
    /// The key that signed it.
    pub key_id: String,
    pub manifest: PackageManifest,
    pub uploaded_by: String,
    pub uploaded_at_ms: u64,
}

impl ModelRecord {
    pub fn key(name: &str, version: Version) -> String {
        format!("model/{name}/{version}")
    }
}

fn package_key(sha256: &str) -> String {
    format!("model-package/{sha256}")
}

#[derive(Debug, Error)]
pub enum ModelUploadError {
    /// The package itself is refused (HTTP 422).
    #[error(transparent)]
    Package(#[from] PackageError),
    /// Another package has that name and version (HTTP 409).
    #[error(
        "{name} {version} is already in the registry with other contents (sha256 {existing}); publish a new version"
    )]
    VersionTaken {
        name: String,
        version: Version,
        existing: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Ledger {
    /// Verifies and keeps a package; returns its record (the existing one
    /// if these exact bytes were uploaded before).
    pub fn add_model(
        &self,
        bytes: &[u8],
        trusted: &[VerifyingKey],
        who: &Actor,
        now_ms: u64,
    ) -> Result<ModelRecord, ModelUploadError> {
        let verified = package::open(bytes, trusted)?;
        let m = verified.manifest;
        let _writer = self.write_lock();
        let key = ModelRecord::key(&m.name, m.version);
        if let Some(existing) = get_json::<ModelRecord>(&*self.store, &key)? {
            if existing.sha256 == verified.sha256 {
                return Ok(existing);
            }
            return Err(ModelUploadError::VersionTaken {
                name: m.name,
                version: m.version,
                existing: existing.sha256,
            });
        }
        let record = ModelRecord {
            name: m.name.clone(),
            version: m.version,
            sha256: verified.sha256.clone(),
            size: bytes.len() as u64,
            key_id: verified.key_id,
            manifest: m,
            uploaded_by: who.name.clone(),
            uploaded_at_ms: now_ms,
        };
        self.store.commit(vec![
            Write::Put(package_key(&record.sha256), bytes.to_vec()),
            put_json(key, &record),
        ])?;
        tracing::info!(model = %record.name, version = %record.version, sha256 = %record.sha256, who = %who.name, "model package added to the registry");
        Ok(record)
    }

    /// Every package in the registry, by name, newest version first.
    pub fn models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let mut all: Vec<ModelRecord> = scan_json(&*self.store, "model/")?;
        all.sort_by(|a, b| a.name.cmp(&b.name).then(b.version.cmp(&a.version)));
        Ok(all)
    }

    pub fn model(&self, name: &str, version: Version) -> Result<Option<ModelRecord>, StoreError> {
        get_json(&*self.store, &ModelRecord::key(name, version))
    }

    /// The bytes of a package, by its SHA-256.
    pub fn model_package(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(&package_key(sha256))
    }
}
