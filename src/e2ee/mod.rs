//! End-to-end encryption support: device and one-time keys of our users,
//! cross-signing keys, key queries and claims answered here or forwarded
//! to the user's server, and device list changes announced to the servers
//! sharing a room with the user. The keys themselves are opaque to us:
//! clients sign and verify them.
//! Spec: client-server-api "End-to-End Encryption" (keys/upload, query,
//! claim, changes, device_signing); server-server-api.md "Device
//! Management", "End-to-End Encryption". Key backups: `backup.rs`.

pub mod backup;
mod remote;
mod shapes;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use ruma::{OwnedServerName, OwnedUserId, ServerName, UserId};
use serde_json::{json, Map, Value};
use shapes::shaped;

use crate::{
    delivery::outbox::Outbox,
    error::{Error, Result},
    peers::Peers,
    rooms::RoomService,
    store::{accounts::AccountTrees, e2ee::E2eeTrees},
};

/// A server that could not be asked, in an answer's `failures`.
fn failed(failures: &mut Map<String, Value>, server: &ServerName, error: Error) {
    failures.insert(
        server.to_string(),
        json!({"errcode": error.errcode, "error": error.message}),
    );
}

/// Copies `remote`'s entries under each of `fields` (`{user: …}`) into
/// `answer`, only those of `server`'s users: a server does not speak for
/// anyone else's (ours included).
fn merge_answer(answer: &mut Value, remote: &Value, server: &ServerName, fields: &[&str]) {
    for field in fields {
        let (Some(into), Some(from)) = (answer[*field].as_object_mut(), remote[*field].as_object())
        else {
            continue;
        };
        let its_own = from.iter().filter(|(user, _)| {
            <&UserId>::try_from(user.as_str()).is_ok_and(|user| user.server_name() == server)
        });
        into.extend(its_own.map(|(user, value)| (user.clone(), value.clone())));
    }
}

/// What is asked of another server's keys.
#[derive(Clone, Copy)]
enum Ask {
    Query,
    Claim,
}

/// A remote server gets this long to answer a key query or claim.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);
/// The cross-signing key kinds, as stored and as named in queries.
const CROSS_SIGNING: [(&str, &str); 3] = [
    ("master", "master_keys"),
    ("self_signing", "self_signing_keys"),
    ("user_signing", "user_signing_keys"),
];

pub struct E2eeService {
    trees: E2eeTrees,
    accounts: AccountTrees,
    rooms: Arc<RoomService>,
    peers: Arc<Peers>,
    outbox: Outbox,
}

/// Which of our user's keys a signature upload signed.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Signed {
    Device(String),
    CrossSigning,
}

/// `{user: {device: value}}`, as queries and claims are shaped.
pub type PerDevice = Map<String, Value>;

fn object(value: &Value, what: &str) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(Error::bad_json(format!("{what} must be an object"))),
    }
}

impl E2eeService {
    pub fn new(
        trees: E2eeTrees,
        accounts: AccountTrees,
        rooms: Arc<RoomService>,
        peers: Arc<Peers>,
        outbox: Outbox,
    ) -> Self {
        Self {
            trees,
            accounts,
            rooms,
            peers,
            outbox,
        }
    }

    fn own(&self) -> &ServerName {
        self.rooms.server_name()
    }

    /// `POST /keys/upload`: a device's keys, one-time and fallback keys,
    /// each checked for its shape before any is kept. Device keys that
    /// differ from those held are announced.
    pub fn upload(&self, user: &UserId, device: &str, body: &Value) -> Result<Value> {
        let device_keys = body.get("device_keys").filter(|k| !k.is_null());
        if let Some(keys) = device_keys {
            let parsed: shapes::DeviceKeys = shaped(keys, "device_keys")?;
            if parsed.user_id != user || parsed.device_id != device {
                return Err(Error::invalid_param(
                    "device_keys must name this user and device",
                ));
            }
        }
        let one_time = object(&body["one_time_keys"], "one_time_keys")?;
        let fallback = object(&body["fallback_keys"], "fallback_keys")?;
        for (id, key) in one_time.iter().chain(&fallback) {
            shapes::key_id(id)?;
            shaped::<shapes::OneTimeKey>(key, "a one-time key")?;
        }
        if let Some(keys) = device_keys {
            if self.trees.device_keys(user, device)?.as_ref() != Some(keys) {
                self.trees.put_device_keys(user, device, keys)?;
                self.announce(user, Some(device))?;
            }
        }
        for (id, key) in &one_time {
            self.trees.put_one_time_key(user, device, id, key)?;
        }
        for (id, key) in fallback {
            let algorithm = id.split_once(':').map_or("", |(a, _)| a).to_owned();
            self.trees
                .put_fallback_key(user, device, &algorithm, &json!({ id: key }))?;
        }
        self.trees.flush()?;
        Ok(json!({ "one_time_key_counts": self.trees.one_time_key_counts(user, device)? }))
    }

    /// `POST /keys/device_signing/upload`: the user's cross-signing keys,
    /// each of the shape and usage its field says.
    pub fn upload_cross_signing(&self, user: &UserId, body: &Value) -> Result<()> {
        let mut given = Vec::new();
        for (usage, field) in [
            ("master", "master_key"),
            ("self_signing", "self_signing_key"),
            ("user_signing", "user_signing_key"),
        ] {
            if let Some(key) = body.get(field).filter(|k| !k.is_null()) {
                let parsed: shapes::CrossSigningKey = shaped(key, field)?;
                if parsed.user_id != user || !parsed.usage.iter().any(|u| u == usage) {
                    return Err(Error::invalid_param(format!(
                        "{field} must name this user and its usage"
                    )));
                }
                if parsed.keys.len() != 1 {
                    return Err(Error::invalid_param(format!("{field} must hold one key")));
                }
                given.push((usage, key));
            }
        }
        for (usage, key) in given {
            self.trees.put_cross_signing(user, usage, key)?;
        }
        self.trees.flush()?;
        self.announce(user, None)
    }

    /// `POST /keys/signatures/upload`: signatures merged into the
    /// uploader's own keys (devices and cross-signing keys), or kept for
    /// the signer (anyone else's keys).
    pub fn upload_signatures(&self, uploader: &UserId, body: &Value) -> Result<Value> {
        let mut failures = Map::new();
        let mut changed = BTreeSet::new();
        for (user, keys) in object(body, "signatures")? {
            let Ok(user) = OwnedUserId::try_from(user.as_str()) else {
                continue;
            };
            for (key_id, signed) in object(&keys, "keys")? {
                // Signatures of someone else's key (their user-signing
                // key's, of a master key) are the signer's to see alone.
                if user != uploader {
                    match self.keep_signatures(uploader, &user, &key_id, &signed) {
                        Err(e) if e.status == http::StatusCode::BAD_REQUEST => {
                            failures.insert(
                                user.to_string(),
                                json!({ key_id: {"errcode": e.errcode, "error": e.message} }),
                            );
                        }
                        other => other?,
                    }
                    continue;
                }
                if let Some(what) = self.merge_signatures(&user, &key_id, &signed)? {
                    changed.insert((user.clone(), what));
                }
            }
        }
        self.trees.flush()?;
        // A signed device is a device list update (its keys changed); a
        // signed cross-signing key is a signing key update.
        for (user, signed) in changed {
            match signed {
                Signed::Device(device) => self.announce(&user, Some(&device))?,
                Signed::CrossSigning => self.announce(&user, None)?,
            }
        }
        Ok(json!({ "failures": failures }))
    }

    /// The uploader's signatures of another user's key (their
    /// user-signing key's, of the user's master key, once verified). The
    /// spec shows them only to the signer: they stay here, and the
    /// signer's devices see the user as changed and ask again.
    fn keep_signatures(
        &self,
        uploader: &UserId,
        user: &UserId,
        key_id: &str,
        signed: &Value,
    ) -> Result<()> {
        let own = object(&signed["signatures"][uploader.as_str()], "signatures")?;
        if own.is_empty() {
            return Err(Error::invalid_param(format!(
                "no signature of {uploader} on {user}'s key {key_id}"
            )));
        }
        self.trees
            .put_key_signatures(uploader, user, key_id, &own)?;
        self.rooms
            .publish_with(|position| Ok(self.trees.mark_changed(user, position)?))?;
        self.outbox.queue_device_list(&self.rooms, user)
    }

    /// Adds to `answer`'s master keys of other users the signatures
    /// `requester` made of them.
    fn add_own_signatures(&self, requester: &UserId, answer: &mut Value) -> Result<()> {
        let Some(masters) = answer["master_keys"].as_object_mut() else {
            return Ok(());
        };
        for (user, key) in masters.iter_mut() {
            let Ok(user) = OwnedUserId::try_from(user.as_str()) else {
                continue;
            };
            if user == requester {
                continue;
            }
            for (key_id, signatures) in self.trees.key_signatures(requester, &user)? {
                let suffix = format!(":{key_id}");
                let names_it = key["keys"]
                    .as_object()
                    .is_some_and(|k| k.keys().any(|id| id.ends_with(&suffix)));
                if names_it {
                    let mut merged = key["signatures"][requester.as_str()]
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                    merged.extend(signatures);
                    key["signatures"][requester.as_str()] = Value::Object(merged);
                }
            }
        }
        Ok(())
    }

    /// Adds `signed`'s signatures to our user's key `key_id`, if known.
    fn merge_signatures(
        &self,
        user: &UserId,
        key_id: &str,
        signed: &Value,
    ) -> Result<Option<Signed>> {
        let stored = match self.trees.device_keys(user, key_id)? {
            Some(keys) => Some(("device", keys)),
            None => self.find_cross_signing(user, key_id)?,
        };
        let Some((usage, mut keys)) = stored else {
            return Ok(None);
        };
        for (signer, sigs) in object(&signed["signatures"], "signatures")? {
            let entry = keys["signatures"][&signer]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let mut merged = entry;
            merged.extend(object(&sigs, "signatures")?);
            keys["signatures"][&signer] = Value::Object(merged);
        }
        if usage == "device" {
            self.trees.put_device_keys(user, key_id, &keys)?;
            Ok(Some(Signed::Device(key_id.to_owned())))
        } else {
            self.trees.put_cross_signing(user, usage, &keys)?;
            Ok(Some(Signed::CrossSigning))
        }
    }

    /// The cross-signing key of `user` whose public key is `key_id`.
    fn find_cross_signing(
        &self,
        user: &UserId,
        key_id: &str,
    ) -> Result<Option<(&'static str, Value)>> {
        for (usage, _) in CROSS_SIGNING {
            if let Some(keys) = self.trees.cross_signing(user, usage)? {
                let matches = keys["keys"]
                    .as_object()
                    .is_some_and(|k| k.keys().any(|id| id.ends_with(&format!(":{key_id}"))));
                if matches {
                    return Ok(Some((usage, keys)));
                }
            }
        }
        Ok(None)
    }

    /// Records a key change of our user and tells the servers that share a
    /// room with them (`m.device_list_update`, or `m.signing_key_update`
    /// when no device is named).
    fn announce(&self, user: &UserId, device: Option<&str>) -> Result<()> {
        // The change's position is its stream ID, as `GET /user/devices`
        // reports it: a server that holds the previous one applies the
        // update as it comes instead of asking for the whole list again.
        let (stream_id, previous) = self
            .rooms
            .publish_with(|position| Ok((position, self.trees.mark_changed(user, position)?)))?;
        let prev_id: Vec<u64> = (previous != 0).then_some(previous).into_iter().collect();
        self.outbox.queue_device_list(&self.rooms, user)?;
        let servers = self.rooms.servers_sharing_rooms_with(user)?;
        match device {
            Some(device) => {
                let keys = self.trees.device_keys(user, device)?;
                let display_name = self
                    .accounts
                    .device(user, device.into())?
                    .and_then(|d| d.display_name);
                self.outbox.queue_edu(
                    servers,
                    "m.device_list_update",
                    json!({
                        "user_id": user, "device_id": device, "device_display_name": display_name,
                        "stream_id": stream_id, "prev_id": prev_id, "deleted": keys.is_none(),
                        "keys": keys,
                    }),
                    None,
                )
            }
            None => {
                let mut content = json!({ "user_id": user });
                for (usage, field) in [
                    ("master", "master_key"),
                    ("self_signing", "self_signing_key"),
                ] {
                    if let Some(key) = self.trees.cross_signing(user, usage)? {
                        content[field] = key;
                    }
                }
                self.outbox
                    .queue_edu(servers, "m.signing_key_update", content, None)
            }
        }
    }

    /// Forgets a deleted device's keys and announces it.
    pub fn device_removed(&self, user: &UserId, device: &str) -> Result<()> {
        self.trees.remove_device(user, device)?;
        self.announce(user, Some(device))
    }

    /// Users sharing a room with `user` whose keys changed in `(from, to]`.
    fn changed_between(&self, user: &UserId, from: u64, to: u64) -> Result<Vec<OwnedUserId>> {
        // Since this process started: who changed, then whether they share.
        if let Some(recent) = self.trees.changed_between(from, to) {
            let mut changed = Vec::new();
            for other in recent {
                if other == user || self.rooms.shares_a_room(user, &other)? {
                    changed.push(other);
                }
            }
            return Ok(changed);
        }
        let mut changed = Vec::new();
        for other in self.rooms.users_sharing_rooms_with(user)? {
            let at = self.trees.changed_at(&other)?;
            if at > from && at <= to {
                changed.push(other);
            }
        }
        Ok(changed)
    }

    /// `GET /keys/changes`: users whose keys changed, or who started
    /// sharing a room with `user`, in `(from, to]`; and those who share
    /// none any more (`left`), as /sync's `device_lists` has them.
    pub fn changes(
        &self,
        user: &UserId,
        from: u64,
        to: u64,
    ) -> Result<(Vec<OwnedUserId>, Vec<OwnedUserId>)> {
        let (started, stopped) = self.rooms.sharing_changes(user, from, to)?;
        self.device_list(user, from, to, started, stopped)
    }

    /// `device_lists` as `/sync` and `/keys/changes` give them: users
    /// whose keys changed in `(from, to]` or who `started` sharing a room
    /// with `user` (`changed`), and those of `stopped` who share none now
    /// (`left`).
    pub fn device_list(
        &self,
        user: &UserId,
        from: u64,
        to: u64,
        started: BTreeSet<OwnedUserId>,
        stopped: BTreeSet<OwnedUserId>,
    ) -> Result<(Vec<OwnedUserId>, Vec<OwnedUserId>)> {
        let mut changed: BTreeSet<OwnedUserId> =
            self.changed_between(user, from, to)?.into_iter().collect();
        changed.extend(started);
        let mut left = Vec::new();
        if !stopped.is_empty() {
            let still = self.rooms.users_sharing_rooms_with(user)?;
            left = stopped.into_iter().filter(|u| !still.contains(u)).collect();
        }
        changed.remove(user);
        for gone in &left {
            changed.remove(gone);
        }
        Ok((changed.into_iter().collect(), left))
    }

    /// Unused one-time keys per algorithm, and fallback key algorithms.
    pub fn counts(&self, user: &UserId, device: &str) -> Result<(Map<String, Value>, Vec<String>)> {
        Ok((
            self.trees.one_time_key_counts(user, device)?,
            self.trees.fallback_algorithms(user, device)?,
        ))
    }

    /// Our users' keys: `query` maps users to device IDs (empty: all).
    pub fn query_local(
        &self,
        query: &Map<String, Value>,
        include_user_signing: Option<&UserId>,
    ) -> Result<Value> {
        let mut device_keys = Map::new();
        let mut cross = [Map::new(), Map::new(), Map::new()];
        for (user, devices) in query {
            let Ok(user) = OwnedUserId::try_from(user.as_str()) else {
                continue;
            };
            if user.server_name() != self.own() {
                continue;
            }
            let wanted: Vec<&str> = devices
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut found = Map::new();
            for (device, mut keys) in self.trees.all_device_keys(&user)? {
                if wanted.is_empty() || wanted.contains(&device.as_str()) {
                    if let Some(name) = self
                        .accounts
                        .device(&user, device.as_str().into())?
                        .and_then(|d| d.display_name)
                    {
                        keys["unsigned"] = json!({ "device_display_name": name });
                    }
                    found.insert(device, keys);
                }
            }
            device_keys.insert(user.to_string(), Value::Object(found));
            for (i, (usage, _)) in CROSS_SIGNING.iter().enumerate() {
                // A user-signing key is private to its owner.
                if *usage == "user_signing" && include_user_signing != Some(&user) {
                    continue;
                }
                if let Some(key) = self.trees.cross_signing(&user, usage)? {
                    cross[i].insert(user.to_string(), key);
                }
            }
        }
        let mut answer = json!({ "device_keys": device_keys });
        for (i, (_, field)) in CROSS_SIGNING.iter().enumerate() {
            answer[*field] = Value::Object(std::mem::take(&mut cross[i]));
        }
        Ok(answer)
    }

    /// `POST /keys/query` for a client: ours here, others kept or from
    /// their servers.
    pub async fn query(&self, requester: &UserId, query: &Map<String, Value>) -> Result<Value> {
        let mut answer = self.query_local(query, Some(requester))?;
        let mut failures = Map::new();
        self.query_remote(requester, query, &mut answer, &mut failures)
            .await?;
        self.add_own_signatures(requester, &mut answer)?;
        answer["failures"] = Value::Object(failures);
        Ok(answer)
    }

    /// One-time keys of our users' devices: `claim` is `{user: {device: algorithm}}`.
    pub fn claim_local(&self, claim: &Map<String, Value>) -> Result<Value> {
        let (mut keys, mut claimed) = (Map::new(), Vec::new());
        for (user, devices) in claim {
            let Ok(user) = OwnedUserId::try_from(user.as_str()) else {
                continue;
            };
            if user.server_name() != self.own() {
                continue;
            }
            let mut per_device = Map::new();
            for (device, algorithm) in object(devices, "devices")? {
                let Some(algorithm) = algorithm.as_str() else {
                    continue;
                };
                if let Some((id, key)) = self.trees.claim(&user, &device, algorithm)? {
                    claimed.push((user.clone(), device.clone()));
                    per_device.insert(device, json!({ id: key }));
                }
            }
            keys.insert(user.to_string(), Value::Object(per_device));
        }
        self.trees.flush()?;
        // A bridge holding the device learns its counts dropped.
        for (user, device) in claimed {
            self.outbox.queue_key_count(&self.rooms, &user, &device)?;
        }
        Ok(json!({ "one_time_keys": keys }))
    }

    /// `POST /keys/claim` for a client.
    pub async fn claim(&self, claim: &Map<String, Value>) -> Result<Value> {
        let mut answer = self.claim_local(claim)?;
        let mut failures = Map::new();
        let asked = self.ask_servers(claim, Ask::Claim).await;
        for (server, outcome) in asked {
            match outcome {
                Ok(remote) => merge_answer(&mut answer, &remote, &server, &["one_time_keys"]),
                Err(e) => failed(&mut failures, &server, e),
            }
        }
        answer["failures"] = Value::Object(failures);
        Ok(answer)
    }

    /// `GET /user/devices/{userId}` over federation: one of our users' devices.
    pub fn devices_of(&self, user: &UserId) -> Result<Value> {
        let mut devices = Vec::new();
        for (device, record) in self.accounts.devices_of(user)? {
            let mut entry = json!({ "device_id": device });
            if let Some(name) = record.display_name {
                entry["device_display_name"] = json!(name);
            }
            if let Some(keys) = self.trees.device_keys(user, &device)? {
                entry["keys"] = keys;
            }
            devices.push(entry);
        }
        let mut answer = json!({
            "user_id": user,
            "stream_id": self.trees.changed_at(user)?,
            "devices": devices,
        });
        for (usage, field) in [
            ("master", "master_key"),
            ("self_signing", "self_signing_key"),
        ] {
            if let Some(key) = self.trees.cross_signing(user, usage)? {
                answer[field] = key;
            }
        }
        Ok(answer)
    }

    /// The entries of `{user: …}` for other servers' users, per server.
    fn by_remote_server(
        &self,
        per_user: &Map<String, Value>,
    ) -> Vec<(OwnedServerName, Map<String, Value>)> {
        let mut servers: std::collections::BTreeMap<OwnedServerName, Map<String, Value>> =
            std::collections::BTreeMap::new();
        for (user, value) in per_user {
            if let Ok(user) = OwnedUserId::try_from(user.as_str()) {
                if user.server_name() != self.own() {
                    servers
                        .entry(user.server_name().to_owned())
                        .or_default()
                        .insert(user.to_string(), value.clone());
                }
            }
        }
        servers.into_iter().collect()
    }

    /// Asks every server named in `per_user` at once for its users' part
    /// (`{field: part}`): the answer waits for the slowest, not the sum.
    async fn ask_servers(
        &self,
        per_user: &Map<String, Value>,
        ask: Ask,
    ) -> Vec<(OwnedServerName, Result<Value>)> {
        let asks = self
            .by_remote_server(per_user)
            .into_iter()
            .map(|(server, part)| async move {
                let outcome = self.remote(&server, ask, part).await;
                (server, outcome)
            });
        futures_util::future::join_all(asks).await
    }

    async fn remote(
        &self,
        server: &ServerName,
        ask: Ask,
        part: Map<String, Value>,
    ) -> Result<Value> {
        let answer = async {
            match ask {
                Ask::Query => {
                    let body = json!({ "device_keys": part });
                    self.peers.user_keys_query(server, &body).await
                }
                Ask::Claim => {
                    let body = json!({ "one_time_keys": part });
                    self.peers.user_keys_claim(server, &body).await
                }
            }
        };
        tokio::time::timeout(REMOTE_TIMEOUT, answer)
            .await
            .map_err(|_| Error::remote(format!("{server} did not answer in time")))?
    }
}
