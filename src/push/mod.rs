//! Pushers: the apps of our users that want to be woken when something
//! notifies them (client-server-api "Pushers"), and the sender that wakes
//! them through their push gateways (push-gateway-api "POST
//! /_matrix/push/v1/notify", in `sender.rs`).

mod sender;

use std::{sync::Arc, time::Duration};

use ruma::{
    api::client::push::{Pusher, PusherIds, PusherKind},
    UserId,
};
use serde_json::Value;

use crate::{
    config::Config,
    error::{Error, Result},
    net::{https::HttpsClient, ip_policy::AddressPolicy, tls::client_config, web::WebClient},
    rooms::RoomService,
    store::pushers::{PusherId, PusherRecord, PusherTree},
    time::now_ms,
};

/// The path a push gateway's URL must have.
pub const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";
/// Pushers one user may have (each app on each device has one).
const MAX_PER_USER: usize = 32;
const MAX_APP_ID: usize = 64;
const MAX_PUSHKEY: usize = 512;
const MAX_URL: usize = 2048;

pub struct PushService {
    tree: PusherTree,
    rooms: Arc<RoomService>,
    web: WebClient,
    /// Longest one gateway request may take.
    timeout: Duration,
}

impl PushService {
    pub fn new(
        config: &Config,
        tree: PusherTree,
        rooms: Arc<RoomService>,
        client: &HttpsClient,
    ) -> std::result::Result<Self, String> {
        let policy = AddressPolicy::from_config(&config.federation)?
            .and(&config.push.ip_allowlist, "push.ip_allowlist")?;
        let tls = client_config(
            config.federation.verify_certificates,
            config.federation.extra_ca_file.as_deref(),
        )?;
        Ok(Self {
            tree,
            rooms,
            web: WebClient::new(client.dns().clone(), policy, tls),
            timeout: Duration::from_secs(config.federation.request_timeout_secs),
        })
    }

    /// `GET /pushers`: the user's pushers as they set them.
    pub fn pushers_of(&self, user: &UserId) -> Result<Vec<Pusher>> {
        self.tree
            .of_user(user.as_str())?
            .into_iter()
            .map(|(_, record)| {
                serde_json::from_value(record.pusher)
                    .map_err(|e| Error::internal(format!("stored pusher: {e}")))
            })
            .collect()
    }

    /// `POST /pushers/set`: adds, replaces or (with `kind: null`) deletes
    /// one of the user's pushers. Without `append`, the same app and
    /// pushkey set for another of our users is dropped: a phone belongs to
    /// the user who last logged in on it.
    pub async fn set(&self, user: &UserId, device: Option<&str>, body: &Value) -> Result<()> {
        let ids: PusherIds = serde_json::from_value(body.clone())
            .map_err(|e| Error::bad_json(format!("app_id and pushkey: {e}")))?;
        if ids.app_id.len() > MAX_APP_ID || ids.pushkey.len() > MAX_PUSHKEY {
            return Err(Error::invalid_param(format!(
                "app_id is at most {MAX_APP_ID} bytes, pushkey {MAX_PUSHKEY}"
            )));
        }
        let id: PusherId = (user.to_string(), ids.app_id.clone(), ids.pushkey.clone());
        if body.get("kind").is_none_or(Value::is_null) {
            self.tree.remove(&id)?;
            return Ok(());
        }
        let pusher: Pusher = serde_json::from_value(body.clone())
            .map_err(|e| Error::bad_json(format!("invalid pusher: {e}")))?;
        check_kind(&pusher.kind)?;
        let mine = self.tree.of_user(user.as_str())?;
        if mine.len() >= MAX_PER_USER && !mine.iter().any(|(other, _)| *other == id) {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_LIMIT_EXCEEDED",
                format!("at most {MAX_PER_USER} pushers per user"),
            ));
        }
        if !body["append"].as_bool().unwrap_or(false) {
            for (other, _) in self.tree.all()? {
                if other.1 == id.1 && other.2 == id.2 && other.0 != id.0 {
                    self.tree.remove(&other)?;
                }
            }
        }
        let record = PusherRecord {
            pusher: serde_json::to_value(&pusher).map_err(|e| Error::internal(e.to_string()))?,
            device_id: device.map(str::to_owned),
            pushkey_ts: now_ms(),
            // Only what notifies from now on is pushed.
            delivered: self.rooms.position(),
        };
        self.tree.put(&id, &record).await?;
        Ok(())
    }

    /// Drops the pushers set by devices that were logged out or deleted.
    pub fn devices_removed(&self, user: &UserId, devices: &[String]) -> Result<()> {
        for (id, record) in self.tree.of_user(user.as_str())? {
            if record
                .device_id
                .as_ref()
                .is_some_and(|d| devices.contains(d))
            {
                self.tree.remove(&id)?;
            }
        }
        Ok(())
    }
}

/// Only `http` pushers to a push gateway's notify URL.
fn check_kind(kind: &PusherKind) -> Result<()> {
    let PusherKind::Http(http) = kind else {
        return Err(Error::invalid_param(
            "only \"http\" pushers are supported (this server sends no email)",
        ));
    };
    let url: http::Uri = http
        .url
        .parse()
        .ok()
        .filter(|_| http.url.len() <= MAX_URL)
        .ok_or_else(|| Error::invalid_param("data.url is not a URL"))?;
    if !matches!(url.scheme_str(), Some("https" | "http")) || url.host().is_none() {
        return Err(Error::invalid_param("data.url must be an http(s) URL"));
    }
    if url.path() != NOTIFY_PATH {
        return Err(Error::invalid_param(format!(
            "data.url must be a push gateway's {NOTIFY_PATH}"
        )));
    }
    Ok(())
}
