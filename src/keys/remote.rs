//! Other servers' keys: fetched from `/_matrix/key/v2/server` (or through
//! trusted notaries), checked, and cached in the `server_keys` tree.

use std::time::{Duration, Instant};

use ruma::{CanonicalJsonObject, CanonicalJsonValue, ServerName};

use super::{verify::SignedJson, KeyService};
use crate::{
    error::{Error, Result},
    store::{RemoteKey, StoredKeyResponse},
    time::now_ms,
};

/// Within this long after a fetch, an unknown key id does not trigger
/// another: a flood of made-up key ids costs the origin one request.
const MIN_REFETCH: Duration = Duration::from_secs(5);

/// Where to fetch a server's keys from when the cache cannot answer.
#[derive(Debug, Clone, Copy)]
pub(super) enum Route {
    /// Through `trusted_key_servers` when configured, else directly.
    Configured,
    /// From the server itself, always.
    Direct,
}

/// What a key is needed for, which decides whether it is still usable.
#[derive(Debug, Clone, Copy)]
pub enum KeyUse {
    /// Signing a request now: only a current (not retired) key that is valid now.
    Request,
    /// Signing an event at this `origin_server_ts` (room version 5+ rules):
    /// the key must have been valid then, retired keys included.
    EventAt(u64),
    /// Signing an event in rooms v1-v4, which set no validity period: any
    /// key the server ever published.
    Ever,
}

impl RemoteKey {
    pub fn usable_for(&self, purpose: KeyUse, now: u64) -> bool {
        match purpose {
            KeyUse::Request => self.expired_ts.is_none() && self.valid_until_ts >= now,
            KeyUse::EventAt(ts) => match self.expired_ts {
                Some(expired) => ts < expired,
                None => ts <= self.valid_until_ts,
            },
            KeyUse::Ever => true,
        }
    }
}

fn object<'a>(
    value: Option<&'a CanonicalJsonValue>,
    name: &str,
) -> Result<&'a CanonicalJsonObject, String> {
    match value {
        Some(CanonicalJsonValue::Object(o)) => Ok(o),
        Some(_) => Err(format!("{name} is not an object")),
        None => Err(format!("{name} is missing")),
    }
}

fn integer(value: Option<&CanonicalJsonValue>, name: &str) -> Result<u64, String> {
    match value {
        Some(CanonicalJsonValue::Integer(i)) => {
            u64::try_from(i64::from(*i)).map_err(|_| format!("{name} is negative"))
        }
        _ => Err(format!("{name} is missing or not an integer")),
    }
}

fn key_string(value: &CanonicalJsonValue, id: &str) -> Result<String, String> {
    let key = match object(Some(value), id)?.get("key") {
        Some(CanonicalJsonValue::String(k)) => k,
        _ => return Err(format!("{id} has no key string")),
    };
    let bytes = ruma::serde::Base64::<ruma::serde::base64::Standard, Vec<u8>>::parse(key)
        .map_err(|e| format!("{id}: {e}"))?;
    if bytes.as_bytes().len() != 32 {
        return Err(format!("{id} is not a 32-byte ed25519 key"));
    }
    Ok(key.clone())
}

/// Checks a `/_matrix/key/v2/server` response claimed to come from `server`
/// and returns the ed25519 keys it lists. Every signature the server made
/// with one of its listed `verify_keys` must verify, and there must be one.
pub fn check_key_response(
    server: &ServerName,
    response: &CanonicalJsonObject,
) -> Result<Vec<(String, RemoteKey)>, String> {
    match response.get("server_name") {
        Some(CanonicalJsonValue::String(name)) if name == server.as_str() => {}
        _ => return Err(format!("server_name does not match {server}")),
    }
    let valid_until_ts = integer(response.get("valid_until_ts"), "valid_until_ts")?;
    let mut keys = Vec::new();
    for (id, value) in object(response.get("verify_keys"), "verify_keys")? {
        if id.starts_with("ed25519:") {
            let key = key_string(value, id)?;
            keys.push((
                id.clone(),
                RemoteKey {
                    key,
                    valid_until_ts,
                    expired_ts: None,
                },
            ));
        }
    }
    if let Some(old) = response.get("old_verify_keys") {
        for (id, value) in object(Some(old), "old_verify_keys")? {
            if id.starts_with("ed25519:") && !keys.iter().any(|(k, _)| k == id) {
                let key = key_string(value, id)?;
                let expired_ts = integer(object(Some(value), id)?.get("expired_ts"), "expired_ts")?;
                keys.push((
                    id.clone(),
                    RemoteKey {
                        key,
                        valid_until_ts,
                        expired_ts: Some(expired_ts),
                    },
                ));
            }
        }
    }
    let signed = SignedJson::new(response)?;
    let mut verified = 0;
    for key_id in signed.signers(server.as_str()) {
        if let Some((_, key)) = keys
            .iter()
            .find(|(id, k)| *id == key_id && k.expired_ts.is_none())
        {
            signed.verify(server.as_str(), &key_id, &key.key)?;
            verified += 1;
        }
    }
    if verified == 0 {
        return Err(format!("not signed by any of {server}'s verify_keys"));
    }
    Ok(keys)
}

fn parse_object(body: &[u8], what: &str) -> Result<CanonicalJsonObject, String> {
    serde_json::from_slice(body).map_err(|e| format!("{what} is not a JSON object: {e}"))
}

impl KeyService {
    /// The public key `server` signs with under `key_id`, if usable for
    /// `purpose`; fetches the server's keys (through the trusted notaries,
    /// if any) when the cache cannot answer.
    pub async fn remote_key(
        &self,
        server: &ServerName,
        key_id: &str,
        purpose: KeyUse,
    ) -> Result<String> {
        self.key_via(server, key_id, purpose, Route::Configured)
            .await
    }

    async fn key_via(
        &self,
        server: &ServerName,
        key_id: &str,
        purpose: KeyUse,
        route: Route,
    ) -> Result<String> {
        if server == self.server_name() {
            return self.own_key(key_id, purpose);
        }
        if let Some(key) = self.cached_key(server, key_id, purpose)? {
            return Ok(key);
        }
        let fetch = self.refresh(server, route).await;
        if let Some(key) = self.cached_key(server, key_id, purpose)? {
            return Ok(key);
        }
        let why = match fetch {
            Err(e) => format!("fetching its keys failed: {e}"),
            Ok(()) => "it does not publish that key as valid".to_owned(),
        };
        Err(Error::unauthorized(format!(
            "unknown or expired key {key_id} for {server}: {why}"
        )))
    }

    fn own_key(&self, key_id: &str, purpose: KeyUse) -> Result<String> {
        let own = self.own_keys();
        if own.current_id == key_id {
            return Ok(own.current_public.clone());
        }
        match own.old.iter().find(|(id, _, _)| id == key_id) {
            Some((_, key, expired))
                if matches!(purpose, KeyUse::Ever)
                    || matches!(purpose, KeyUse::EventAt(ts) if ts < *expired) =>
            {
                Ok(key.clone())
            }
            _ => Err(Error::unauthorized(format!(
                "{key_id} is not a current key of this server"
            ))),
        }
    }

    fn cached_key(
        &self,
        server: &ServerName,
        key_id: &str,
        purpose: KeyUse,
    ) -> Result<Option<String>> {
        Ok(self
            .store
            .server_keys
            .key(server, key_id)?
            .filter(|k| k.usable_for(purpose, now_ms()))
            .map(|k| k.key))
    }

    /// Fetches `server`'s keys unless that happened within [`MIN_REFETCH`];
    /// concurrent callers wait for one fetch instead of making their own.
    pub(super) async fn refresh(&self, server: &ServerName, route: Route) -> Result<(), String> {
        let gate = self.fetch_gate(server);
        let mut last = gate.lock().await;
        if last.is_some_and(|t| t.elapsed() < MIN_REFETCH) {
            return Ok(());
        }
        let _fetching = self
            .fetches
            .acquire()
            .await
            .map_err(|_| "key fetching has stopped".to_owned())?;
        let result = if self.trusted_key_servers.is_empty() || matches!(route, Route::Direct) {
            self.fetch_direct(server).await.map(|_| ())
        } else {
            self.fetch_via_notaries(server).await
        };
        *last = Some(Instant::now());
        if let Err(e) = &result {
            tracing::warn!(%server, error = %e, "could not fetch server keys");
        }
        result
    }

    /// GETs `/_matrix/key/v2/server` from `server`, checks and stores it.
    async fn fetch_direct(&self, server: &ServerName) -> Result<StoredKeyResponse, String> {
        let response = self
            .client
            .get_now(server, "/_matrix/key/v2/server")
            .await
            .map_err(|e| e.to_string())?;
        if !response.status.is_success() {
            return Err(format!(
                "{server} answered {} to a key request",
                response.status
            ));
        }
        let object = parse_object(&response.body, "key response")?;
        let keys = check_key_response(server, &object)?;
        self.keep(server, object, &keys)
    }

    /// Keeps a key response whose signatures checked out.
    fn keep(
        &self,
        server: &ServerName,
        response: CanonicalJsonObject,
        keys: &[(String, RemoteKey)],
    ) -> Result<StoredKeyResponse, String> {
        let stored = StoredKeyResponse {
            fetched_ts: now_ms(),
            response,
        };
        self.store
            .server_keys
            .store_response(server, &stored, keys)
            .map_err(|e| e.to_string())?;
        Ok(stored)
    }

    /// Asks each trusted notary in turn until one vouches for `server`.
    async fn fetch_via_notaries(&self, server: &ServerName) -> Result<(), String> {
        let mut errors = Vec::new();
        for notary in &self.trusted_key_servers {
            match self.fetch_from_notary(notary, server).await {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(format!("{notary}: {e}")),
            }
        }
        Err(errors.join("; "))
    }

    async fn fetch_from_notary(
        &self,
        notary: &ServerName,
        server: &ServerName,
    ) -> Result<(), String> {
        let uri = format!("/_matrix/key/v2/query/{server}");
        let response = self
            .client
            .get_now(notary, &uri)
            .await
            .map_err(|e| e.to_string())?;
        if !response.status.is_success() {
            return Err(format!("answered {}", response.status));
        }
        let body = parse_object(&response.body, "notary response")?;
        let CanonicalJsonValue::Array(list) = body
            .get("server_keys")
            .cloned()
            .unwrap_or(CanonicalJsonValue::Null)
        else {
            return Err("server_keys is not a list".into());
        };
        let mut stored_any = false;
        for entry in list {
            let CanonicalJsonValue::Object(object) = entry else {
                continue;
            };
            let keys = check_key_response(server, &object)?;
            // A notary answering for itself is just a direct fetch, already self-signed.
            if notary != server {
                self.check_notary_signature(notary, &object).await?;
            }
            self.keep(server, object, &keys)?;
            stored_any = true;
        }
        if stored_any {
            Ok(())
        } else {
            Err(format!("no keys for {server}"))
        }
    }

    /// The notary must have signed what it relays, with a key fetched from
    /// the notary itself (asking it through the notaries would go in circles).
    async fn check_notary_signature(
        &self,
        notary: &ServerName,
        object: &CanonicalJsonObject,
    ) -> Result<(), String> {
        let signed = SignedJson::new(object)?;
        let key_ids = signed.signers(notary.as_str());
        let key_id = key_ids
            .first()
            .ok_or_else(|| format!("{notary} did not sign the response"))?;
        let key = Box::pin(self.key_via(notary, key_id, KeyUse::Request, Route::Direct))
            .await
            .map_err(|e| e.to_string())?;
        signed.verify(notary.as_str(), key_id, &key)
    }
}

#[cfg(test)]
mod tests;
