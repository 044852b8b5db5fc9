//! Who may use the API: bearer tokens and two roles.
//!
//! Operators work the queue (change work orders, schedule crews); engineers
//! may also change what the hub believes about the fleet (the asset
//! registry, and models). Both read everything. Users and their tokens come
//! from the hub config; every `/api` request must carry
//! `Authorization: Bearer <token>`: without a known token it gets 401, with
//! a role that may not do what it asks, 403. The page itself (`/`) is
//! public and asks for a token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    Engineer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Engineer => "engineer",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Engineer || needed == Role::Operator
    }
}

/// A user of the API (`[[users]]` in the hub config).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub token: String,
}

impl std::fmt::Debug for User {
    // Tokens stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The caller of a request, once its token is known.
#[derive(Debug, Clone, Serialize)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Why not, unless the caller's role allows `needed` (the API answers
    /// 403 with it).
    pub fn require(&self, needed: Role) -> Result<(), String> {
        if self.role.allows(needed) {
            Ok(())
        } else {
            Err(format!(
                "user `{}` ({}) may not do this: it needs the {} role",
                self.name,
                self.role.as_str(),
                needed.as_str()
            ))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            name: self.name.clone(),
            role: self.role.as_str().into(),
        }
    }
}

/// The token table.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    users: Arc<HashMap<String, Caller>>,
}

impl Tokens {
    pub fn new(users: &[User]) -> Self {
        let users = users
            .iter()
            .map(|u| {
                (
                    u.token.clone(),
                    Caller {
                        name: u.name.clone(),
                        role: u.role,
                    },
                )
            })
            .collect();
        Tokens {
            users: Arc::new(users),
        }
    }

    /// The user a token belongs to. Every known token is compared in full
    /// (no early exit on the first differing byte), so response time does
    /// not reveal how much of a guess was right.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let mut found = None;
        for (known, caller) in self.users.iter() {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(caller.clone());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Middleware: resolves the bearer token to a [`Caller`] (a request
/// extension) or answers 401.
pub async fn authenticate(State(tokens): State<Tokens>, mut req: Request, next: Next) -> Response {
    let header_value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = header_value.and_then(|v| v.strip_prefix("Bearer ")) else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "this API needs `Authorization: Bearer <token>` (the tokens are in the hub config)"
                .into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        return r;
    };
    match tokens.caller(token.trim()) {
        Some(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        None => {
            tracing::warn!(path = %req.uri().path(), "API request with an unknown token refused");
            error(StatusCode::UNAUTHORIZED, "unknown token".into())
        }
    }
}

/// A fresh random token: 24 bytes from the operating system, hex.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_their_users_and_roles_nest() {
        let t = Tokens::new(&[User {
            name: "ops".into(),
            role: Role::Operator,
            token: "a".repeat(24),
        }]);
        assert_eq!(t.caller(&"a".repeat(24)).unwrap().name, "ops");
        assert!(t.caller(&"a".repeat(23)).is_none());
        assert!(t.caller(&"b".repeat(24)).is_none());
        assert!(Role::Engineer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Engineer));
        let a = random_token().unwrap();
        assert_eq!(a.len(), 48);
        assert_ne!(a, random_token().unwrap());
    }
}
