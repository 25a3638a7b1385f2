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
    api::federation::authentication::{XMatrix, XMatrixSigningInput},
    signatures::sign_json,
    CanonicalJsonObject, OwnedServerName, ServerName,
};

use crate::{
    config::Config,
    error::{Error, Result},
    federation::client::FederationClient,
    store::Store,
    time::now_ms,
};
use own::OwnKeys;

/// Keys and everything done with them. One per process, shared by the
/// routes and services that sign or verify.
pub struct KeyService {
    server_name: OwnedServerName,
    validity: Duration,
    store: Store,
    own: RwLock<Arc<OwnKeys>>,
    client: Arc<FederationClient>,
    trusted_key_servers: Vec<OwnedServerName>,
    /// One fetch at a time per server, and when it last happened.
    fetch_gates: Mutex<HashMap<OwnedServerName, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

impl KeyService {
    pub fn new(config: &Config, store: Store, client: Arc<FederationClient>) -> Result<Self> {
        let own = OwnKeys::load_or_generate(&store.signing_keys)?;
        Ok(Self {
            server_name: config.server_name.clone(),
            validity: config.key_validity(),
            store,
            own: RwLock::new(Arc::new(own)),
            client,
            trusted_key_servers: config.federation.trusted_key_servers.clone(),
            fetch_gates: Mutex::new(HashMap::new()),
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
        let keys = OwnKeys::rotate(&self.store.signing_keys)?;
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

    /// The `Authorization: X-Matrix …` value for a request we send.
    /// Spec: server-server-api.md "Request Authentication".
    pub fn authorization(
        &self,
        destination: &ServerName,
        method: &Method,
        uri: &str,
        body: &[u8],
    ) -> Result<String> {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(|e| Error::internal(format!("cannot build request to sign: {e}")))?;
        let keys = self.own_keys();
        let input = XMatrixSigningInput::new(
            self.server_name.clone(),
            destination.to_owned(),
            keys.current.as_ref(),
        );
        let header = XMatrix::sign_http_request(&request, input)
            .map_err(|e| Error::internal(format!("cannot sign request: {e}")))?;
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
