//! The hub's configuration file (`central-hub serve --config hub.toml`).
//!
//! Connection settings stay on the command line; what an operations team
//! edits and reviews lives here: who may use the API (users, their roles and
//! bearer tokens), the SLA table that turns priorities into due dates, the
//! crews and their calendars, where the asset registry file is, and how
//! often health history is kept. Unknown keys are errors (a misspelt
//! `p1_hour` must not silently leave the default in force).
//!
//! ```toml
//! registry = "assets.toml"      # relative to this file
//! history_interval_s = 60
//!
//! [[users]]
//! name = "control-room"
//! role = "operator"             # or "engineer"
//! token = "at-least-24-random-characters"
//!
//! [sla]
//! p1_hours = 24
//! p2_hours = 72
//! p3_hours = 168
//! p4_hours = 720
//!
//! [models]
//! trusted_keys = ["ed25519:<64 hex digits>"]   # engineers' signing keys
//!
//! [[crews]]
//! id = "mech-a"
//! name = "Mechanical crew A"
//! skills = ["mechanical"]
//! daily_capacity = 4
//! working_days = ["mon", "tue", "wed", "thu", "fri"]
//! holidays = ["2026-12-25"]
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::auth::{Role, User};
use crate::risk::Sla;
use crate::scheduler::{Crew, validate_crews};

/// Shortest accepted bearer token.
pub const MIN_TOKEN_LEN: usize = 24;

#[derive(Debug, Error)]
#[error("hub config {path}: {reason}")]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub sla: Sla,
    #[serde(default)]
    pub crews: Vec<Crew>,
    /// The asset registry file (TOML or JSON), imported at start.
    #[serde(default)]
    pub registry: Option<PathBuf>,
    /// Seconds between health history points of an unchanged asset.
    #[serde(default = "default_history_interval")]
    pub history_interval_s: u64,
    #[serde(default)]
    pub models: ModelsConfig,
}

/// `[models]`: whose signatures the model registry accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Engineers' public keys, `ed25519:<64 hex digits>` (from
    /// `central-hub models keygen`).
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

impl ModelsConfig {
    pub fn keys(&self) -> Result<Vec<protocol::package::VerifyingKey>, String> {
        protocol::package::parse_public_keys(&self.trusted_keys)
    }
}

fn default_history_interval() -> u64 {
    60
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            users: Vec::new(),
            sla: Sla::default(),
            crews: Vec::new(),
            registry: None,
            history_interval_s: default_history_interval(),
            models: ModelsConfig::default(),
        }
    }
}

impl HubConfig {
    /// Reads and checks a config file; a relative `registry` path is taken
    /// from the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let error = |reason: String| ConfigError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let mut config: HubConfig = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        if let Some(r) = &config.registry
            && r.is_relative()
        {
            config.registry = Some(path.parent().unwrap_or(Path::new(".")).join(r));
        }
        config.validate().map_err(error)?;
        Ok(config)
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        let mut tokens = std::collections::HashSet::new();
        for u in &self.users {
            if u.name.trim().is_empty() {
                return Err("a user has an empty name".into());
            }
            if !names.insert(u.name.as_str()) {
                return Err(format!("user `{}` is listed twice", u.name));
            }
            if u.token.len() < MIN_TOKEN_LEN || u.token.chars().any(char::is_whitespace) {
                return Err(format!(
                    "user `{}`: token must be at least {MIN_TOKEN_LEN} characters without spaces",
                    u.name
                ));
            }
            if !tokens.insert(u.token.as_str()) {
                return Err(format!(
                    "user `{}` shares a token with another user",
                    u.name
                ));
            }
        }
        self.sla.validate()?;
        validate_crews(&self.crews).map_err(|e| e.to_string())?;
        if self.history_interval_s == 0 {
            return Err("history_interval_s must be at least 1".into());
        }
        self.models.keys()?;
        Ok(())
    }

    /// With no users configured, makes one operator and one engineer with
    /// fresh random tokens (valid until the hub stops) and returns them, so
    /// a first start is usable and never open to all.
    pub fn ensure_users(&mut self) -> std::io::Result<Vec<User>> {
        if !self.users.is_empty() {
            return Ok(Vec::new());
        }
        for (name, role) in [("operator", Role::Operator), ("engineer", Role::Engineer)] {
            self.users.push(User {
                name: name.into(),
                role,
                token: crate::auth::random_token()?,
            });
        }
        Ok(self.users.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<HubConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.toml");
        std::fs::write(&path, text).unwrap();
        HubConfig::load(&path)
    }

    #[test]
    fn a_full_config_loads() {
        let c = load(
            r#"registry = "assets.toml"
[[users]]
name = "ops"
role = "operator"
token = "0123456789abcdef01234567"
[sla]
p1_hours = 12
p2_hours = 48
p3_hours = 168
p4_hours = 720
[[crews]]
id = "mech-a"
name = "Mechanical A"
skills = ["mechanical"]
daily_capacity = 3
"#,
        )
        .unwrap();
        assert_eq!(
            (c.users[0].role, c.sla.p1_hours, c.crews.len()),
            (Role::Operator, 12, 1)
        );
        assert!(c.registry.unwrap().ends_with("assets.toml"));
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let short = load("[[users]]\nname = \"a\"\nrole = \"operator\"\ntoken = \"short\"\n");
        assert!(short.unwrap_err().to_string().contains("at least 24"));
        let role = load(
            "[[users]]\nname = \"a\"\nrole = \"admin\"\ntoken = \"0123456789abcdef01234567\"\n",
        );
        assert!(role.unwrap_err().to_string().contains("admin"));
        let typo = load("[sla]\np1_hour = 3\n");
        assert!(typo.unwrap_err().to_string().contains("p1_hour"));
        let crew = load("[[crews]]\nid = \"x\"\nname = \"X\"\nskills = []\ndaily_capacity = 1\n");
        assert!(crew.is_err());
    }

    #[test]
    fn without_users_one_operator_and_one_engineer_are_made() {
        let mut c = HubConfig::default();
        let made = c.ensure_users().unwrap();
        assert_eq!(made.len(), 2);
        assert_ne!(made[0].token, made[1].token);
        assert!(c.validate().is_ok());
        assert!(c.ensure_users().unwrap().is_empty());
    }
}
