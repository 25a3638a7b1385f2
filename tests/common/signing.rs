//! Signing events as a test server would: with its own key, read from
//! its data directory while it is down.

use std::{sync::Arc, time::Duration};

use hearth::{
    config::Config, keys::KeyService, net::https::HttpsClient, rooms::checks, store::Store,
};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, RoomVersionId};
use serde_json::Value;

use super::Hearth;

/// `event` with the hashes and signature of `h`'s server, signed while it
/// is down (sled lets one process hold its data); `h` runs again after.
pub fn sign_as(h: &mut Hearth, event: Value, version: &RoomVersionId) -> (String, Value) {
    h.kill();
    let config = Config {
        server_name: h.server_name.as_str().try_into().expect("name"),
        ..Default::default()
    };
    let mut store = None;
    for _ in 0..100 {
        match Store::open(&h.data_dir()) {
            Ok(opened) => {
                store = Some(opened);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let client = Arc::new(HttpsClient::new(&config).expect("client"));
    let keys = KeyService::new(&config, store.expect("store"), client).expect("keys");
    let rules = checks::rules(version).expect("rules");
    let mut object: CanonicalJsonObject = serde_json::from_value(event).expect("object");
    keys.hash_and_sign_event(&mut object, &rules.redaction)
        .expect("sign");
    let id = checks::event_id(&object, &rules).expect("event id");
    drop(keys);
    h.restart();
    (id.to_string(), CanonicalJsonValue::Object(object).into())
}
