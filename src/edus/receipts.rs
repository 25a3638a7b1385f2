//! Read receipts: our users' (public ones sent to the room's other
//! servers) and other servers' users', kept per room, type and user. What
//! another server sends is cut to what the spec defines before it is
//! kept: `m.read` only (private receipts are never federated), a few
//! event IDs, and `ts` and `thread_id` of the data. `/sync` is given only
//! the receipts that changed since its token.
//! Spec: client-server-api "Receipts"; server-server-api.md "Receipts".

use std::collections::HashMap;

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, ServerName, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{lock, EduService, Handled};

/// (room, receipt type, user): one stored receipt.
pub(super) type ReceiptKey = (OwnedRoomId, String, OwnedUserId);

/// Event IDs one remote receipt may name (it names the latest read).
const MAX_EVENT_IDS: usize = 10;
/// Longest thread ID kept.
const MAX_THREAD_ID: usize = 255;

/// A receipt as kept and served: `{"event_ids": [...], "data": {...}}`.
#[derive(Deserialize, Serialize)]
struct Receipt {
    event_ids: Vec<OwnedEventId>,
    #[serde(default)]
    data: ReceiptData,
}

#[derive(Default, Deserialize, Serialize)]
struct ReceiptData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thread_id: Option<String>,
}

impl EduService {
    /// An `m.receipt` EDU: only the receipts listed change; a room the
    /// server may not speak for is skipped whole, and so is a receipt of
    /// another type or shape.
    pub(super) fn receipts(&self, origin: &ServerName, content: Value) -> Handled {
        let rooms: HashMap<OwnedRoomId, HashMap<String, HashMap<OwnedUserId, Value>>> =
            serde_json::from_value(content).map_err(|e| e.to_string())?;
        for (room, kinds) in rooms {
            if self.rooms.check_acl(&room, origin).is_err() {
                continue;
            }
            let Some(users) = kinds.get("m.read") else {
                continue;
            };
            for (user, receipt) in users {
                let kept = self
                    .check_member(&room, user, origin)
                    .and_then(|()| remote_receipt(receipt));
                match kept {
                    Ok(receipt) => {
                        self.trees
                            .put_receipt(&room, "m.read", user, &receipt)
                            .map_err(|e| e.to_string())?;
                        self.receipt_changed(&room, "m.read", user);
                        self.receipt_to_appservices(&room, "m.read", user, &receipt);
                    }
                    Err(reason) => tracing::debug!(%reason, "receipt ignored"),
                }
            }
        }
        Ok(())
    }

    /// One of our users' read receipt, kept as other servers' are; public
    /// ones (`m.read`) also go to the room's other servers.
    /// `thread`: `main` or a thread root, for a threaded receipt.
    pub fn set_receipt(
        &self,
        room: &RoomId,
        kind: &str,
        user: &UserId,
        event: &ruma::EventId,
        (ts, thread): (u64, Option<&str>),
    ) -> crate::error::Result<()> {
        let mut receipt = serde_json::json!({"data": {"ts": ts}, "event_ids": [event]});
        if let Some(thread) = thread {
            receipt["data"]["thread_id"] = thread.into();
        }
        self.trees.put_receipt(room, kind, user, &receipt)?;
        self.rooms.mark_read(room, user, event, thread)?;
        if kind == "m.read" {
            self.outbox.queue_edu(
                self.rooms.joined_servers(room)?,
                "m.receipt",
                serde_json::json!({ room.as_str(): { kind: { user.as_str(): receipt } } }),
                None,
            )?;
        }
        self.receipt_changed(room, kind, user);
        if kind == "m.read" {
            self.receipt_to_appservices(room, kind, user, &receipt);
        }
        Ok(())
    }

    /// A public receipt as clients get it (`{event: {type: {user: data}}}`),
    /// for the application services interested in the room.
    fn receipt_to_appservices(&self, room: &RoomId, kind: &str, user: &UserId, receipt: &Value) {
        let content: serde_json::Map<String, Value> = receipt["event_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|event| {
                let data = receipt["data"].clone();
                (
                    event.to_owned(),
                    serde_json::json!({ kind: { user.as_str(): data } }),
                )
            })
            .collect();
        let queued = self.outbox.queue_ephemeral(
            &self.rooms,
            room,
            "m.receipt",
            Value::Object(content),
            None,
        );
        if let Err(e) = queued {
            tracing::warn!(%room, error = %e.message, "receipt not queued for application services");
        }
    }

    fn receipt_changed(&self, room: &RoomId, kind: &str, user: &UserId) {
        let key = (room.to_owned(), kind.to_owned(), user.to_owned());
        self.room_changed_with(room, |count| {
            lock(&self.receipt_changes).insert(key, count);
        });
    }

    /// (type, user, receipt) of the room's receipts changed after the
    /// change count `since`; all of them when `None`.
    pub fn receipts_since(
        &self,
        room: &RoomId,
        since: Option<u64>,
    ) -> crate::error::Result<Vec<(String, String, Value)>> {
        let mut receipts = self.trees.receipts(room)?;
        if let Some(since) = since {
            let changes = lock(&self.receipt_changes);
            receipts.retain(|(kind, user, _)| {
                let Ok(user) = OwnedUserId::try_from(user.as_str()) else {
                    return false;
                };
                let key = (room.to_owned(), kind.clone(), user);
                changes.get(&key).is_some_and(|at| *at > since)
            });
        }
        Ok(receipts)
    }
}

/// A remote `m.read` receipt cut to what the spec defines.
fn remote_receipt(value: &Value) -> Result<Value, String> {
    let mut receipt = Receipt::deserialize(value).map_err(|e| format!("bad receipt: {e}"))?;
    if receipt.event_ids.is_empty() || receipt.event_ids.len() > MAX_EVENT_IDS {
        return Err(format!(
            "{} event IDs in a receipt",
            receipt.event_ids.len()
        ));
    }
    if receipt
        .data
        .thread_id
        .as_ref()
        .is_some_and(|t| t.len() > MAX_THREAD_ID)
    {
        receipt.data.thread_id = None;
    }
    serde_json::to_value(receipt).map_err(|e| e.to_string())
}
