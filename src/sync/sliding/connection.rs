//! Sliding sync connections: what each (user, device, `conn_id`) was
//! sent, so that an answer carries only what changed for it. The state
//! after the last two answers is kept: the client may retry with the
//! `pos` before the last (it never got the last answer). Any other `pos`,
//! and every `pos` after a restart (the state is in memory: a `pos` names
//! the process that gave it), is `M_UNKNOWN_POS`, and the client starts
//! over. Spec: MSC4186 "Connections".

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use http::StatusCode;
use ruma::{events::room::member::MembershipState, OwnedRoomId, OwnedUserId};

use crate::{
    error::{Error, Result},
    store::accounts::Session,
    sync::Token,
};

/// Most connections one device keeps; the least recently used goes.
const MAX_PER_DEVICE: usize = 10;
/// Longest `conn_id` taken.
const MAX_CONN_ID: usize = 64;

/// What one connection was sent, as of one answer. Its parts are shared
/// with the answer before, and copied only when an answer changes them
/// (`Arc::make_mut`): a pass over a thousand rooms copies nothing.
#[derive(Clone, Default)]
pub(in crate::sync) struct Sent {
    /// The positions the answer stood at; `None` before the first.
    pub token: Option<Token>,
    /// Each room sent, as last sent.
    pub rooms: Arc<HashMap<OwnedRoomId, RoomSent>>,
    /// Member events sent for lazy-loading, by room and user.
    pub members: Arc<HashSet<(OwnedRoomId, OwnedUserId)>>,
}

/// A room as last sent on a connection.
#[derive(Clone)]
pub(in crate::sync) struct RoomSent {
    /// The position its data was sent up to.
    pub at: u64,
    pub membership: MembershipState,
    pub is_dm: bool,
    /// The timeline limit it was sent with: a larger one later expands
    /// its timeline.
    pub timeline_limit: usize,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(in crate::sync) struct ConnKey {
    user: OwnedUserId,
    device: String,
    conn: String,
}

impl ConnKey {
    pub(in crate::sync) fn of(session: &Session, conn_id: Option<&str>) -> Result<Self> {
        let conn = conn_id.unwrap_or_default();
        if conn.len() > MAX_CONN_ID {
            return Err(Error::invalid_param(format!(
                "conn_id is longer than {MAX_CONN_ID} bytes"
            )));
        }
        Ok(Self {
            user: session.user_id.clone(),
            device: session.device_id.to_string(),
            conn: conn.to_owned(),
        })
    }
}

struct Conn {
    seq: u64,
    current: Arc<Sent>,
    previous: Option<Arc<Sent>>,
    used: Instant,
}

pub(in crate::sync) struct Connections {
    /// Names this process in every `pos` it gives.
    instance: String,
    all: Mutex<HashMap<ConnKey, Conn>>,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            instance: format!("{:08x}", rand::random::<u32>()),
            all: Mutex::default(),
        }
    }
}

fn unknown_pos() -> Error {
    Error::new(
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN_POS",
        "unknown or expired pos: start a new connection",
    )
}

impl Connections {
    /// What the connection was sent as of `pos`.
    pub(in crate::sync) fn base(&self, key: &ConnKey, pos: &str) -> Result<Arc<Sent>> {
        let (instance, seq) = pos.split_once('_').ok_or_else(unknown_pos)?;
        let seq: u64 = seq.parse().map_err(|_| unknown_pos())?;
        if instance != self.instance {
            return Err(unknown_pos());
        }
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let conn = all.get(key).ok_or_else(unknown_pos)?;
        if seq == conn.seq {
            Ok(conn.current.clone())
        } else if seq + 1 == conn.seq {
            conn.previous.clone().ok_or_else(unknown_pos)
        } else {
            Err(unknown_pos())
        }
    }

    /// Records what an answer sent; its `pos`. Without `continued` (no
    /// `pos` in the request) the connection starts over.
    pub(in crate::sync) fn commit(&self, key: &ConnKey, sent: Sent, continued: bool) -> String {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let seq = match all.get_mut(key).filter(|_| continued) {
            Some(conn) => {
                conn.seq += 1;
                conn.previous = Some(std::mem::replace(&mut conn.current, Arc::new(sent)));
                conn.used = Instant::now();
                conn.seq
            }
            None => {
                evict(&mut all, key);
                let conn = Conn {
                    seq: 1,
                    current: Arc::new(sent),
                    previous: None,
                    used: Instant::now(),
                };
                all.insert(key.clone(), conn);
                1
            }
        };
        format!("{}_{seq}", self.instance)
    }

    /// Forgets a device's connections (it was removed).
    pub(in crate::sync) fn drop_device(&self, user: &ruma::UserId, device: &str) {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|key, _| key.user != user || key.device != device);
    }
}

/// Makes room for a new connection of `key`'s device.
fn evict(all: &mut HashMap<ConnKey, Conn>, key: &ConnKey) {
    let same_device = |k: &ConnKey| k.user == key.user && k.device == key.device;
    while all.keys().filter(|k| same_device(k)).count() >= MAX_PER_DEVICE {
        let oldest = all
            .iter()
            .filter(|(k, _)| same_device(k))
            .min_by_key(|(_, c)| c.used)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(oldest) => all.remove(&oldest),
            None => break,
        };
    }
}
