//! `/sync`: what changed for a user since a token, waiting (long-poll)
//! until something does. Positions are the rooms' stream positions, which
//! also order invites from other servers and account data; ephemeral
//! changes (typing, receipts) are counted separately.
//! Spec: client-server-api "Syncing".

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::Arc,
    time::Duration,
};

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    OwnedEventId, OwnedUserId, RoomId, UserId,
};
use serde_json::{json, Map, Value};

use crate::{
    accounts::push_rules::PUSH_RULES,
    e2ee::E2eeService,
    edus::EduService,
    error::{Error, Result},
    rooms::{
        client_event::{client_event, echo_transaction_id, stripped},
        RoomService,
    },
    store::{
        accounts::{AccountTrees, Session},
        edus::EduTrees,
    },
};

/// Longest long-poll a client may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Most timeline events per room in one response.
const MAX_TIMELINE: usize = 100;
const DEFAULT_TIMELINE: usize = 10;

/// Where a client is: the stream position, the ephemeral counter and the
/// last to-device message it was given (acknowledged by syncing past it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Token {
    pub position: u64,
    pub ephemeral: u64,
    pub to_device: u64,
}

impl Token {
    /// `s{position}_{ephemeral}_{to_device}`; missing parts read as 0
    /// (pagination tokens carry only the position).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::invalid_param(format!("{text:?} is not a sync token of this server"));
        let rest = text.strip_prefix('s').ok_or_else(bad)?;
        let mut parts = rest.split('_').map(|p| p.parse::<u64>().map_err(|_| bad()));
        let token = Self {
            position: parts.next().ok_or_else(bad)??,
            ephemeral: parts.next().transpose()?.unwrap_or(0),
            to_device: parts.next().transpose()?.unwrap_or(0),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(token)
    }

    /// A pagination token: just a position.
    pub fn at(position: u64) -> Self {
        Self {
            position,
            ..Self::default()
        }
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s{}_{}_{}",
            self.position, self.ephemeral, self.to_device
        )
    }
}

/// What the client asked for.
pub struct SyncRequest {
    pub since: Option<Token>,
    pub timeout: Duration,
    pub full_state: bool,
    pub filter: Filter,
}

/// The parts of a filter hearth applies.
/// Spec: client-server-api "Filtering", "Lazy-loading room members".
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub timeline_limit: usize,
    pub lazy_load_members: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            timeline_limit: DEFAULT_TIMELINE,
            lazy_load_members: false,
        }
    }
}

impl Filter {
    pub fn from_json(filter: &Value) -> Self {
        let room = &filter["room"];
        Self {
            timeline_limit: room["timeline"]["limit"]
                .as_u64()
                .map_or(DEFAULT_TIMELINE, |n| (n as usize).clamp(1, MAX_TIMELINE)),
            lazy_load_members: room["state"]["lazy_load_members"]
                .as_bool()
                .unwrap_or(false),
        }
    }
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
    filter: Filter,
}

impl Pass<'_> {
    fn since_position(&self) -> u64 {
        self.since.map_or(0, |t| t.position)
    }

    fn ephemeral_changed(&self) -> bool {
        self.since.is_none_or(|t| t.ephemeral != self.now.ephemeral)
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
        }
    }

    /// Answers at once when anything changed since the token (or there is
    /// none), else when something does or the timeout passes.
    pub async fn sync(&self, session: &Session, request: SyncRequest) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + request.timeout.min(MAX_TIMEOUT);
        let mut positions = self.rooms.watch_position();
        let mut ephemeral = self.edus.watch();
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
                filter: request.filter,
            };
            let (response, empty) = self.pass(&pass)?;
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
    fn pass(&self, pass: &Pass<'_>) -> Result<(Value, bool)> {
        let mut sharing = Sharing::default();
        let mut join = Map::new();
        let mut invite = Map::new();
        let mut leave = Map::new();
        let mut knock = Map::new();
        for room in self.rooms.room_ids()? {
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
                Some(MembershipState::Leave | MembershipState::Ban) if pass.since.is_some() => {
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
            if !new || join.contains_key(pending.room_id.as_str()) {
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
        let account_data = self.account_data(pass)?;
        let (to_device, last_to_device) = self.to_device(pass)?;
        let (changed, left) = match pass.since {
            Some(since) => self.device_lists(pass, since, sharing)?,
            None => (Vec::new(), Vec::new()),
        };
        let presence = if pass.ephemeral_changed() {
            // A token from before a restart: the counter began again.
            let since = pass
                .since
                .map(|t| t.ephemeral)
                .filter(|&e| e <= pass.now.ephemeral);
            self.edus.presence_events(pass.user, since)?
        } else {
            Vec::new()
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
        let mut changed: BTreeSet<OwnedUserId> = self
            .e2ee
            .changed_between(pass.user, since.position, pass.now.position)?
            .into_iter()
            .collect();
        changed.extend(sharing.joined);
        let mut left = Vec::new();
        if !sharing.left.is_empty() {
            let still = self.rooms.users_sharing_rooms_with(pass.user)?;
            left = sharing
                .left
                .into_iter()
                .filter(|user| !still.contains(user))
                .collect();
        }
        changed.remove(pass.user);
        for user in &left {
            changed.remove(user);
        }
        Ok((changed.into_iter().collect(), left))
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

    /// A joined room's entry, or none when nothing in it changed.
    fn joined_room(
        &self,
        pass: &Pass<'_>,
        room: &RoomId,
        sharing: &mut Sharing,
    ) -> Result<Option<Value>> {
        let since = pass.since_position();
        let limit = pass.filter.timeline_limit;
        let mut events =
            self.rooms
                .timeline_between(room, since, pass.now.position + 1, limit + 1, true)?;
        let limited = events.len() > limit;
        if limited {
            events.remove(0);
        }
        let joined_at = self.member_position(room, pass.user)?;
        // Newly joined, or its member events fetched since a partial join
        // (they are outliers, never in the timeline), or asked for
        // everything: the whole state.
        let new = joined_at > since || self.rooms.state_completed_at(room)? > since;
        let fresh = pass.since.is_none() || pass.full_state || new;
        if events.is_empty() && !fresh && !pass.ephemeral_changed() {
            return Ok(None);
        }
        let ephemeral = if pass.ephemeral_changed() {
            self.ephemeral(room)?
        } else {
            Vec::new()
        };
        if events.is_empty() && !fresh && ephemeral.is_empty() {
            return Ok(None);
        }
        let in_timeline: HashSet<&OwnedEventId> = events.iter().map(|(_, id)| id).collect();
        let timeline_start = events.first().map_or(pass.now.position + 1, |(p, _)| *p);
        let mut senders: HashSet<OwnedUserId> = HashSet::from([pass.user.to_owned()]);
        let mut timeline = Vec::new();
        let mut members_changed = fresh || limited;
        for (_, id) in &events {
            if !self.rooms.visible_to(id, pass.user)? {
                continue;
            }
            let pdu = self.rooms.event_object(id)?;
            members_changed |= pdu.get("type").and_then(|t| t.as_str()) == Some("m.room.member");
            if let Some(sender) = pdu
                .get("sender")
                .and_then(|s| s.as_str())
                .and_then(|s| OwnedUserId::try_from(s).ok())
            {
                senders.insert(sender);
            }
            let mut event = client_event(id, &pdu, false);
            echo_transaction_id(&self.accounts, &mut event, pass.user, pass.device)?;
            timeline.push(event);
        }
        if members_changed && pass.since.is_some() {
            self.note_sharing(pass, room, new, sharing)?;
        }
        // Counts and heroes, when the members may have changed: all of the
        // timeline since the token is here otherwise, and names none.
        let summary = if members_changed {
            let summary = self.rooms.summary(room, pass.user)?;
            // A lazy-loading client needs the heroes' names too.
            senders.extend(summary.heroes.iter().cloned());
            summary_json(&summary)
        } else {
            json!({})
        };
        let mut state = Vec::new();
        for ((kind, key), id) in self.rooms.current_state_ids(room)? {
            if in_timeline.contains(&id) {
                continue;
            }
            let lazy_skip = pass.filter.lazy_load_members
                && kind == StateEventType::RoomMember
                && !<&UserId>::try_from(key.as_str()).is_ok_and(|u| senders.contains(u));
            if lazy_skip {
                continue;
            }
            // Incremental: only state that changed since, before the timeline.
            if !fresh {
                let position = self.rooms.stream_of(&id)?;
                if position <= since || position >= timeline_start {
                    continue;
                }
            }
            state.push(client_event(&id, &self.rooms.event_object(&id)?, false));
        }
        let prev_batch = Token::at(timeline_start.saturating_sub(1));
        Ok(Some(json!({
            "timeline": {"events": timeline, "limited": limited, "prev_batch": prev_batch.to_string()},
            "state": {"events": state},
            "ephemeral": {"events": ephemeral},
            "account_data": {"events": []},
            "unread_notifications": {},
            "summary": summary,
        })))
    }

    /// A room the user left or was banned from since the token: the
    /// timeline up to and including their leave.
    fn left_room(&self, pass: &Pass<'_>, room: &RoomId) -> Result<Option<Value>> {
        let left_at = self.member_position(room, pass.user)?;
        if left_at <= pass.since_position() || left_at > pass.now.position {
            return Ok(None);
        }
        let limit = pass.filter.timeline_limit;
        let events =
            self.rooms
                .timeline_between(room, pass.since_position(), left_at + 1, limit, true)?;
        let mut timeline = Vec::new();
        for (_, id) in &events {
            if self.rooms.visible_to(id, pass.user)? {
                timeline.push(client_event(id, &self.rooms.event_object(id)?, false));
            }
        }
        Ok(Some(json!({
            "timeline": {"events": timeline, "limited": false},
            "state": {"events": []},
            "account_data": {"events": []},
        })))
    }

    /// The stream position of the user's current member event.
    fn member_position(&self, room: &RoomId, user: &UserId) -> Result<u64> {
        match self
            .rooms
            .state_event_id(room, &StateEventType::RoomMember, user.as_str())?
        {
            Some(id) => self.rooms.stream_of(&id),
            None => Ok(0),
        }
    }

    /// Stripped state of a room we hold, for an invite or knock that is
    /// new since the token.
    fn local_stripped(&self, pass: &Pass<'_>, room: &RoomId) -> Result<Option<Vec<Value>>> {
        let at = self.member_position(room, pass.user)?;
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

    /// Typing and receipts of a room, as `m.typing` and `m.receipt`.
    fn ephemeral(&self, room: &RoomId) -> Result<Vec<Value>> {
        let view = self.edus.room_view(room)?;
        let mut events = vec![json!({"type": "m.typing", "content": {"user_ids": view["typing"]}})];
        let mut receipts: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for entry in view["receipts"].as_array().into_iter().flatten() {
            let (Some(kind), Some(user), Some(receipt)) =
                (entry[0].as_str(), entry[1].as_str(), entry.get(2))
            else {
                continue;
            };
            // Stored per user and type; clients want event → type → user.
            let Some(events) = receipt.get("event_ids").and_then(Value::as_array) else {
                continue;
            };
            for event in events.iter().filter_map(Value::as_str) {
                let by_type = receipts.entry(event.to_owned()).or_default();
                let users = by_type.entry(kind.to_owned()).or_insert_with(|| json!({}));
                users[user] = receipt.get("data").cloned().unwrap_or(json!({}));
            }
        }
        if !receipts.is_empty() {
            events.push(json!({"type": "m.receipt", "content": receipts}));
        }
        Ok(events)
    }

    /// Global account data written since the token; an initial sync also
    /// carries the default push rules until the user changed them, since
    /// clients read them from here.
    fn account_data(&self, pass: &Pass<'_>) -> Result<Vec<Value>> {
        let mut events: Vec<Value> = self
            .accounts
            .account_data_of(pass.user)?
            .into_iter()
            .filter(|(room, _, data)| {
                room.is_empty()
                    && data.position > pass.since_position()
                    && data.position <= pass.now.position
            })
            .map(|(_, kind, data)| json!({"type": kind, "content": data.content}))
            .collect();
        let has_rules = events.iter().any(|e| e["type"] == PUSH_RULES);
        if pass.since.is_none() && !has_rules {
            let rules = ruma::push::Ruleset::server_default(pass.user);
            events.push(json!({"type": PUSH_RULES, "content": {"global": rules}}));
        }
        Ok(events)
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

/// A room's `summary`: `m.heroes` only when the room has no name to show.
fn summary_json(summary: &crate::rooms::reads::summary::Summary) -> Value {
    let mut json = json!({
        "m.joined_member_count": summary.joined,
        "m.invited_member_count": summary.invited,
    });
    if !summary.heroes.is_empty() {
        json["m.heroes"] = json!(summary.heroes);
    }
    json
}
