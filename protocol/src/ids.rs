//! Identifiers (site, gateway, asset, channel, model) share one rule.
//!
//! They appear in MQTT topics, sled keys and URLs, so they are restricted to
//! characters that are safe in all three: ASCII letters, digits, `-`, `_`
//! and `.`, 1 to 64 characters, not starting with `.`.

use thiserror::Error;

/// Longest identifier accepted anywhere in the protocol.
pub const MAX_ID_LEN: usize = 64;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} `{value}` is longer than {MAX_ID_LEN} characters")]
    TooLong { what: &'static str, value: String },
    #[error(
        "{what} `{value}` contains `{bad}`; allowed are ASCII letters, digits, '-', '_' and '.' (not first)"
    )]
    BadCharacter {
        what: &'static str,
        value: String,
        bad: char,
    },
}

/// Checks one identifier; `what` names it in the error ("asset id", ...).
pub fn validate_id(what: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            what,
            value: value.to_owned(),
        });
    }
    for (i, c) in value.chars().enumerate() {
        let ok = c.is_ascii_alphanumeric() || c == '-' || c == '_' || (c == '.' && i > 0);
        if !ok {
            return Err(IdError::BadCharacter {
                what,
                value: value.to_owned(),
                bad: c,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_ids() {
        for id in ["P-101", "gw_north.1", "span2", "a"] {
            assert_eq!(validate_id("asset id", id), Ok(()), "{id}");
        }
    }

    #[test]
    fn refuses_topic_wildcards_separators_and_empties() {
        for id in ["", "a/b", "a+", "#", ".hidden", "sp ace", "é"] {
            assert!(validate_id("asset id", id).is_err(), "{id:?} accepted");
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(matches!(
            validate_id("asset id", &long),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn error_names_the_identifier_and_the_character() {
        let err = validate_id("gateway id", "gw/1").unwrap_err().to_string();
        assert!(err.contains("gateway id"), "{err}");
        assert!(err.contains("`/`"), "{err}");
    }
}
