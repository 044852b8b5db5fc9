//! Model packages: the signed, self-describing unit a model travels in.
//!
//! A gateway must never run a model that an engineer of the utility did not
//! sign, or one that was damaged on its way over a cellular link. So a model
//! travels as one file: a manifest that says what the model is (name,
//! semantic version, asset kinds, feature pipeline, input and output spec,
//! default thresholds, self-test vectors, how commissioning data is
//! treated, and the size and SHA-256 of every file), an ed25519 signature of
//! the manifest's exact bytes by an engineer's key, and the files. Opening a
//! package checks everything before anything is believed: length limits,
//! the format version, the signature against the keys the caller trusts,
//! then every file's size and hash. A damaged, tampered, oversize or
//! truncated package is a typed [`PackageError`] saying what is wrong.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "PDMPKG01"            8 bytes, the format's magic
//! manifest length       u32, at most MAX_MANIFEST_BYTES
//! manifest              JSON (PackageManifest), the signed bytes
//! signature length      u32, at most MAX_SIGNATURE_BYTES
//! signature             JSON {"key_id": "...", "ed25519": "<128 hex digits>"}
//! files                 the bytes of each file the manifest lists, in its order
//! ```
//!
//! Nothing may follow the last file. The manifest's `format` is read first
//! so that a package of a newer format is refused as such, not as a
//! manifest with unknown fields. This module does no I/O.

use std::fmt;

use ed25519_dalek::{Signature, Signer};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::AssetKind;

/// The first bytes of every package.
pub const PACKAGE_MAGIC: &[u8; 8] = b"PDMPKG01";
/// The manifest format this code reads and writes.
pub const PACKAGE_FORMAT: u32 = 1;
/// Largest package accepted (a model here is tens of kilobytes).
pub const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;
/// Largest manifest accepted.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Largest signature block accepted.
pub const MAX_SIGNATURE_BYTES: usize = 1024;
/// The outputs every model graph has, in order.
pub const MODEL_OUTPUTS: [&str; 3] = ["score", "contributions", "expected"];

/// A package that cannot be used, and why.
#[derive(Debug, Error, PartialEq)]
pub enum PackageError {
    #[error("package is {size} bytes, more than the {max} accepted")]
    TooLarge { size: usize, max: usize },
    #[error("not a model package (it does not start with PDMPKG01)")]
    NotAPackage,
    #[error("package is truncated: {what} needs {needed} more bytes")]
    Truncated { what: String, needed: usize },
    #[error("package has {0} bytes after its last file")]
    TrailingBytes(usize),
    #[error("package {what} of {size} bytes is over the {max} accepted")]
    PartTooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("package format {0} is not known to this agent (it reads format {PACKAGE_FORMAT})")]
    UnknownFormat(u32),
    #[error("package manifest: {0}")]
    Manifest(String),
    #[error("package signature block: {0}")]
    SignatureBlock(String),
    #[error("package is signed by key {0}, which is not trusted here")]
    UnknownKey(String),
    #[error("package signature does not match its manifest (signed by {0}): tampered or damaged")]
    BadSignature(String),
    #[error("package file {name}: SHA-256 {got}, but the manifest says {expected}")]
    FileHash {
        name: String,
        expected: String,
        got: String,
    },
    #[error("key: {0}")]
    Key(String),
}

/// A semantic version `MAJOR.MINOR.PATCH` (no pre-release tags: a model is
/// released or it is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let number = |p: &str| -> Result<u32, String> {
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
                return Err(format!("`{s}` is not a version MAJOR.MINOR.PATCH"));
            }
            p.parse()
                .map_err(|_| format!("`{s}` is not a version MAJOR.MINOR.PATCH"))
        };
        match parts[..] {
            [a, b, c] => Ok(Version {
                major: number(a)?,
                minor: number(b)?,
                patch: number(c)?,
            }),
            _ => Err(format!("`{s}` is not a version MAJOR.MINOR.PATCH")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What happens to what a gateway learned when commissioning an asset
/// (thresholds, feature scaling) when this model replaces another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissioningPolicy {
    /// Keep it: the new model reads the same features on the same scale.
    Keep,
    /// Learn each asset's baseline again with the new model.
    Rerun,
}

/// An input with the score the model must give for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTestVector {
    pub input: Vec<f64>,
    pub score: f64,
    /// Largest accepted relative difference.
    pub tolerance: f64,
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFile {
    pub name: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// What a package says about its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageManifest {
    pub format: u32,
    /// The model's id (`pump-anomaly`).
    pub name: String,
    pub version: Version,
    pub asset_kinds: Vec<AssetKind>,
    /// The feature pipeline (profile) the model reads, e.g. `pump-v2`.
    pub feature_profile: String,
    /// Input spec: the features, in order (one `[1, N]` float32 input).
    pub inputs: Vec<String>,
    /// Output spec: [`MODEL_OUTPUTS`].
    pub outputs: Vec<String>,
    /// Default thresholds (commissioning may replace them per asset).
    pub threshold: f64,
    pub alarm_threshold: f64,
    pub self_test: Vec<SelfTestVector>,
    pub commissioning: CommissioningPolicy,
    pub created_at_ms: u64,
    /// Filled in by [`seal`].
    #[serde(default)]
    pub files: Vec<PackageFile>,
}

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureBlock {
    key_id: String,
    ed25519: String,
}

/// A package whose signature and hashes have been checked.
#[derive(Debug, Clone)]
pub struct VerifiedPackage {
    pub manifest: PackageManifest,
    /// Who signed it ([`key_id`]).
    pub key_id: String,
    /// SHA-256 of the whole package, lower-case hex.
    pub sha256: String,
    /// The files, in the manifest's order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl VerifiedPackage {
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A short name of a public key: `pdm-` and the first 8 bytes of its
/// SHA-256, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    format!("pdm-{}", &sha256_hex(key.as_bytes())[..16])
}

/// A public key as written in configs: `ed25519:<64 hex digits>`.
pub fn format_public_key(key: &VerifyingKey) -> String {
    format!("ed25519:{}", hex(key.as_bytes()))
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, PackageError> {
    let bytes = text
        .trim()
        .strip_prefix("ed25519:")
        .and_then(unhex::<32>)
        .ok_or_else(|| {
            PackageError::Key(format!(
                "`{}` is not a public key `ed25519:<64 hex digits>`",
                text.trim()
            ))
        })?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| PackageError::Key(e.to_string()))
}

/// A config's list of trusted keys (`[models] trusted_keys`); the error
/// names the setting.
pub fn parse_public_keys(keys: &[String]) -> Result<Vec<VerifyingKey>, String> {
    keys.iter()
        .map(|k| parse_public_key(k).map_err(|e| format!("[models] trusted_keys: {e}")))
        .collect()
}

/// A secret key as kept in an engineer's key file:
/// `ed25519-secret:<64 hex digits>`.
pub fn format_secret_key(key: &SigningKey) -> String {
    format!("ed25519-secret:{}", hex(&key.to_bytes()))
}

pub fn parse_secret_key(text: &str) -> Result<SigningKey, PackageError> {
    text.trim()
        .strip_prefix("ed25519-secret:")
        .and_then(unhex::<32>)
        .map(|b| SigningKey::from_bytes(&b))
        .ok_or_else(|| {
            PackageError::Key("not a secret key `ed25519-secret:<64 hex digits>`".into())
        })
}

/// A secret key from 32 random bytes (the caller reads them from the OS).
pub fn secret_key_from_seed(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

/// Builds a package: fills the manifest's file list from `files`, signs the
/// manifest with `key` and lays everything out.
pub fn seal(
    mut manifest: PackageManifest,
    files: &[(String, Vec<u8>)],
    key: &SigningKey,
) -> Result<Vec<u8>, PackageError> {
    manifest.format = PACKAGE_FORMAT;
    manifest.files = files
        .iter()
        .map(|(name, bytes)| PackageFile {
            name: name.clone(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        })
        .collect();
    check_manifest(&manifest)?;
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| PackageError::Manifest(e.to_string()))?;
    let signature = key.sign(&manifest_bytes);
    let block = serde_json::to_vec(&SignatureBlock {
        key_id: key_id(&key.verifying_key()),
        ed25519: hex(&signature.to_bytes()),
    })
    .map_err(|e| PackageError::SignatureBlock(e.to_string()))?;
    let mut out = Vec::new();
    out.extend_from_slice(PACKAGE_MAGIC);
    for part in [&manifest_bytes, &block] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    for (_, bytes) in files {
        out.extend_from_slice(bytes);
    }
    if out.len() > MAX_PACKAGE_BYTES {
        return Err(PackageError::TooLarge {
            size: out.len(),
            max: MAX_PACKAGE_BYTES,
        });
    }
    Ok(out)
}

/// What the manifest must say, beyond its types.
fn check_manifest(m: &PackageManifest) -> Result<(), PackageError> {
    let bad = |why: String| Err(PackageError::Manifest(why));
    crate::validate_id("model name", &m.name).map_err(|e| PackageError::Manifest(e.to_string()))?;
    if m.asset_kinds.is_empty() {
        return bad("asset_kinds is empty".into());
    }
    if m.inputs.is_empty() {
        return bad("inputs is empty".into());
    }
    if m.outputs != MODEL_OUTPUTS {
        return bad(format!(
            "outputs are {:?}; a model has {MODEL_OUTPUTS:?}",
            m.outputs
        ));
    }
    if !(m.threshold.is_finite() && m.alarm_threshold.is_finite())
        || m.threshold <= 0.0
        || m.alarm_threshold < m.threshold
    {
        return bad(format!(
            "thresholds {} and {} must be finite, positive, and the alarm one not lower",
            m.threshold, m.alarm_threshold
        ));
    }
    if m.self_test.is_empty() {
        return bad("no self-test vectors".into());
    }
    for (i, v) in m.self_test.iter().enumerate() {
        if v.input.len() != m.inputs.len() {
            return bad(format!(
                "self-test {i} has {} inputs, the model {}",
                v.input.len(),
                m.inputs.len()
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for f in &m.files {
        let plain = !f.name.is_empty()
            && f.name.len() <= 128
            && !f.name.contains(['/', '\\'])
            && f.name != "."
            && f.name != "..";
        if !plain {
            return bad(format!("file name `{}` is not a plain file name", f.name));
        }
        if !names.insert(f.name.as_str()) {
            return bad(format!("file `{}` is listed twice", f.name));
        }
    }
    Ok(())
}

/// Reads `n` bytes at `*at`, or says what was cut off.
fn take<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    n: usize,
    what: &str,
) -> Result<&'a [u8], PackageError> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| PackageError::Truncated {
            what: what.to_owned(),
            needed: (*at + n).saturating_sub(bytes.len()),
        })?;
    let part = &bytes[*at..end];
    *at = end;
    Ok(part)
}

fn length(
    bytes: &[u8],
    at: &mut usize,
    what: &'static str,
    max: usize,
) -> Result<usize, PackageError> {
    let raw = take(bytes, at, 4, what)?;
    let n = u32::from_le_bytes(raw.try_into().expect("4 bytes")) as usize;
    if n > max {
        return Err(PackageError::PartTooLarge { what, size: n, max });
    }
    Ok(n)
}

/// Reads only the manifest, unverified (to say what an untrusted package
/// claims to be, e.g. in an error report). Never act on it.
pub fn read_manifest_unverified(bytes: &[u8]) -> Result<PackageManifest, PackageError> {
    parse_manifest(split(bytes)?.0)
}

fn parse_manifest(bytes: &[u8]) -> Result<PackageManifest, PackageError> {
    let manifest: PackageManifest =
        serde_json::from_slice(bytes).map_err(|e| PackageError::Manifest(e.to_string()))?;
    check_manifest(&manifest)?;
    Ok(manifest)
}

/// Magic, limits, the manifest's bytes (its format checked), the
/// signature block, and where the files start.
fn split(bytes: &[u8]) -> Result<(&[u8], SignatureBlock, usize), PackageError> {
    if bytes.len() > MAX_PACKAGE_BYTES {
        return Err(PackageError::TooLarge {
            size: bytes.len(),
            max: MAX_PACKAGE_BYTES,
        });
    }
    if bytes.len() < PACKAGE_MAGIC.len() {
        return Err(PackageError::Truncated {
            what: "the magic".into(),
            needed: PACKAGE_MAGIC.len() - bytes.len(),
        });
    }
    if &bytes[..PACKAGE_MAGIC.len()] != PACKAGE_MAGIC {
        return Err(PackageError::NotAPackage);
    }
    let mut at = PACKAGE_MAGIC.len();
    let n = length(bytes, &mut at, "manifest", MAX_MANIFEST_BYTES)?;
    let manifest_bytes = take(bytes, &mut at, n, "the manifest")?;
    let format: FormatOnly = serde_json::from_slice(manifest_bytes)
        .map_err(|e| PackageError::Manifest(e.to_string()))?;
    if format.format != PACKAGE_FORMAT {
        return Err(PackageError::UnknownFormat(format.format));
    }
    let n = length(bytes, &mut at, "signature block", MAX_SIGNATURE_BYTES)?;
    let block: SignatureBlock = serde_json::from_slice(take(bytes, &mut at, n, "the signature")?)
        .map_err(|e| PackageError::SignatureBlock(e.to_string()))?;
    Ok((manifest_bytes, block, at))
}

/// Opens a package: checks its layout, that a key in `trusted` signed its
/// manifest (before anything in the manifest is believed), then the
/// manifest itself and every file's size and SHA-256.
pub fn open(bytes: &[u8], trusted: &[VerifyingKey]) -> Result<VerifiedPackage, PackageError> {
    let (manifest_bytes, block, mut at) = split(bytes)?;
    let key = trusted
        .iter()
        .find(|k| key_id(k) == block.key_id)
        .ok_or_else(|| PackageError::UnknownKey(block.key_id.clone()))?;
    let signature = unhex::<64>(&block.ed25519)
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| PackageError::SignatureBlock("ed25519 is not 128 hex digits".into()))?;
    key.verify_strict(manifest_bytes, &signature)
        .map_err(|_| PackageError::BadSignature(block.key_id.clone()))?;
    let manifest = parse_manifest(manifest_bytes)?;
    let mut files = Vec::with_capacity(manifest.files.len());
    for f in &manifest.files {
        let size = usize::try_from(f.size).unwrap_or(usize::MAX);
        let data = take(bytes, &mut at, size, &format!("file {}", f.name))?;
        let got = sha256_hex(data);
        if got != f.sha256 {
            return Err(PackageError::FileHash {
                name: f.name.clone(),
                expected: f.sha256.clone(),
                got,
            });
        }
        files.push((f.name.clone(), data.to_vec()));
    }
    if at != bytes.len() {
        return Err(PackageError::TrailingBytes(bytes.len() - at));
    }
    Ok(VerifiedPackage {
        manifest,
        key_id: block.key_id,
        sha256: sha256_hex(bytes),
        files,
    })
}

#[cfg(test)]
#[path = "package_tests.rs"]
mod tests;
