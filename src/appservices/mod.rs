//! Application services (bridges): the transactions that push them the
//! events they are interested in (`sender.rs`), the questions asked of
//! them about users and aliases nobody here knows, their third-party
//! protocols and pings (`queries.rs`). Which events interest them is
//! decided as events are appended (`rooms/appservices.rs`); who they
//! may act as, in `accounts/appservice_auth.rs`.
//! Spec: application-service-api.md.

mod queries;
mod sender;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{header, Method, StatusCode};
use serde::Serialize;

use crate::{
    config::appservices::{Appservice, Appservices},
    net::{https::HttpsClient, ip_policy::AddressPolicy, tls::client_config, web::WebClient},
    rooms::RoomService,
    store::{
        appservices::AppserviceTxnTree,
        e2ee::E2eeTrees,
        outbound::{OutboundTree, Queued},
        Store,
    },
    time::now_ms,
};

pub use queries::PingError;

/// The most of an application service's answer read.
const MAX_ANSWER: usize = 1024 * 1024;

pub struct AppserviceService {
    registered: Arc<Appservices>,
    queue: OutboundTree,
    txns: AppserviceTxnTree,
    /// Its users' devices' one-time and fallback keys (MSC3202).
    keys: E2eeTrees,
    rooms: Arc<RoomService>,
    web: WebClient,
    /// Longest one request to an application service may take.
    timeout: Duration,
    health: Mutex<HashMap<Arc<str>, Health>>,
    /// For the accounts' notice of an application service's requests.
    accounts: Arc<crate::accounts::AccountService>,
}

/// How delivery to one application service goes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// Failed attempts since the last success.
    pub failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub transactions_sent: u64,
    pub events_sent: u64,
}

/// One application service as `hearth appservice status` shows it.
#[derive(Debug, Serialize)]
pub struct Status {
    pub id: String,
    pub url: Option<String>,
    pub queued: usize,
    /// When the oldest queued event was sent (its `origin_server_ts`),
    /// when the queue starts with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_queued_ms: Option<u64>,
    #[serde(flatten)]
    pub health: Health,
}

/// A metric: name, type, help, and its value for one registration.
type Series = (&'static str, &'static str, &'static str, fn(&Status) -> u64);

impl AppserviceService {
    pub fn new(
        config: &crate::config::Config,
        registered: Arc<Appservices>,
        store: &Store,
        (rooms, accounts): (Arc<RoomService>, Arc<crate::accounts::AccountService>),
        client: &HttpsClient,
    ) -> Result<Self, String> {
        let tls = client_config(
            config.federation.verify_certificates,
            config.federation.extra_ca_file.as_deref(),
        )?;
        Ok(Self {
            registered,
            queue: store.outbound.clone(),
            txns: store.appservice_txns.clone(),
            keys: store.e2ee.clone(),
            rooms,
            // Bridges run beside the server: their addresses are the
            // admin's choice, not a stranger's.
            web: WebClient::new(client.dns().clone(), AddressPolicy::any(), tls),
            timeout: Duration::from_secs(config.federation.request_timeout_secs),
            health: Mutex::default(),
            accounts,
        })
    }

    pub fn registered(&self) -> &Appservices {
        &self.registered
    }

    /// Every registration with its queue and delivery state.
    pub fn status(&self) -> Vec<Status> {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        self.registered
            .all()
            .iter()
            .map(|a| Status {
                id: a.id.to_string(),
                url: a.url.clone(),
                queued: self.queue.appservice_depth(&a.id),
                oldest_queued_ms: self.oldest_queued_ms(&a.id),
                health: health.get(&a.id).cloned().unwrap_or_default(),
            })
            .collect()
    }

    fn oldest_queued_ms(&self, id: &str) -> Option<u64> {
        match self.queue.appservice_first(id).ok().flatten()? {
            Queued::Pdu { event_id } => self.rooms.room_and_ts_of(&event_id).ok().map(|(_, ts)| ts),
            _ => None,
        }
    }

    /// The status in Prometheus's text format, one series per registration.
    pub fn to_prometheus(&self) -> String {
        let statuses = self.status();
        if statuses.is_empty() {
            return String::new();
        }
        let series: [Series; 5] = [
            (
                "queued",
                "gauge",
                "Entries queued for the application service.",
                |s| s.queued as u64,
            ),
            (
                "oldest_queued_age_seconds",
                "gauge",
                "Age of the oldest queued event (0 when none).",
                |s| {
                    s.oldest_queued_ms
                        .map_or(0, |ms| now_ms().saturating_sub(ms) / 1000)
                },
            ),
            (
                "failures",
                "gauge",
                "Failed attempts since the last success.",
                |s| u64::from(s.health.failures),
            ),
            (
                "transactions_total",
                "counter",
                "Transactions the application service took.",
                |s| s.health.transactions_sent,
            ),
            (
                "events_total",
                "counter",
                "Queue entries (events, ephemeral events) it took.",
                |s| s.health.events_sent,
            ),
        ];
        let mut text = String::new();
        for (name, kind, help, value) in series {
            text.push_str(&format!(
                "# HELP hearth_appservice_{name} {help}\n# TYPE hearth_appservice_{name} {kind}\n"
            ));
            for status in &statuses {
                text.push_str(&format!(
                    "hearth_appservice_{name}{{appservice=\"{}\"}} {}\n",
                    status.id.replace(['\\', '"', '\n'], "_"),
                    value(status)
                ));
            }
        }
        text
    }

    /// One request to an application service, authenticated with its
    /// `hs_token`: the status and the answer's body.
    async fn call(
        &self,
        appservice: &Appservice,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), String> {
        let base = appservice
            .url
            .as_deref()
            .ok_or_else(|| format!("{} has no url", appservice.id))?;
        let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
        let bearer = format!("Bearer {}", appservice.hs_token);
        let mut headers = vec![
            (header::USER_AGENT, "hearth"),
            (header::AUTHORIZATION, bearer.as_str()),
        ];
        if body.is_some() {
            headers.push((header::CONTENT_TYPE, "application/json"));
        }
        self.web
            .call(
                method,
                &url,
                &headers,
                body.unwrap_or_default(),
                (MAX_ANSWER, self.timeout),
            )
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// The application service answered: its sender goes on at once.
    fn came_back(&self, id: &str) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = health.get_mut(id) {
            if h.failures > 0 {
                h.failures = 0;
                h.failing_since_ms = None;
                if let Some(ready) = self.rooms.appservice_ready(id) {
                    ready.notify_one();
                }
            }
        }
    }
}
