//! A plain client of the client-server API for tests and benches: log in
//! (creating the user through the `hearth` CLI), call endpoints, sync.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{http, Hearth};

pub const PASSWORD: &str = "a long enough password";

pub struct Client<'a> {
    pub h: &'a Hearth,
    pub token: String,
    pub user: String,
    pub device: String,
}

impl<'a> Client<'a> {
    pub async fn login(h: &'a Hearth, name: &str) -> Self {
        super::rooms::user(h, name);
        let mut client = Self {
            h,
            token: String::new(),
            user: String::new(),
            device: String::new(),
        };
        let (status, reply) = client
            .call(
                "POST",
                "login",
                json!({"type": "m.login.password", "user": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        client.token = reply["access_token"].as_str().expect("token").to_owned();
        client.user = reply["user_id"].as_str().expect("user").to_owned();
        client.device = reply["device_id"].as_str().expect("device").to_owned();
        client
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call_at(method, &format!("/_matrix/client/v3/{path}"), body)
            .await
    }

    /// A request to any path (`/_matrix/client/unstable/…`, say).
    pub async fn call_at(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        let headers: Vec<(&str, &str)> = if self.token.is_empty() {
            vec![]
        } else {
            vec![("authorization", auth.as_str())]
        };
        let body = (method != "GET").then(|| body.to_string().into_bytes());
        http::request(
            http::Target::Plain(self.h.client),
            method,
            path,
            &headers,
            body,
        )
        .await
    }

    /// Starts typing in `room` for 30 s.
    pub async fn typing(&self, room: &str) {
        let path = format!(
            "rooms/{}/typing/{}",
            super::rooms::encode(room),
            super::rooms::encode(&self.user)
        );
        self.ok("PUT", &path, json!({"typing": true, "timeout": 30000}))
            .await;
    }

    /// Sends a public read receipt for `event` in `room`.
    pub async fn read(&self, room: &str, event: &str) {
        let path = format!(
            "rooms/{}/receipt/m.read/{}",
            super::rooms::encode(room),
            super::rooms::encode(event)
        );
        self.ok("POST", &path, json!({})).await;
    }

    /// Invites `user` to `room` (`!id`, unencoded).
    pub async fn invite(&self, room: &str, user: &str) {
        let path = format!("rooms/{}/invite", super::rooms::encode(room));
        self.ok("POST", &path, json!({ "user_id": user })).await;
    }

    pub async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, reply) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {reply}\n{}", self.h.log());
        reply
    }

    /// Syncs until `done` holds for a response, returning it.
    pub async fn sync_until(
        &self,
        since: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut since = since.to_owned();
        loop {
            let reply = self
                .ok(
                    "GET",
                    &format!("sync?since={since}&timeout=1000"),
                    json!(null),
                )
                .await;
            if done(&reply) {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {what} by {since}: {reply}",
                self.user
            );
            since = reply["next_batch"].as_str().expect("next_batch").to_owned();
        }
    }

    /// Sends a text message to `room` (`!id`, unencoded) under a new
    /// transaction ID; its event ID.
    pub async fn say(&self, room: &str, body: &str) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static TXN: AtomicU64 = AtomicU64::new(1);
        let txn = format!("say{}", TXN.fetch_add(1, Ordering::Relaxed));
        let path = format!(
            "rooms/{}/send/m.room.message/{txn}",
            super::rooms::encode(room)
        );
        self.ok("PUT", &path, json!({"msgtype": "m.text", "body": body}))
            .await["event_id"]
            .as_str()
            .expect("event_id")
            .to_owned()
    }

    /// `POST /createRoom` with `body`; the new room's ID.
    pub async fn create_room(&self, body: Value) -> String {
        self.ok("POST", "createRoom", body).await["room_id"]
            .as_str()
            .expect("room_id")
            .to_owned()
    }

    pub fn device_keys(&self, curve: &str) -> Value {
        json!({
            "user_id": self.user, "device_id": self.device,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {format!("curve25519:{}", self.device): curve, format!("ed25519:{}", self.device): "ed-key"},
            "signatures": {self.user.clone(): {format!("ed25519:{}", self.device): "sig"}},
        })
    }
}

impl<'a> Client<'a> {
    /// A second device of an existing user.
    pub async fn login_again(h: &'a Hearth, name: &str) -> Client<'a> {
        let mut client = Client {
            h,
            token: String::new(),
            user: String::new(),
            device: String::new(),
        };
        let reply = client
            .ok(
                "POST",
                "login",
                json!({"type": "m.login.password", "user": name, "password": PASSWORD}),
            )
            .await;
        client.token = reply["access_token"].as_str().expect("token").to_owned();
        client.user = reply["user_id"].as_str().expect("user").to_owned();
        client.device = reply["device_id"].as_str().expect("device").to_owned();
        client
    }
}

/// `count` users (`w1`, `w2`, …) in one public room the first created:
/// the writers of a bench.
pub async fn writers_in_room(h: &Hearth, count: usize) -> (Vec<Client<'_>>, String) {
    let mut writers = Vec::with_capacity(count);
    for i in 1..=count {
        writers.push(Client::login(h, &format!("w{i}")).await);
    }
    let room = writers[0]
        .create_room(json!({"preset": "public_chat"}))
        .await;
    for writer in &writers[1..] {
        let path = format!("join/{}", super::rooms::encode(&room));
        writer.ok("POST", &path, json!({})).await;
    }
    (writers, room)
}

/// The `body` of each message in a chunk of events.
pub fn bodies(chunk: &Value) -> Vec<String> {
    chunk
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect()
}
