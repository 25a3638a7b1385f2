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

    /// [`Self::authorization`] for a body that is canonical JSON already
    /// (the sender's transactions, spliced from stored events). The signed
    /// object is spliced around it in its canonical key order (`content`,
    /// `destination`, `method`, `origin`, `uri`) instead of ruma parsing
    /// the whole body back and encoding it again: a third of the sender's
    /// time went there.
    pub fn authorization_canonical(
        &self,
        destination: &ServerName,
        method: &Method,
        uri: &str,
        body: &[u8],
    ) -> Result<String> {
        let string = |s: &str| {
            serde_json::to_vec(s).map_err(|e| Error::internal(format!("cannot encode: {e}")))
        };
        let mut object = Vec::with_capacity(body.len() + 256);
        object.extend_from_slice(b"{\"content\":");
        object.extend_from_slice(body);
        for (name, value) in [
            ("destination", destination.as_str()),
            ("method", method.as_str()),
            ("origin", self.server_name.as_str()),
            ("uri", uri),
        ] {
            object.extend_from_slice(format!(",\"{name}\":").as_bytes());
            object.extend_from_slice(&string(value)?);
        }
        object.push(b'}');
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
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_spliced_canonical_body_is_signed_as_ruma_signs_it() {
        let dir = tempfile::tempdir().expect("dir");
        let config = Config {
            server_name: "a.example.org".try_into().expect("name"),
            ..Config::default()
        };
        let store = Store::open(dir.path()).expect("store");
        let client = Arc::new(FederationClient::new(&config).expect("client"));
        let keys = KeyService::new(&config, store, client).expect("keys");
        let destination = <&ServerName>::try_from("b.example.org:8448").expect("name");
        let uri = "/_matrix/federation/v1/send/1-2";
        let body = serde_json::json!({
            "edus": [{"content": {"q": "\"é\n"}, "edu_type": "m.x"}],
            "origin": "a.example.org",
            "origin_server_ts": 5,
            "pdus": [{"a": [1, {"b": null}], "z": "ü"}],
        });
        let canonical = ruma::canonical_json::to_canonical_value(&body)
            .expect("canonical")
            .to_string();
        let spliced = keys
            .authorization_canonical(destination, &Method::PUT, uri, canonical.as_bytes())
            .expect("spliced");
        let by_ruma = keys
            .authorization(destination, &Method::PUT, uri, canonical.as_bytes())
            .expect("ruma");
        assert_eq!(spliced, by_ruma);
        let other = keys
            .authorization_canonical(destination, &Method::PUT, "/other", canonical.as_bytes())
            .expect("spliced");
        assert_ne!(spliced, other);
    }
}
