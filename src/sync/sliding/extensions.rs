//! Sliding sync extensions: to-device messages (those after the `since`
//! the client acknowledges are sent; those up to it are dropped),
//! end-to-end encryption (device lists since the connection's previous
//! answer, key counts), account data (global, and of the rooms in scope),
//! read receipts and typing of the rooms in scope. An extension's scope is
//! the rooms of the lists it names (`*`: every list) and the rooms it
//! names (`*`: every subscription); without either, every room of the
//! answer's lists and subscriptions.
//! Spec: MSC3885 (to-device), MSC3884 (e2ee), MSC3959 (account data),
//! MSC3960 (receipts), MSC3961 (typing).

use std::collections::HashSet;

use ruma::UInt;
use ruma::{
    api::client::sync::sync_events::{
        v5::{
            request::ExtensionRoomConfig,
            response::{self, Extensions},
            Request,
        },
        DeviceLists,
    },
    OneTimeKeyAlgorithm, OwnedRoomId,
};
use serde_json::json;

use super::{
    lists::{Candidate, Selection},
    room::{raw, Answer},
};
use crate::{
    error::{Error, Result},
    store::accounts::AccountData,
    sync::{Filter, Pass, SyncService},
};

/// Most to-device messages one answer carries.
const MAX_TO_DEVICE: usize = 100;

/// The candidates (by index) an extension covers. `lists` and `rooms`
/// each default to `*` when absent, as Synapse reads them: matrix-rust-sdk
/// asks receipts for `rooms: ["*"]` alone and means every list too.
fn scope(
    (candidates, selection): (&[Candidate], &Selection<'_>),
    lists: Option<&Vec<String>>,
    rooms: Option<&Vec<ExtensionRoomConfig>>,
) -> Vec<bool> {
    let every_list = lists.is_none_or(|names| names.iter().any(|n| n == "*"));
    let every_subscription = rooms.is_none_or(|rooms| {
        rooms
            .iter()
            .any(|r| matches!(r, ExtensionRoomConfig::AllSubscribed))
    });
    let mut covered = vec![false; selection.rooms.len()];
    for (list, in_list) in &selection.in_lists {
        if every_list || lists.is_some_and(|names| names.contains(list)) {
            for &i in in_list {
                covered[i] = true;
            }
        }
    }
    if every_subscription {
        for &i in &selection.subscribed {
            covered[i] = true;
        }
    }
    let named: HashSet<&OwnedRoomId> = rooms
        .into_iter()
        .flatten()
        .filter_map(|r| match r {
            ExtensionRoomConfig::Room(room) => Some(room),
            _ => None,
        })
        .collect();
    if !named.is_empty() {
        for (i, candidate) in candidates.iter().enumerate() {
            if selection.rooms[i].is_some() && named.contains(&candidate.room) {
                covered[i] = true;
            }
        }
    }
    covered
}

impl SyncService {
    /// The extensions the request enabled; whether any carries news.
    pub(super) fn extensions(
        &self,
        request: &Request,
        answer: &Answer<'_>,
        (candidates, selection): (&[Candidate], &Selection<'_>),
        data: &[(String, String, AccountData)],
    ) -> Result<(Extensions, bool)> {
        let asked = &request.extensions;
        let mut found = Extensions::default();
        let mut news = false;
        if asked.to_device.enabled == Some(true) {
            let since = match asked.to_device.since.as_deref() {
                Some(since) => since
                    .parse::<u64>()
                    .map_err(|_| Error::invalid_param("to_device.since is not ours"))?,
                None => 0,
            };
            let limit = asked
                .to_device
                .limit
                .map_or(MAX_TO_DEVICE, |l| {
                    usize::try_from(u64::from(l)).unwrap_or(MAX_TO_DEVICE)
                })
                .min(MAX_TO_DEVICE);
            let messages = self
                .inbox
                .take_to_device(answer.user, answer.device, since, limit)?;
            let next = messages.last().map_or(since, |(seq, _)| *seq);
            news |= !messages.is_empty();
            let events = messages
                .into_iter()
                .map(|(_, m)| {
                    raw(&json!({"sender": m.sender, "type": m.kind, "content": m.content}))
                })
                .collect::<Result<_>>()?;
            let mut to_device = response::ToDevice::default();
            to_device.next_batch = next.to_string();
            to_device.events = events;
            found.to_device = Some(to_device);
        }
        if asked.e2ee.enabled == Some(true) {
            let (e2ee, changed) = self.e2ee_extension(answer)?;
            news |= changed;
            found.e2ee = e2ee;
        }
        if asked.account_data.enabled == Some(true) {
            let covered = scope(
                (candidates, selection),
                asked.account_data.lists.as_ref(),
                asked.account_data.rooms.as_ref(),
            );
            let covers = |room: &OwnedRoomId| {
                let i = candidates.iter().position(|c| &c.room == room);
                i.is_some_and(|i| covered[i])
            };
            let since = answer.base.map_or(0, |t| t.position);
            for (room, kind, data) in data {
                if data.position <= since || data.position > answer.now.position {
                    continue;
                }
                let event = json!({"type": kind, "content": data.content});
                if room.is_empty() {
                    found.account_data.global.push(raw(&event)?);
                } else if let Ok(room) = OwnedRoomId::try_from(room.as_str()) {
                    if !covers(&room) {
                        continue;
                    }
                    let events = found.account_data.rooms.entry(room).or_default();
                    events.push(raw(&event)?);
                }
                news = true;
            }
        }
        let receipts = asked.receipts.enabled == Some(true);
        let typing = asked.typing.enabled == Some(true);
        if (receipts || typing) && !answer.ephemeral_quiet() {
            let covered = |lists, rooms| scope((candidates, selection), lists, rooms);
            let receipt_rooms =
                covered(asked.receipts.lists.as_ref(), asked.receipts.rooms.as_ref());
            let typing_rooms = covered(asked.typing.lists.as_ref(), asked.typing.rooms.as_ref());
            let filter = Filter::default();
            let pass = Pass {
                user: answer.user,
                device: answer.device,
                since: answer.base,
                now: answer.now,
                full_state: false,
                filter: &filter,
                room_data: Default::default(),
            };
            for (i, candidate) in candidates.iter().enumerate() {
                let room = &candidate.room;
                let (for_receipts, for_typing) = (receipt_rooms[i], typing_rooms[i]);
                if !(for_receipts || for_typing)
                    || !pass.room_ephemeral_changed(self.edus.last_change_in(room))
                {
                    continue;
                }
                for event in self.ephemeral(&pass, room)? {
                    let receipt = event["type"] == "m.receipt";
                    if receipts && receipt && for_receipts {
                        found.receipts.rooms.insert(room.clone(), raw(&event)?);
                        news = true;
                    } else if typing && !receipt && for_typing {
                        found.typing.rooms.insert(room.clone(), raw(&event)?);
                        news = true;
                    }
                }
            }
        }
        Ok((found, news))
    }

    /// Device lists since the connection's previous answer (none on its
    /// first: the client queries what it needs), and the device's key counts.
    fn e2ee_extension(&self, answer: &Answer<'_>) -> Result<(response::E2EE, bool)> {
        let mut e2ee = response::E2EE::default();
        if let Some(base) = answer.base {
            let (changed, left) =
                self.e2ee
                    .changes(answer.user, base.position, answer.now.position)?;
            let mut lists = DeviceLists::new();
            lists.changed = changed;
            lists.left = left;
            e2ee.device_lists = lists;
        }
        let (counts, fallback) = self.e2ee.counts(answer.user, answer.device)?;
        for (algorithm, count) in counts {
            let count = UInt::try_from(count.as_u64().unwrap_or(0)).unwrap_or_default();
            e2ee.device_one_time_keys_count
                .insert(OneTimeKeyAlgorithm::from(algorithm.as_str()), count);
        }
        // Always given: a client then knows the server keeps fallback keys.
        e2ee.device_unused_fallback_key_types = Some(
            fallback
                .iter()
                .map(|a| OneTimeKeyAlgorithm::from(a.as_str()))
                .collect(),
        );
        let news = !e2ee.device_lists.is_empty();
        Ok((e2ee, news))
    }
}

#[cfg(test)]
#[path = "extensions_tests.rs"]
mod tests;
