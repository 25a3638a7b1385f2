//! `/sync`: what changed for a user since a token, waiting (long-poll)
//! until something does. Positions are the rooms' stream positions, which
//! also order invites from other servers and account data; ephemeral
//! changes (typing, receipts) are counted separately.
//! Spec: client-server-api "Syncing".

mod filter;
mod lazy;
mod legacy;
mod rooms;
pub mod sliding;
mod token;

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    OwnedUserId, RoomId, UserId,
};
use serde_json::{json, Map, Value};

pub use filter::{EventFilter, Filter};
pub use legacy::RoomSnapshot;
pub use sliding::SlidingResponse;
pub use token::Token;

use crate::{
    accounts::push_rules::PUSH_RULES,
    e2ee::E2eeService,
    edus::EduService,
    error::Result,
    rooms::{
        client_event::{client_event, stripped},
        RoomService,
    },
    store::{
        accounts::{AccountData, AccountTrees, Session},
        edus::EduTrees,
    },
};

/// Longest long-poll a client may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// What the client asked for.
pub struct SyncRequest {
    pub since: Option<Token>,
    pub timeout: Duration,
    pub full_state: bool,
    pub filter: Filter,
}

/// Users who started (`joined`) or stopped (`left`) sharing a room with
/// the syncing user since the token, gathered room by room.
#[derive(Default)]
struct Sharing {
    joined: BTreeSet<OwnedUserId>,
    left: BTreeSet<OwnedUserId>,
}

pub struct SyncService {
    rooms: Arc<RoomService>,
    edus: Arc<EduService>,
    e2ee: Arc<E2eeService>,
    accounts: AccountTrees,
    inbox: EduTrees,
    lazy: lazy::LazyMembers,
    /// Sliding sync connections and what each was sent.
    connections: sliding::Connections,
}

/// Most to-device messages per response.
const MAX_TO_DEVICE: usize = 100;

/// One sync pass's bounds and options.
struct Pass<'a> {
    user: &'a UserId,
    device: &'a str,
    since: Option<Token>,
    now: Token,
    full_state: bool,
    filter: &'a Filter,
    /// The user's room account data: room → (type, data).
    room_data: HashMap<String, Vec<(String, AccountData)>>,
}

impl Pass<'_> {
    fn since_position(&self) -> u64 {
        self.since.map_or(0, |t| t.position)
    }

    fn ephemeral_changed(&self) -> bool {
        self.since.is_none_or(|t| t.ephemeral != self.now.ephemeral)
    }

    /// Whether a room's typing or receipts changed since the token (the
    /// counter restarts with the process: then whether it changed at all).
    fn room_ephemeral_changed(&self, last_change: u64) -> bool {
        self.ephemeral_since()
            .is_none_or(|since| last_change > since)
    }

    /// The change count the client's ephemeral data stands at; `None`
    /// when it needs all of it (initial sync, or the counter restarted).
    fn ephemeral_since(&self) -> Option<u64> {
        self.since
            .map(|t| t.ephemeral)
            .filter(|since| *since <= self.now.ephemeral)
    }
}

impl SyncService {
    pub fn new(
        rooms: Arc<RoomService>,
        edus: Arc<EduService>,
        e2ee: Arc<E2eeService>,
        accounts: AccountTrees,
        inbox: EduTrees,
    ) -> Self {
        Self {
            rooms,
            edus,
            e2ee,
            accounts,
            inbox,
            lazy: lazy::LazyMembers::default(),
            connections: sliding::Connections::default(),
        }
    }

    /// Answers at once when anything changed since the token (or there is
    /// none), else when something does or the timeout passes.
    pub async fn sync(&self, session: &Session, request: SyncRequest) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + request.timeout.min(MAX_TIMEOUT);
        let mut positions = self.rooms.watch_position();
        let mut ephemeral = self.edus.watch();
        if request.since.is_none() || request.full_state {
            self.lazy
                .reset(&session.user_id, session.device_id.as_str());
        }
        loop {
            positions.borrow_and_update();
            ephemeral.borrow_and_update();
            let pass = Pass {
                user: &session.user_id,
                device: session.device_id.as_str(),
                since: request.since,
                now: Token {
                    position: self.rooms.position(),
                    ephemeral: self.edus.version(),
                    to_device: request.since.map_or(0, |t| t.to_device),
                },
                full_state: request.full_state,
                filter: &request.filter,
                room_data: HashMap::new(),
            };
            let (response, empty) = self.pass(pass)?;
            if !empty || request.since.is_none() {
                return Ok(response);
            }
            tokio::select! {
                _ = positions.changed() => {}
                _ = ephemeral.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(response),
            }
        }
    }

    /// The response for one pass, and whether it holds nothing new.
    fn pass(&self, mut pass: Pass<'_>) -> Result<(Value, bool)> {
        let mut global_data = Vec::new();
        for (room, kind, data) in self.accounts.account_data_of(pass.user)? {
            if room.is_empty() {
                global_data.push((kind, data));
            } else {
                pass.room_data.entry(room).or_default().push((kind, data));
            }
        }
        let pass = &pass;
        let mut sharing = Sharing::default();
        let mut join = Map::new();
        let mut invite = Map::new();
        let mut leave = Map::new();
        let mut knock = Map::new();
        let include_leave = pass.since.is_some() || pass.filter.include_leave();
        for entry in self.rooms.rooms_of(pass.user)? {
            let room = entry.room.clone();
            if !pass.filter.room_allowed(&room) || self.unchanged(pass, &entry)? {
                continue;
            }
            match self.rooms.membership_of(&room, pass.user)? {
                Some(MembershipState::Join) => {
                    if let Some(entry) = self.joined_room(pass, &room, &mut sharing)? {
                        join.insert(room.to_string(), entry);
                    }
                }
                Some(MembershipState::Invite) => {
                    if let Some(state) = self.local_stripped(pass, &room)? {
                        invite.insert(room.to_string(), json!({"invite_state": {"events": state}}));
                    }
                }
                Some(MembershipState::Knock) => {
                    if let Some(state) = self.local_stripped(pass, &room)? {
                        knock.insert(room.to_string(), json!({"knock_state": {"events": state}}));
                    }
                }
                Some(MembershipState::Leave | MembershipState::Ban) if include_leave => {
                    if let Some(entry) = self.left_room(pass, &room)? {
                        leave.insert(room.to_string(), entry);
                        // Its members may share no other room with ours.
                        sharing.left.extend(self.rooms.joined_members(&room)?);
                    }
                }
                _ => {}
            }
        }
        for pending in self.rooms.pending_records_of(pass.user)? {
            let new =
                pending.position > pass.since_position() && pending.position <= pass.now.position;
            if !new
                || join.contains_key(pending.room_id.as_str())
                || !pass.filter.room_allowed(&pending.room_id)
            {
                continue;
            }
            let mut state: Vec<Value> = pending.room_state.iter().map(stripped).collect();
            state.push(stripped(&pending.event));
            let room = pending.room_id.to_string();
            match pending.membership.as_str() {
                "knock" => {
                    knock.insert(room, json!({"knock_state": {"events": state}}));
                }
                "invite" => {
                    invite.insert(room, json!({"invite_state": {"events": state}}));
                }
                // A rejected invite or retracted knock: its leave, once.
                _ if pass.since.is_some() => {
                    leave.insert(room, rejected(&pending));
                }
                _ => {}
            }
        }
        let account_data = self.account_data(pass, global_data);
        let (to_device, last_to_device) = self.to_device(pass)?;
        let presence = self.presence(pass, &sharing.joined)?;
        let (changed, left) = match pass.since {
            Some(since) => self.device_lists(pass, since, sharing)?,
            None => (Vec::new(), Vec::new()),
        };
        let (counts, fallback) = self.e2ee.counts(pass.user, pass.device)?;
        let empty = join.is_empty()
            && invite.is_empty()
            && leave.is_empty()
            && knock.is_empty()
            && account_data.is_empty()
            && to_device.is_empty()
            && presence.is_empty()
            && changed.is_empty()
            && left.is_empty();
        let next = Token {
            to_device: last_to_device,
            ..pass.now
        };
        let response = json!({
            "next_batch": next.to_string(),
            "rooms": {"join": join, "invite": invite, "leave": leave, "knock": knock},
            "account_data": {"events": account_data},
            "presence": {"events": presence},
            "to_device": {"events": to_device},
            "device_lists": {"changed": changed, "left": left},
            "device_one_time_keys_count": counts,
            "device_unused_fallback_key_types": fallback,
        });
        Ok((response, empty))
    }

    /// Whether nothing of `entry`'s room is new to an incremental sync,
    /// read from memory alone (the index, typing and receipts, account
    /// data): what makes an incremental sync cost what changed.
    fn unchanged(&self, pass: &Pass<'_>, entry: &crate::rooms::activity::UserRoom) -> Result<bool> {
        let Some(since) = pass.since.filter(|_| !pass.full_state) else {
            return Ok(false);
        };
        if entry.since > since.position {
            return Ok(false);
        }
        if entry.membership != MembershipState::Join {
            // An invite, knock or leave is news only at its own position.
            return Ok(true);
        }
        let room = &entry.room;
        let data_changed = pass.room_data.get(room.as_str()).is_some_and(|data| {
            data.iter()
                .any(|(_, d)| d.position > since.position && d.position <= pass.now.position)
        });
        Ok(self.rooms.activity(room)?.last <= since.position
            && !pass.room_ephemeral_changed(self.edus.last_change_in(room))
            && !data_changed)
    }

    /// Presence that changed since the token, and that of users who newly
    /// share a room with ours, as the filter allows.
    fn presence(&self, pass: &Pass<'_>, newcomers: &BTreeSet<OwnedUserId>) -> Result<Vec<Value>> {
        let mut events = if pass.ephemeral_changed() {
            // A token from before a restart: the counter began again.
            let since = pass
                .since
                .map(|t| t.ephemeral)
                .filter(|&e| e <= pass.now.ephemeral);
            self.edus.presence_events(pass.user, since)?
        } else {
            Vec::new()
        };
        let listed: BTreeSet<String> = events
            .iter()
            .filter_map(|e| e["sender"].as_str().map(str::to_owned))
            .collect();
        for user in newcomers {
            if user != pass.user && !listed.contains(user.as_str()) {
                if let Some(content) = self.edus.known_presence(user) {
                    events.push(json!({"type": "m.presence", "sender": user, "content": content}));
                }
            }
        }
        events.retain(|e| {
            e["sender"]
                .as_str()
                .is_some_and(|u| pass.filter.presence_allows(u))
        });
        Ok(events)
    }

    /// The device's to-device messages after those it acknowledged, and
    /// the last one's sequence number.
    fn to_device(&self, pass: &Pass<'_>) -> Result<(Vec<Value>, u64)> {
        let acked = pass.since.map_or(0, |t| t.to_device);
        let messages = self
            .inbox
            .take_to_device(pass.user, pass.device, acked, MAX_TO_DEVICE)?;
        let last = messages.last().map_or(acked, |(seq, _)| *seq);
        let events = messages
            .into_iter()
            .map(|(_, m)| json!({"sender": m.sender, "type": m.kind, "content": m.content}))
            .collect();
        Ok((events, last))
    }

    /// `device_lists`: users whose keys changed, or who started sharing a
    /// room with ours (their client must fetch the newcomer's devices
    /// before encrypting for them), and users who no longer share any.
    /// Spec: client-server-api "Tracking the device list for a user".
    fn device_lists(
        &self,
        pass: &Pass<'_>,
        since: Token,
        sharing: Sharing,
    ) -> Result<(Vec<OwnedUserId>, Vec<OwnedUserId>)> {
        self.e2ee.device_list(
            pass.user,
            since.position,
            pass.now.position,
            sharing.joined,
            sharing.left,
        )
    }

    /// Who started or stopped sharing `room` with our user since the
    /// token: everyone in it when the room is `new` to our user (joined,
    /// or its member events arrived after a partial join, since), else the
    /// members whose membership changed since.
    fn note_sharing(
        &self,
        pass: &Pass<'_>,
        room: &RoomId,
        new: bool,
        sharing: &mut Sharing,
    ) -> Result<()> {
        let since = pass.since_position();
        if new {
            sharing.joined.extend(self.rooms.joined_members(room)?);
            return Ok(());
        }
        for (user, membership) in self
            .rooms
            .membership_changes(room, since, pass.now.position)?
        {
            match membership.as_str() {
                "join" => sharing.joined.insert(user),
                "leave" | "ban" => sharing.left.insert(user),
                _ => false,
            };
        }
        Ok(())
    }

    /// Stripped state of a room we hold, for an invite or knock that is
    /// new since the token.
    fn local_stripped(&self, pass: &Pass<'_>, room: &RoomId) -> Result<Option<Vec<Value>>> {
        let at = self.rooms.member_position(room, pass.user)?;
        if at <= pass.since_position() {
            return Ok(None);
        }
        let mut state: Vec<Value> = self
            .rooms
            .summary_state(room)?
            .iter()
            .map(stripped)
            .collect();
        if let Some((_, member)) =
            self.rooms
                .state_event(room, &StateEventType::RoomMember, pass.user.as_str())?
        {
            state.push(stripped(&member));
        }
        Ok(Some(state))
    }

    /// Global account data written since the token; an initial sync also
    /// carries the default push rules until the user changed them, since
    /// clients read them from here.
    fn account_data(&self, pass: &Pass<'_>, global: Vec<(String, AccountData)>) -> Vec<Value> {
        let mut events: Vec<Value> = global
            .into_iter()
            .filter(|(kind, data)| {
                pass.filter.account_data_allows(kind)
                    && data.position > pass.since_position()
                    && data.position <= pass.now.position
            })
            .map(|(kind, data)| json!({"type": kind, "content": data.content}))
            .collect();
        let has_rules = events.iter().any(|e| e["type"] == PUSH_RULES);
        if pass.since.is_none() && !has_rules && pass.filter.account_data_allows(PUSH_RULES) {
            let rules = crate::rooms::notify::default_rules(pass.user);
            events.push(json!({"type": PUSH_RULES, "content": {"global": rules}}));
        }
        events
    }
}

/// The `leave` entry of a room whose invite or knock the user closed: the
/// leave event alone, since this server holds nothing else of the room.
fn rejected(pending: &crate::store::pending::Pending) -> Value {
    let timeline = pending
        .event_id
        .as_deref()
        .and_then(|id| ruma::OwnedEventId::try_from(id).ok())
        .map(|id| client_event(&id, &pending.event, false));
    json!({
        "timeline": {"events": timeline.into_iter().collect::<Vec<_>>(), "limited": false},
        "state": {"events": []},
        "account_data": {"events": []},
    })
}
