//! Signing keys: ours (published, used to sign requests and JSON) and other
//! servers' (fetched, checked, cached), plus the notary that vouches for
//! other servers' keys. Spec: server-server-api.md "Retrieving server keys".

mod notary;
pub mod own;
pub mod remote;
pub mod verify;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use http::Method;
use ruma::{
    api::federation::authentication::XMatrix, signatures::sign_json, CanonicalJsonObject,
    CanonicalJsonValue, OwnedServerName, ServerName,
};

use crate::{
    config::Config,
    error::{Error, Result},
    http_util::{json_string, splice_object},
    net::https::HttpsClient,
    store::Store,
    time::now_ms,
};
use own::OwnKeys;

/// Keys and everything done with them. One per process, shared by the
/// routes and services that sign or verify.
/// Key fetches at a time, to any servers.
const MAX_FETCHES: usize = 16;

pub struct KeyService {
    server_name: OwnedServerName,
    validity: Duration,
    store: Store,
    own: RwLock<Arc<OwnKeys>>,
    client: Arc<HttpsClient>,
    trusted_key_servers: Vec<OwnedServerName>,
    /// One fetch at a time per server, and when it last happened.
    fetch_gates: Mutex<HashMap<OwnedServerName, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
    /// Key fetches in progress, across all servers: a request naming a
    /// made-up origin costs a fetch, and strangers must not be able to
    /// make this server open connections without bound.
    fetches: tokio::sync::Semaphore,
}

impl KeyService {
    pub fn new(config: &Config, store: Store, client: Arc<HttpsClient>) -> Result<Self> {
        let own = OwnKeys::load_or_generate(
            &store.signing_keys,
            store.data_dir(),
            config.server_name.as_str(),
        )?;
        Ok(Self {
            server_name: config.server_name.clone(),
            validity: config.key_validity(),
            store,
            own: RwLock::new(Arc::new(own)),
            client,
            trusted_key_servers: config.federation.trusted_key_servers.clone(),
            fetch_gates: Mutex::new(HashMap::new()),
            fetches: tokio::sync::Semaphore::new(MAX_FETCHES),
        })
    }

    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    pub fn own_keys(&self) -> Arc<OwnKeys> {
        // A poisoned lock only means a panic elsewhere mid-swap of an Arc.
        self.own.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Retires the current key and starts signing with a new one.
    pub fn rotate(&self) -> Result<String> {
        let keys = OwnKeys::rotate(
            &self.store.signing_keys,
            self.store.data_dir(),
            self.server_name.as_str(),
        )?;
        let id = keys.current_id.clone();
        *self.own.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        tracing::info!(key_id = %id, "rotated signing key");
        Ok(id)
    }

    /// Our signed `/_matrix/key/v2/server` response.
    pub fn server_key_response(&self) -> Result<CanonicalJsonObject> {
        let valid_until = now_ms().saturating_add(self.validity.as_millis() as u64);
        let mut body = self
            .own_keys()
            .key_response_body(self.server_name.as_str(), valid_until);
        self.sign_json(&mut body)?;
        Ok(body)
    }

    /// Adds our signature to `object` (keeping any signatures already there).
    pub fn sign_json(&self, object: &mut CanonicalJsonObject) -> Result<()> {
        let keys = self.own_keys();
        sign_json(self.server_name.as_str(), keys.current.as_ref(), object)
            .map_err(|e| Error::internal(format!("cannot sign JSON: {e}")))
    }

    /// Adds the content hash and our signature to an event we create.
    /// Spec: server-server-api.md "Adding hashes and signatures to outgoing events".
    pub fn hash_and_sign_event(
        &self,
        event: &mut CanonicalJsonObject,
        rules: &ruma::room_version_rules::RedactionRules,
    ) -> Result<()> {
        let keys = self.own_keys();
        ruma::signatures::hash_and_sign_event(
            self.server_name.as_str(),
            keys.current.as_ref(),
            event,
            rules,
        )
        .map_err(|e| match e {
            ruma::signatures::JsonError::PduTooLarge => {
                Error::too_large("event is larger than 65,536 bytes")
            }
            e => Error::internal(format!("cannot sign event: {e}")),
        })
    }

    /// The `Authorization: X-Matrix …` value for a request we send, with
    /// any JSON `body` (made canonical here to be signed).
    /// Spec: server-server-api.md "Request Authentication".
    pub fn authorization(
        &self,
        destination: &ServerName,
        method: &Method,
        uri: &str,
        body: &[u8],
    ) -> Result<String> {
        if body.is_empty() {
            return self.sign_request(destination, method, uri, None);
        }
        let content: CanonicalJsonValue = serde_json::from_slice(body).map_err(|e| {
            Error::bad_json(format!(
                "cannot sign a body that is not canonical JSON: {e}"
            ))
        })?;
        let content = content.to_string();
        self.sign_request(destination, method, uri, Some(content.as_bytes()))
    }

    /// [`Self::authorization`] for a body that is canonical JSON already
    /// (the sender's transactions, spliced from stored events): signed as
    /// it is, without parsing it back and encoding it again (a third of the
    /// sender's time went there).
    pub fn authorization_canonical(
        &self,
        destination: &ServerName,
        method: &Method,
        uri: &str,
        canonical: &[u8],
    ) -> Result<String> {
        let content = (!canonical.is_empty()).then_some(canonical);
        self.sign_request(destination, method, uri, content)
    }

    /// Signs the request object, spliced in its canonical key order
    /// (`content`, `destination`, `method`, `origin`, `uri`) around the
    /// canonical `content`.
    fn sign_request(
        &self,
        destination: &ServerName,
        method: &Method,
        uri: &str,
        content: Option<&[u8]>,
    ) -> Result<String> {
        let strings = [
            destination.as_str(),
            method.as_str(),
            self.server_name.as_str(),
            uri,
        ]
        .map(json_string);
        let fields = content.map(|c| ("content", c)).into_iter().chain([
            ("destination", strings[0].as_slice()),
            ("method", strings[1].as_slice()),
            ("origin", strings[2].as_slice()),
            ("uri", strings[3].as_slice()),
        ]);
        let object = splice_object(fields);
        let keys = self.own_keys();
        let (key_id, signature) =
            ruma::signatures::KeyPair::sign(keys.current.as_ref(), &object).into_parts();
        let key = key_id
            .as_str()
            .try_into()
            .map_err(|e| Error::internal(format!("own key id: {e}")))?;
        let header = XMatrix::new(
            self.server_name.clone(),
            destination.to_owned(),
            key,
            ruma::serde::Base64::new(signature),
        );
        Ok(header.to_string())
    }

    fn fetch_gate(&self, server: &ServerName) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        let mut gates = self.fetch_gates.lock().unwrap_or_else(|e| e.into_inner());
        if gates.len() > 4096 {
            // Forget idle servers so that made-up origins cannot grow this map.
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        gates.entry(server.to_owned()).or_default().clone()
    }
}

#[cfg(test)]
mod tests;
