//! Element X's room list against a hearth: logs in with matrix-rust-sdk,
//! runs its `SyncService` (the room list over sliding sync, and the
//! encryption sync beside it), and prints what the list shows as JSON at
//! each step, then the messages of a room opened. It asserts nothing:
//! tests/rust_sdk.rs does, on what it prints.
//!
//! Arguments: homeserver URL, the user and password whose list is watched,
//! the rooms the list should reach, a second user and password, and the room
//! in which that user then says something.

// The timeline's futures nest deeper than rustc's default limit allows
// ("queries overflow the depth limit!" on a clean build).
#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use matrix_sdk::{
    Client, RoomState,
    ruma::{
        OwnedRoomId, TransactionId,
        api::client::{message::send_message_event, receipt::create_receipt::v3::ReceiptType},
        events::{receipt::ReceiptThread, room::message::RoomMessageEventContent},
    },
};
use matrix_sdk_ui::{
    eyeball_im::Vector,
    room_list_service::{RoomListItem, filters::new_filter_non_left},
    sync_service::{State, SyncService},
    timeline::RoomExt,
};
use serde_json::{Value, json};

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, user, password, rooms, other, other_password, target] = &args[..] else {
        bail!("usage: URL USER PASSWORD ROOMS OTHER OTHER_PASSWORD ROOM_ID");
    };
    let expected: usize = rooms.parse().context("ROOMS")?;
    let target: OwnedRoomId = target.as_str().try_into().context("ROOM_ID")?;

    let client = login(url, user, password).await?;
    let sync = SyncService::builder(client.clone()).build().await?;
    sync.start().await;
    let room_list = sync.room_list_service();
    let all_rooms = room_list.all_rooms().await?;
    let (entries, controller) = all_rooms.entries_with_dynamic_adapters(100);
    controller.set_filter(Box::new(new_filter_non_left()));
    let mut list = List {
        entries: Box::pin(entries),
        rooms: Vector::new(),
    };

    // The client names a room once it has processed its state.
    let listed = list
        .until("every room listed and named", |rooms| {
            rooms.len() == expected && rooms.iter().all(|r| r.cached_display_name().is_some())
        })
        .await?;
    print_step("listed", &listed);

    let sender = login(url, other, other_password).await?;
    let content = RoomMessageEventContent::text_plain("hello from the other side");
    let request =
        send_message_event::v3::Request::new(target.clone(), TransactionId::new(), &content)?;
    let event_id = sender.send(request).await?.event_id;

    let moved = list
        .until("the message moves its room to the top, unread", |rooms| {
            rooms.front().is_some_and(|room| {
                room.room_id() == target
                    && room.unread_notification_counts().notification_count == 1
                    && room.num_unread_messages() == 1
            })
        })
        .await?;
    print_step("message", &moved);

    let room = client
        .get_room(&target)
        .ok_or_else(|| anyhow!("no room {target}"))?;
    room.send_single_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, event_id)
        .await?;
    let read = list
        .until("the read receipt clears the count", |rooms| {
            rooms.iter().all(|room| {
                room.unread_notification_counts().notification_count == 0
                    && room.num_unread_messages() == 0
            })
        })
        .await?;
    print_step("read", &read);

    // Opening the room, as Element X does: a subscription with a larger
    // timeline limit than the list's one event, then its timeline.
    room_list.subscribe_to_rooms(&[&target]).await;
    let timeline = room.timeline().await?;
    let deadline = Instant::now() + STEP;
    let messages = loop {
        let messages: Vec<String> = timeline
            .items()
            .await
            .iter()
            .filter_map(|item| item.as_event())
            .filter_map(|event| event.content().as_message().map(|m| m.body().to_owned()))
            .collect();
        if messages.len() >= 2 || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("{}", json!({ "step": "opened", "messages": messages }));

    // Both syncs, the room list's and the encryption one, ran without error.
    let state = sync.state().get();
    if !matches!(state, State::Running) {
        bail!("the sync service is not running: {state:?}");
    }
    sync.stop().await;
    Ok(())
}

async fn login(url: &str, user: &str, password: &str) -> anyhow::Result<Client> {
    let client = Client::builder().homeserver_url(url).build().await?;
    client
        .matrix_auth()
        .login_username(user, password)
        .initial_device_display_name("matrix-rust-sdk")
        .await?;
    Ok(client)
}

/// The room list as the client shows it, kept from the stream's diffs.
struct List<S> {
    entries: std::pin::Pin<Box<S>>,
    rooms: Vector<RoomListItem>,
}

impl<S> List<S>
where
    S: futures_util::Stream<Item = Vec<matrix_sdk_ui::eyeball_im::VectorDiff<RoomListItem>>>,
{
    /// Waits until the list satisfies `done`, and describes it then. Counts
    /// and receipts change a room without always changing the list, so the
    /// rooms are also looked at again every 100 ms.
    async fn until(
        &mut self,
        what: &str,
        done: impl Fn(&Vector<RoomListItem>) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + STEP;
        while !done(&self.rooms) {
            if Instant::now() > deadline {
                bail!(
                    "waited {STEP:?} for {what}; the list: {}",
                    describe(&self.rooms)
                );
            }
            let next = tokio::time::timeout(Duration::from_millis(100), self.entries.next());
            if let Ok(Some(diffs)) = next.await {
                for diff in diffs {
                    diff.apply(&mut self.rooms);
                }
            }
        }
        Ok(describe(&self.rooms))
    }
}

fn describe(rooms: &Vector<RoomListItem>) -> Value {
    let rooms: Vec<Value> = rooms
        .iter()
        .map(|room| {
            let counts = room.unread_notification_counts();
            json!({
                "room_id": room.room_id().as_str(),
                "name": room.cached_display_name().map(|name| name.to_string()),
                "state": match room.state() {
                    RoomState::Joined => "join",
                    RoomState::Invited => "invite",
                    RoomState::Left => "leave",
                    RoomState::Knocked => "knock",
                    RoomState::Banned => "ban",
                },
                "notification_count": counts.notification_count,
                "highlight_count": counts.highlight_count,
                "unread_messages": room.num_unread_messages(),
            })
        })
        .collect();
    Value::Array(rooms)
}

fn print_step(step: &str, rooms: &Value) {
    println!("{}", json!({ "step": step, "rooms": rooms }));
}
