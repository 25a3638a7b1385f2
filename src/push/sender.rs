//! The sender: each pusher gets what notified its user after its
//! position, in order, one gateway request per notification; the position
//! moves on once the gateway took it, so a notification survives `kill -9`
//! and a gateway that was down gets what it missed. A failing gateway is
//! retried with backoff; after failing for a day, what it missed is
//! dropped (a phone woken for day-old messages helps nobody). A pushkey
//! the gateway rejects loses its pusher.
//! Spec: push-gateway-api "POST /_matrix/push/v1/notify".

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use ruma::{
    api::{
        client::push::{Pusher, PusherKind},
        push_gateway::send_event_notification::v1::{
            Device, Notification as Push, NotificationCounts, NotificationPriority, PusherData,
        },
    },
    push::{Action, PushFormat, Tweak},
    OwnedUserId, SecondsSinceUnixEpoch, UInt, UserId,
};

use super::PushService;
use crate::{
    error::{Error, Result},
    net::backoff::delay_after,
    rooms::notify::Notification,
    store::pushers::{PusherId, PusherRecord},
    time::now_ms,
};

/// Notifications read per pusher at a time.
const BATCH: usize = 20;
/// Longest wait between retries of a failing gateway.
const MAX_RETRY: Duration = Duration::from_secs(600);
/// A gateway failing this long has what it missed dropped.
const GIVE_UP_AFTER_MS: u64 = 24 * 3600 * 1000;
/// The most of a gateway's answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// A pusher whose gateway is failing.
struct Failing {
    failures: u32,
    since_ms: u64,
    retry_at: Instant,
}

enum Outcome {
    Sent,
    Rejected,
}

impl PushService {
    /// Delivers to every pusher whenever something notifies, retrying
    /// failing gateways when due, until the server stops.
    pub async fn run(self: Arc<Self>) {
        let ready = self.rooms.notified_ready();
        let mut failing = HashMap::new();
        loop {
            let wait = self.deliver_all(&mut failing).await;
            tokio::select! {
                () = ready.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass over the pushers not waiting to be retried; how long until
    /// the next retry is due.
    async fn deliver_all(&self, failing: &mut HashMap<PusherId, Failing>) -> Duration {
        let pushers = match self.tree.all() {
            Ok(pushers) => pushers,
            Err(e) => {
                tracing::error!(error = %e, "cannot read pushers");
                return MAX_RETRY;
            }
        };
        let now = Instant::now();
        failing.retain(|id, _| pushers.iter().any(|(other, _)| other == id));
        let due: Vec<_> = pushers
            .into_iter()
            .filter(|(id, _)| failing.get(id).is_none_or(|f| f.retry_at <= now))
            .map(|(id, record)| {
                let since = failing.get(&id).map(|f| f.since_ms);
                (id, record, since)
            })
            .collect();
        let passes = due.into_iter().map(|(id, record, since)| async move {
            let given_up = since.is_some_and(|s| now_ms().saturating_sub(s) > GIVE_UP_AFTER_MS);
            let outcome = self.drain(&id, record, given_up).await;
            (id, outcome)
        });
        for (id, outcome) in join_all(passes).await {
            match outcome {
                Ok(()) => {
                    failing.remove(&id);
                }
                Err(e) => {
                    let entry = failing.entry(id.clone()).or_insert(Failing {
                        failures: 0,
                        since_ms: now_ms(),
                        retry_at: now,
                    });
                    entry.failures += 1;
                    entry.retry_at = Instant::now() + delay_after(entry.failures).min(MAX_RETRY);
                    tracing::info!(user = %id.0, app_id = %id.1, error = %e.message,
                        failures = entry.failures, "push gateway failed");
                }
            }
        }
        failing
            .values()
            .map(|f| f.retry_at.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(MAX_RETRY)
    }

    /// Sends one pusher what notified its user after its position, in
    /// order, until none is left or one fails (or, `given_up` on a gateway
    /// failing for a day, skipping what fails).
    async fn drain(&self, id: &PusherId, record: PusherRecord, given_up: bool) -> Result<()> {
        let user = OwnedUserId::try_from(id.0.as_str())
            .map_err(|e| Error::internal(format!("stored pusher's user: {e}")))?;
        let pusher: Pusher = serde_json::from_value(record.pusher.clone())
            .map_err(|e| Error::internal(format!("stored pusher: {e}")))?;
        let mut after = record.delivered;
        loop {
            let (batch, last) = self.rooms.notifications_after(&user, after, BATCH)?;
            if last == after {
                return Ok(());
            }
            for notification in &batch {
                match self.notify(&user, &pusher, &record, notification).await {
                    Ok(Outcome::Sent) => {}
                    Ok(Outcome::Rejected) => {
                        tracing::info!(user = %user, app_id = %id.1, "push gateway rejected the pushkey: pusher deleted");
                        self.tree.remove(id)?;
                        return Ok(());
                    }
                    Err(e) if given_up => {
                        tracing::info!(error = %e.message, "push dropped after a day of failures");
                    }
                    Err(e) => return Err(e),
                }
                self.tree.delivered(id, notification.stream)?;
            }
            self.tree.delivered(id, last)?;
            after = last;
        }
    }

    /// One notification to the pusher's gateway.
    async fn notify(
        &self,
        user: &OwnedUserId,
        pusher: &Pusher,
        record: &PusherRecord,
        notification: &Notification,
    ) -> Result<Outcome> {
        let PusherKind::Http(http) = &pusher.kind else {
            return Ok(Outcome::Sent);
        };
        let body = self.body(user, pusher, record, notification)?;
        let (status, answer) = self.post(&http.url, &body).await?;
        if !status.is_success() {
            return Err(Error::internal(format!("{} answered {status}", http.url)));
        }
        let rejected = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|a| a["rejected"].as_array().cloned())
            .unwrap_or_default();
        if rejected
            .iter()
            .any(|k| k.as_str() == Some(pusher.ids.pushkey.as_str()))
        {
            return Ok(Outcome::Rejected);
        }
        Ok(Outcome::Sent)
    }

    /// POSTs one notification to a gateway: its status and answer.
    async fn post(&self, url: &str, push: &Push) -> Result<(http::StatusCode, bytes::Bytes)> {
        let body = serde_json::to_vec(&serde_json::json!({ "notification": push }))
            .map_err(|e| Error::internal(e.to_string()))?;
        self.web
            .post_json(url, body.into(), MAX_ANSWER, self.timeout)
            .await
            .map_err(|e| Error::internal(format!("{url}: {e:?}")))
    }

    /// `hearth push test USER`: a notification with no event (what a
    /// gateway shows as a badge count) to each of the user's pushers, and
    /// what each gateway answered, as (app_id, pushkey, answer).
    pub async fn test(&self, user: &UserId) -> Result<Vec<(String, String, String)>> {
        let mut answers = Vec::new();
        let unread = self.rooms.rooms_with_unread(user)?;
        for (id, record) in self.tree.of_user(user.as_str())? {
            let pusher: Pusher = serde_json::from_value(record.pusher.clone())
                .map_err(|e| Error::internal(format!("stored pusher: {e}")))?;
            let PusherKind::Http(http) = &pusher.kind else {
                continue;
            };
            let mut device = Device::new(id.1.clone(), id.2.clone());
            device.data.format = http.format.clone();
            device.data.data = http.data.clone();
            let mut push = Push::new(vec![device]);
            push.counts =
                NotificationCounts::new(UInt::try_from(unread).unwrap_or(UInt::MAX), UInt::MIN);
            let answer = match self.post(&http.url, &push).await {
                Ok((status, body)) => format!("{status} {}", String::from_utf8_lossy(&body)),
                Err(e) => e.message,
            };
            answers.push((id.1, id.2, answer));
        }
        Ok(answers)
    }

    /// The notification as the gateway reads it: for `event_id_only`,
    /// nothing of the event but its ID, room and the counts.
    fn body(
        &self,
        user: &OwnedUserId,
        pusher: &Pusher,
        record: &PusherRecord,
        notification: &Notification,
    ) -> Result<Push> {
        let PusherKind::Http(http) = &pusher.kind else {
            return Err(Error::internal("not an http pusher"));
        };
        let tweaks: Vec<Tweak> = notification
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::SetTweak(tweak) => Some(tweak.clone()),
                _ => None,
            })
            .collect();
        let mut data = PusherData::new();
        data.format = http.format.clone();
        data.data = http.data.clone();
        let mut device = Device::new(pusher.ids.app_id.clone(), pusher.ids.pushkey.clone());
        device.pushkey_ts = UInt::try_from(record.pushkey_ts / 1000)
            .ok()
            .map(SecondsSinceUnixEpoch);
        device.data = data;
        let ring = notification
            .actions
            .iter()
            .any(|a| a.is_highlight() || a.sound().is_some());
        device.tweaks = tweaks;
        let mut push = Push::new(vec![device]);
        push.event_id = Some(notification.event_id.clone());
        push.room_id = Some(notification.room.clone());
        push.prio = if ring {
            NotificationPriority::High
        } else {
            NotificationPriority::Low
        };
        let unread = self.rooms.rooms_with_unread(user)?;
        push.counts =
            NotificationCounts::new(UInt::try_from(unread).unwrap_or(UInt::MAX), UInt::MIN);
        if http.format == Some(PushFormat::EventIdOnly) {
            return Ok(push);
        }
        let details = self
            .rooms
            .push_details(&notification.room, &notification.event)?;
        push.event_type = details.event_type;
        push.sender = details.sender;
        push.sender_display_name = details.sender_display_name;
        push.room_name = details.room_name;
        push.user_is_target = details.state_key.as_deref() == Some(user.as_str());
        push.content = details.content;
        Ok(push)
    }
}
