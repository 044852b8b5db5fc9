//! Starts and stops the hub: store, ingest and HTTP API, as one unit.
//!
//! `central-hub serve` and the demo both run the hub through [`start`], so the
//! demo exercises exactly what production runs. Shutdown is explicit: stop
//! taking messages, finish HTTP requests in flight, and return once both
//! tasks have ended (every commit is already durable).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::auth::Tokens;
use crate::config::HubConfig;
use crate::ingest::{self, IngestSettings, IngestStats};
use crate::ledger::{Ledger, LedgerPolicy};
use crate::registry::{self, RegistryError};
use store::{SledStore, StoreError};

/// Everything the hub needs to run.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub mqtt: IngestSettings,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    /// Users, SLA, crews, registry (see [`crate::config`]); it must have
    /// users (see [`HubConfig::ensure_users`]).
    pub config: HubConfig,
}

#[derive(Debug, Error)]
pub enum HubError {
    #[error("data directory {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("hub config: no users, so nobody could use the API")]
    NoUsers,
    #[error("hub config: {0}")]
    Config(String),
    #[error("HTTP address {addr}: {source}")]
    Http {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running hub.
pub struct RunningHub {
    pub http_addr: SocketAddr,
    pub ledger: Ledger,
    pub stats: Arc<IngestStats>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Opens the store, binds the HTTP port and starts ingest.
pub async fn start(settings: HubSettings) -> Result<RunningHub, HubError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| HubError::Store {
        path: settings.data_dir.clone(),
        source: StoreError::Backend(e.to_string()),
    })?;
    let store = SledStore::open(&settings.data_dir).map_err(|source| HubError::Store {
        path: settings.data_dir.clone(),
        source,
    })?;
    if settings.config.users.is_empty() {
        return Err(HubError::NoUsers);
    }
    let policy = LedgerPolicy {
        sla: settings.config.sla,
        history_interval_ms: settings.config.history_interval_s * 1000,
    };
    let ledger = Ledger::with_policy(Arc::new(store), policy);
    if let Some(path) = &settings.config.registry {
        let entries = registry::load(path)?;
        ledger
            .register(&entries)
            .map_err(|source| HubError::Store {
                path: settings.data_dir.clone(),
                source,
            })?;
        tracing::info!(path = %path.display(), assets = entries.len(), "asset registry imported");
    }
    let stats = Arc::new(IngestStats::default());
    let listener = tokio::net::TcpListener::bind(settings.http)
        .await
        .map_err(|source| HubError::Http {
            addr: settings.http,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| HubError::Http {
        addr: settings.http,
        source,
    })?;
    let shutdown = CancellationToken::new();
    let api_state = ApiState {
        ledger: ledger.clone(),
        stats: stats.clone(),
        tokens: Tokens::new(&settings.config.users),
        crews: Arc::new(settings.config.crews.clone()),
        trusted_keys: Arc::new(settings.config.models.keys().map_err(HubError::Config)?),
    };
    let http_shutdown = shutdown.clone();
    let http = tokio::spawn(async move {
        if let Err(e) = api::serve(listener, api_state, http_shutdown).await {
            tracing::error!("HTTP server failed: {e}");
        }
    });
    let ingest = tokio::spawn(ingest::run(
        settings.mqtt.clone(),
        ledger.clone(),
        stats.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        http = %http_addr,
        broker = %format!("{}:{}", settings.mqtt.host, settings.mqtt.port),
        data_dir = %settings.data_dir.display(),
        "hub started"
    );
    Ok(RunningHub {
        http_addr,
        ledger,
        stats,
        shutdown,
        tasks: vec![http, ingest],
    })
}

impl RunningHub {
    /// Stops ingest and the API and waits for both.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("hub stopped");
    }
}
