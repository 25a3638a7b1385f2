//! EDUs from other servers' transactions, each handed to its type's
//! handler; what clients need later is kept: typing (in memory, expiring),
//! read receipts, presence (in memory), the to-device inbox (durable), and
//! remote users' device list and cross-signing key updates. Every handler
//! checks that the users it names belong to the sending server; room EDUs
//! also honour the room's server ACL. Unknown or malformed EDUs are
//! skipped without failing the transaction.
//! Spec: server-server-api.md "EDUs", "Typing Notifications", "Presence",
//! "Receipts", "Send-to-device messaging", "Device Management",
//! "Server Access Control Lists (ACLs)".

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use ruma::{
    events::room::member::MembershipState, OwnedRoomId, OwnedUserId, RoomId, ServerName, UserId,
};
use serde::Deserialize;
use serde_json::{Map, Value};

mod presence;
mod receipts;
mod typing;

pub use presence::is_state as is_presence_state;
use presence::Presence;

use crate::{
    delivery::outbox::Outbox,
    rooms::RoomService,
    store::{
        accounts::AccountTrees,
        e2ee::E2eeTrees,
        edus::{EduTrees, ToDevice},
    },
};

/// Presence updates read from one `m.presence` EDU; the rest are dropped.
const MAX_PRESENCE_PUSH: usize = 1_000;

/// To-device messages from other servers one device may have waiting: a
/// month offline in a busy encrypted household is a few hundred room keys.
const MAX_INBOX: usize = 1_000;

#[derive(Deserialize)]
struct Edu {
    edu_type: String,
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize)]
struct DirectToDevice {
    sender: OwnedUserId,
    #[serde(rename = "type")]
    kind: String,
    message_id: String,
    messages: HashMap<OwnedUserId, HashMap<String, Value>>,
}

#[derive(Deserialize)]
struct DeviceUpdate {
    user_id: OwnedUserId,
    #[serde(default)]
    device_id: Option<String>,
}

type Handled = Result<(), String>;

pub struct EduService {
    rooms: Arc<RoomService>,
    /// Our users' typing and receipts go out to the room's other servers.
    outbox: Outbox,
    /// Our users' devices, for to-device messages sent to all of them.
    accounts: AccountTrees,
    /// Where remote users' key changes are recorded.
    keys: E2eeTrees,
    trees: EduTrees,
    typing: Mutex<HashMap<OwnedRoomId, HashMap<OwnedUserId, Instant>>>,
    presence: Mutex<HashMap<OwnedUserId, Presence>>,
    /// Counts changes clients see (typing, receipts, to-device), so a
    /// long-polling `/sync` wakes for them.
    changes: tokio::sync::watch::Sender<u64>,
    /// The count at each room's last typing or receipt change, so `/sync`
    /// sends a room's ephemeral events only when they changed.
    room_changes: Mutex<HashMap<OwnedRoomId, u64>>,
    /// The count at each receipt's last change (room, type, user), so
    /// `/sync` sends only the receipts that changed since its token.
    receipt_changes: Mutex<HashMap<receipts::ReceiptKey, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Refuses a user who does not belong to the sending server.
fn of_origin(user: &UserId, origin: &ServerName) -> Handled {
    if user.server_name() == origin {
        Ok(())
    } else {
        Err(format!("{user} is not a user of {origin}"))
    }
}

impl EduService {
    pub fn new(
        rooms: Arc<RoomService>,
        trees: EduTrees,
        outbox: Outbox,
        accounts: AccountTrees,
        keys: E2eeTrees,
    ) -> Self {
        Self {
            rooms,
            outbox,
            accounts,
            keys,
            trees,
            typing: Mutex::default(),
            presence: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
            room_changes: Mutex::default(),
            receipt_changes: Mutex::default(),
        }
    }

    /// Counts a change to a room's typing or receipts.
    fn room_changed(&self, room: &RoomId) {
        self.room_changed_with(room, |_| {});
    }

    /// Counts a change to a room, recording it (and whatever `also`
    /// records) before a waiting `/sync` can wake: one woken in between
    /// would see the new count but not the room's change, and miss it.
    fn room_changed_with(&self, room: &RoomId, also: impl FnOnce(u64)) {
        self.changes.send_modify(|count| {
            *count += 1;
            lock(&self.room_changes).insert(room.to_owned(), *count);
            also(*count);
        });
    }

    /// The change count at the room's last typing or receipt change (0:
    /// none since this process started).
    pub fn last_change_in(&self, room: &RoomId) -> u64 {
        lock(&self.room_changes).get(room).copied().unwrap_or(0)
    }

    /// Counts one change; returns the new count.
    fn changed(&self) -> u64 {
        self.changes.send_modify(|n| *n += 1);
        *self.changes.borrow()
    }

    /// How many changes clients could see so far (in this process).
    pub fn version(&self) -> u64 {
        *self.changes.borrow()
    }

    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Takes in a transaction's EDUs; durable once the store is flushed.
    pub fn receive(&self, origin: &ServerName, edus: Vec<Value>) {
        for edu in edus {
            let Ok(Edu { edu_type, content }) = serde_json::from_value::<Edu>(edu) else {
                tracing::debug!(%origin, "malformed EDU skipped");
                continue;
            };
            let handled = match edu_type.as_str() {
                "m.typing" => self.typing(origin, content),
                "m.receipt" => self.receipts(origin, content),
                "m.presence" => self.presence(origin, content),
                "m.direct_to_device" => self.to_device(origin, content),
                "m.device_list_update" => self.device_update(origin, content, false),
                "m.signing_key_update" => self.device_update(origin, content, true),
                _ => Ok(()),
            };
            if let Err(reason) = handled {
                tracing::debug!(%origin, %edu_type, %reason, "EDU ignored");
            }
        }
    }

    /// The room must be one we are in, the server allowed by its ACL and
    /// the user joined to it.
    fn check_member(&self, room: &RoomId, user: &UserId, origin: &ServerName) -> Handled {
        of_origin(user, origin)?;
        self.rooms
            .check_acl(room, origin)
            .map_err(|e| e.to_string())?;
        match self
            .rooms
            .membership_of(room, user)
            .map_err(|e| e.to_string())?
        {
            Some(MembershipState::Join) => Ok(()),
            _ => Err(format!("{user} is not in {room}")),
        }
    }

    /// Presence of the origin's users, kept only for those who share a
    /// room with one of ours (no one else's is ever shown, and a stranger
    /// could otherwise fill memory with made-up users); at most
    /// [`MAX_PRESENCE_PUSH`] entries an EDU.
    fn presence(&self, origin: &ServerName, content: Value) -> Handled {
        let push = content
            .get("push")
            .and_then(Value::as_array)
            .ok_or("no push list")?;
        let shared = self.rooms_shared_with(origin).map_err(|e| e.to_string())?;
        for update in push.iter().take(MAX_PRESENCE_PUSH) {
            let Some(user) = update
                .get("user_id")
                .and_then(Value::as_str)
                .and_then(|u| OwnedUserId::try_from(u).ok())
            else {
                continue;
            };
            if of_origin(&user, origin).is_err() || !self.in_any(&shared, &user)? {
                continue;
            }
            if let Some(presence) = Presence::from_edu(update, self.version() + 1) {
                let content = presence.content();
                lock(&self.presence).insert(user.clone(), presence);
                self.changed();
                self.outbox
                    .queue_presence(&self.rooms, &user, content, presence::PRESENCE_TTL)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Rooms where both `server` and this server have joined users.
    fn rooms_shared_with(&self, server: &ServerName) -> crate::error::Result<Vec<OwnedRoomId>> {
        let own = self.rooms.server_name();
        let mut shared = Vec::new();
        for room in self.rooms.room_ids()? {
            let servers = self.rooms.joined_servers(&room)?;
            if servers.contains(server) && servers.contains(own) {
                shared.push(room);
            }
        }
        Ok(shared)
    }

    /// Whether `user` is joined to one of `rooms`.
    fn in_any(&self, rooms: &[OwnedRoomId], user: &UserId) -> Result<bool, String> {
        for room in rooms {
            let membership = self
                .rooms
                .membership_of(room, user)
                .map_err(|e| e.to_string())?;
            if membership == Some(MembershipState::Join) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Durable and taken once per message ID; only our users' messages are kept.
    fn to_device(&self, origin: &ServerName, content: Value) -> Handled {
        let message: DirectToDevice = serde_json::from_value(content).map_err(|e| e.to_string())?;
        of_origin(&message.sender, origin)?;
        let own = self.rooms.server_name();
        let mut deliveries = Vec::new();
        for (user, devices) in &message.messages {
            if user.server_name() != own {
                continue;
            }
            for (device, content) in devices {
                let item = ToDevice {
                    sender: message.sender.to_string(),
                    kind: message.kind.clone(),
                    content: content.clone(),
                };
                for device in self.devices_for(user, device).map_err(|e| e.to_string())? {
                    deliveries.push((user.as_ref(), device, item.clone()));
                }
            }
        }
        self.deliver(origin, &message.message_id, deliveries)
            .map_err(|e| e.to_string())
    }

    /// Forgets what waits for a removed device.
    pub fn drop_inbox(&self, user: &UserId, device: &str) -> crate::error::Result<()> {
        self.trees.drop_inbox(user, device)?;
        Ok(self.trees.flush()?)
    }

    /// The devices a to-device message addressed to `device` goes to:
    /// `*` means every device the user has now.
    fn devices_for(&self, user: &UserId, device: &str) -> crate::error::Result<Vec<String>> {
        if device == "*" {
            return Ok(self
                .accounts
                .devices_of(user)?
                .into_iter()
                .map(|(d, _)| d)
                .collect());
        }
        // A message for a device that does not exist would wait forever
        // for a sync that never comes: dropped, as Synapse does.
        let exists = self.accounts.device(user, device.into())?.is_some();
        Ok(exists.then(|| device.to_owned()).into_iter().collect())
    }

    /// Durably stores to-device messages for our users' devices, once
    /// per (origin, message ID), and wakes their syncs; from another
    /// server, only for devices with fewer than [`MAX_INBOX`] waiting.
    /// Those for a bridge's devices are queued for it (MSC4203).
    fn deliver(
        &self,
        origin: &ServerName,
        message_id: &str,
        deliveries: Vec<(&UserId, String, ToDevice)>,
    ) -> crate::error::Result<()> {
        let remote = origin != self.rooms.server_name();
        if self.trees.to_device_taken(origin, message_id)? {
            return Ok(());
        }
        let mut kept = Vec::with_capacity(deliveries.len());
        for (user, device, message) in &deliveries {
            // A bridge's device gets it in the bridge's transactions.
            let for_sync = self
                .outbox
                .queue_to_device(&self.rooms, (user, device), message)?;
            if !for_sync {
                continue;
            }
            // Another server cannot fill a device's inbox without end.
            if remote && self.trees.inbox_len(user, device, MAX_INBOX)? >= MAX_INBOX {
                tracing::debug!(%origin, %user, %device, "to-device inbox full; message dropped");
                continue;
            }
            kept.push((*user, device.as_str(), message.clone()));
        }
        let deliveries = kept;
        self.trees.push_to_device(origin, message_id, &deliveries)?;
        self.trees.flush()?;
        self.changed();
        Ok(())
    }

    /// A to-device message from one of our users: ours are delivered here,
    /// other servers' users get one `m.direct_to_device` EDU per server.
    pub fn send_to_device(
        &self,
        sender: &UserId,
        kind: &str,
        message_id: &str,
        messages: HashMap<OwnedUserId, HashMap<String, Value>>,
    ) -> crate::error::Result<()> {
        let own = self.rooms.server_name().to_owned();
        let mut local = Vec::new();
        let mut remote: HashMap<ruma::OwnedServerName, Map<String, Value>> = HashMap::new();
        for (user, devices) in &messages {
            if user.server_name() != own {
                let by_device: Map<String, Value> = devices.clone().into_iter().collect();
                remote
                    .entry(user.server_name().to_owned())
                    .or_default()
                    .insert(user.to_string(), Value::Object(by_device));
                continue;
            }
            for (device, content) in devices {
                let item = ToDevice {
                    sender: sender.to_string(),
                    kind: kind.to_owned(),
                    content: content.clone(),
                };
                for device in self.devices_for(user, device)? {
                    local.push((user.as_ref(), device, item.clone()));
                }
            }
        }
        if !local.is_empty() {
            self.deliver(&own, message_id, local)?;
        }
        for (server, messages) in remote {
            self.outbox.queue_edu(
                [server],
                "m.direct_to_device",
                serde_json::json!({"sender": sender, "type": kind, "message_id": message_id, "messages": messages}),
                None,
            )?;
        }
        Ok(())
    }

    /// The latest update per remote device (or the user's signing keys),
    /// for users who share a room with ours (nobody here would ask for
    /// anyone else's keys: updates about them are dropped, not kept).
    fn device_update(&self, origin: &ServerName, content: Value, signing_keys: bool) -> Handled {
        let update: DeviceUpdate =
            serde_json::from_value(content.clone()).map_err(|e| e.to_string())?;
        of_origin(&update.user_id, origin)?;
        if !self
            .rooms
            .shares_room_with_us(&update.user_id)
            .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        let kind = match (signing_keys, update.device_id) {
            (true, _) => "signing_keys".to_owned(),
            (false, Some(device)) => device,
            (false, None) => return Err("device_id is missing".into()),
        };
        self.trees
            .put_device_update(&update.user_id, &kind, &content)
            .map_err(|e| e.to_string())?;
        // Our clients sharing a room with the user re-query their keys.
        self.rooms
            .publish_with(|position| Ok(self.keys.mark_changed(&update.user_id, position)?))
            .map_err(|e| e.to_string())?;
        self.outbox
            .queue_device_list(&self.rooms, &update.user_id)
            .map_err(|e| e.to_string())?;
        self.changed();
        Ok(())
    }

    /// What a client of ours sees of a room's ephemeral data.
    pub fn room_view(&self, room: &RoomId) -> crate::error::Result<Value> {
        let receipts: Vec<Value> = self
            .trees
            .receipts(room)?
            .into_iter()
            .map(|(kind, user, receipt)| serde_json::json!([kind, user, receipt]))
            .collect();
        Ok(serde_json::json!({ "typing": self.typing_in(room), "receipts": receipts }))
    }

    /// What is known or waiting for a user: presence, to-device messages
    /// (ours) and device updates (remote users).
    pub fn user_view(&self, user: &UserId) -> crate::error::Result<Value> {
        let to_device: Vec<Value> = self
            .trees
            .to_device_of(user)?
            .into_iter()
            .map(|(device, message)| serde_json::json!({"device_id": device, "message": message}))
            .collect();
        let updates: Map<String, Value> = self.trees.device_updates(user)?.into_iter().collect();
        Ok(serde_json::json!({
            "presence": lock(&self.presence).get(user).map(Presence::content),
            "to_device": to_device,
            "device_updates": updates,
        }))
    }
}
