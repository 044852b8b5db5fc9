//! The asset registry: what each asset is, where it is, and how much its
//! failure would cost.
//!
//! Gateways announce the assets they watch, but only the utility knows that
//! span 3 carries the town's water main or that pump P-101 has a standby
//! twin. The registry holds that knowledge (site, kind, location,
//! criticality 1-5, the gateway and channels that watch it); criticality
//! weighs every work order's risk. It is loaded from a TOML or JSON file at
//! start (each asset in the file replaces the stored entry of the same site
//! and id; entries added through the API and absent from the file stay),
//! and engineers edit it through the API.

use std::path::Path;

use protocol::AssetKind;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One registered asset (key `registry/{site}/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    pub site: String,
    pub id: String,
    pub kind: AssetKind,
    #[serde(default)]
    pub location: Option<String>,
    /// Consequence of failure, 1 (minor) to 5 (severe).
    pub criticality: u8,
    /// The gateway that watches it, and its sensor channels there.
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub channels: Vec<String>,
}

/// The body of `PUT /api/assets/{site}/{id}`: an entry without its key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryUpdate {
    pub kind: AssetKind,
    #[serde(default)]
    pub location: Option<String>,
    pub criticality: u8,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub channels: Vec<String>,
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("asset registry {path}: {reason}")]
    File { path: String, reason: String },
    #[error("asset {site}/{id}: {reason}")]
    Invalid {
        site: String,
        id: String,
        reason: String,
    },
}

impl RegistryEntry {
    pub fn key(site: &str, id: &str) -> String {
        format!("registry/{site}/{id}")
    }

    pub fn from_update(site: &str, id: &str, u: RegistryUpdate) -> Self {
        RegistryEntry {
            site: site.to_owned(),
            id: id.to_owned(),
            kind: u.kind,
            location: u.location,
            criticality: u.criticality,
            gateway: u.gateway,
            channels: u.channels,
        }
    }

    /// Checks one entry.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let invalid = |reason: String| RegistryError::Invalid {
            site: self.site.clone(),
            id: self.id.clone(),
            reason,
        };
        for (what, v) in [("site", &self.site), ("id", &self.id)] {
            if v.is_empty() || v.len() > 64 || v.contains(['/', '#', '+']) || v.trim() != v {
                return Err(invalid(format!(
                    "{what} `{v}` must be 1-64 characters without `/`, `#`, `+` or surrounding spaces"
                )));
            }
        }
        if !(1..=5).contains(&self.criticality) {
            return Err(invalid(format!(
                "criticality {} is outside 1-5",
                self.criticality
            )));
        }
        if self.location.as_ref().is_some_and(|l| l.len() > 200) {
            return Err(invalid("location is longer than 200 characters".into()));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    assets: Vec<RegistryEntry>,
}

/// Reads a registry file: TOML (`[[assets]]` tables) or JSON (an
/// `{"assets": [...]}` object or a bare array), by its extension.
pub fn load(path: &Path) -> Result<Vec<RegistryEntry>, RegistryError> {
    let file_error = |reason: String| RegistryError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let entries = if path.extension().is_some_and(|e| e == "json") {
        match serde_json::from_str::<RegistryFile>(&text) {
            Ok(f) => f.assets,
            Err(_) => serde_json::from_str::<Vec<RegistryEntry>>(&text)
                .map_err(|e| file_error(e.to_string()))?,
        }
    } else {
        toml::from_str::<RegistryFile>(&text)
            .map_err(|e| file_error(e.to_string()))?
            .assets
    };
    let mut seen = std::collections::HashSet::new();
    for e in &entries {
        e.validate()?;
        if !seen.insert((e.site.as_str(), e.id.as_str())) {
            return Err(file_error(format!(
                "asset {}/{} is listed twice",
                e.site, e.id
            )));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_registries_load_and_bad_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("assets.toml");
        std::fs::write(
            &toml_path,
            "[[assets]]\nsite = \"north\"\nid = \"P-101\"\nkind = \"pump\"\nlocation = \"Bay 1\"\ncriticality = 4\ngateway = \"gw-1\"\nchannels = [\"accel\"]\n",
        )
        .unwrap();
        let entries = load(&toml_path).unwrap();
        assert_eq!(
            (entries[0].criticality, entries[0].location.as_deref()),
            (4, Some("Bay 1"))
        );
        let json_path = dir.path().join("assets.json");
        std::fs::write(
            &json_path,
            r#"[{"site":"s","id":"SPAN-1","kind":"bridge","criticality":5}]"#,
        )
        .unwrap();
        assert_eq!(load(&json_path).unwrap()[0].kind, AssetKind::Bridge);

        std::fs::write(
            &json_path,
            r#"[{"site":"s","id":"X","kind":"pump","criticality":7}]"#,
        )
        .unwrap();
        let err = load(&json_path).unwrap_err().to_string();
        assert!(err.contains("criticality 7 is outside 1-5"), "{err}");
        std::fs::write(
            &toml_path,
            "[[assets]]\nsite = \"s\"\nid = \"X\"\nkind = \"pump\"\ncriticality = 2\ncolour = \"red\"\n",
        )
        .unwrap();
        let err = load(&toml_path).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        std::fs::write(
            &json_path,
            r#"[{"site":"s","id":"X","kind":"pump","criticality":2},{"site":"s","id":"X","kind":"pump","criticality":3}]"#,
        )
        .unwrap();
        assert!(load(&json_path).unwrap_err().to_string().contains("twice"));
    }
}
