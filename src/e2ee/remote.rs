//! Other servers' users' keys: asked of their servers, and kept while
//! nothing says they changed. Clients ask often (Element asks for every
//! member of an encrypted room when it starts), so most queries are then
//! answered here, and also while the user's server is down, as Synapse
//! does with the device lists it tracks.

use std::collections::{BTreeSet, HashMap};

use ruma::{OwnedUserId, UserId};
use serde_json::{Map, Value};

use super::{failed, merge_answer, E2eeService};
use crate::{error::Result, store::e2ee::RemoteKeys, time::now_ms};

/// Kept keys are asked for again after this long even if no update came:
/// an update sent while we shared no room with the user never reached us.
const FRESH_FOR_MS: u64 = 10 * 60 * 1000;

/// One remote user of a query: the devices asked for (none: all) and what
/// is kept of them, if still current.
struct Wanted {
    devices: Vec<String>,
    kept: Option<RemoteKeys>,
    changed_at: u64,
}

impl E2eeService {
    /// Fills `answer` (`device_keys`, `master_keys`, `self_signing_keys`)
    /// and `failures` with the keys of the remote users in `query`.
    pub(super) async fn query_remote(
        &self,
        requester: &UserId,
        query: &Map<String, Value>,
        answer: &mut Value,
        failures: &mut Map<String, Value>,
    ) -> Result<()> {
        let remote: Vec<(&String, &Value, OwnedUserId)> = query
            .iter()
            .filter_map(|(name, devices)| {
                let user = OwnedUserId::try_from(name.as_str()).ok()?;
                (user.server_name() != self.own()).then_some((name, devices, user))
            })
            .collect();
        if remote.is_empty() {
            return Ok(());
        }
        let sharing = self.rooms.users_sharing_rooms_with(requester)?;
        let mut to_ask = Map::new();
        let mut asked_for = HashMap::new();
        for (name, devices, user) in remote {
            let wanted = self.wanted(&user, devices)?;
            match &wanted.kept {
                Some(kept) if is_fresh(kept) && sharing.contains(&user) => {
                    serve(answer, &user, kept, &wanted.devices);
                }
                _ => {
                    to_ask.insert(name.clone(), devices.clone());
                    asked_for.insert(user, wanted);
                }
            }
        }
        let asked = self.ask_servers(&to_ask, super::Ask::Query).await;
        for (server, outcome) in asked {
            let users = asked_for.iter().filter(|(u, _)| u.server_name() == server);
            match outcome {
                Ok(remote) => {
                    for (user, wanted) in users {
                        self.keep(&sharing, user, wanted, &remote)?;
                    }
                    let fields = ["device_keys", "master_keys", "self_signing_keys"];
                    merge_answer(answer, &remote, &server, &fields);
                }
                Err(error) => {
                    // What is kept, however old, beats nothing while the
                    // server is down.
                    let mut all_kept = true;
                    for (user, wanted) in users {
                        match &wanted.kept {
                            Some(kept) => serve(answer, user, kept, &wanted.devices),
                            None => all_kept = false,
                        }
                    }
                    if !all_kept {
                        failed(failures, &server, error);
                    }
                }
            }
        }
        Ok(())
    }

    /// The devices asked for, and what is kept of `user` if no change
    /// came since.
    fn wanted(&self, user: &UserId, devices: &Value) -> Result<Wanted> {
        let changed_at = self.trees.changed_at(user)?;
        let kept = self
            .trees
            .remote_keys(user)?
            .filter(|kept| kept.changed_at == changed_at);
        let devices = devices
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Wanted {
            devices,
            kept,
            changed_at,
        })
    }

    /// Keeps a server's whole answer for `user` when one of our users
    /// shares a room with them: only then do their updates reach us.
    fn keep(
        &self,
        sharing: &BTreeSet<OwnedUserId>,
        user: &UserId,
        wanted: &Wanted,
        remote: &Value,
    ) -> Result<()> {
        let Some(devices) = remote["device_keys"][user.as_str()].as_object() else {
            return Ok(());
        };
        if !wanted.devices.is_empty() || !sharing.contains(user) {
            return Ok(());
        }
        let key_of =
            |field: &str| Some(remote[field][user.as_str()].clone()).filter(Value::is_object);
        Ok(self.trees.put_remote_keys(
            user,
            &RemoteKeys {
                changed_at: wanted.changed_at,
                fetched_ms: now_ms(),
                devices: devices.clone(),
                master_key: key_of("master_keys"),
                self_signing_key: key_of("self_signing_keys"),
            },
        )?)
    }
}

fn is_fresh(kept: &RemoteKeys) -> bool {
    now_ms().saturating_sub(kept.fetched_ms) < FRESH_FOR_MS
}

/// `kept`'s keys for `user` in `answer`, only `devices` if any are named.
fn serve(answer: &mut Value, user: &UserId, kept: &RemoteKeys, devices: &[String]) {
    let chosen: Map<String, Value> = kept
        .devices
        .iter()
        .filter(|(device, _)| devices.is_empty() || devices.contains(device))
        .map(|(device, keys)| (device.clone(), keys.clone()))
        .collect();
    answer["device_keys"][user.as_str()] = Value::Object(chosen);
    for (field, key) in [
        ("master_keys", &kept.master_key),
        ("self_signing_keys", &kept.self_signing_key),
    ] {
        if let Some(key) = key {
            answer[field][user.as_str()] = key.clone();
        }
    }
}
