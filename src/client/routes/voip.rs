//! `GET /voip/turnServer`: credentials for the configured TURN server,
//! by the TURN REST scheme coturn's `use-auth-secret` checks: the user
//! name is `{expiry}:{user ID}` and the password its HMAC-SHA1 under the
//! shared secret, base64. `{}` when no TURN server is configured.
//! Spec: client-server-api "Voice over IP"; voip.yaml.

use ruma::serde::{base64::Standard, Base64};
use serde_json::json;
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    store::accounts::Session,
    time::now_ms,
};

pub fn route(services: Services) -> Route {
    let voip = services.voip.clone();
    v3().and(warp::path!("voip" / "turnServer"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let voip = voip.clone();
            respond(async move {
                let Some(secret) = voip.turn_shared_secret.as_deref() else {
                    return Ok(json!({}));
                };
                if voip.turn_uris.is_empty() {
                    return Ok(json!({}));
                }
                let ttl = voip.turn_ttl.0.as_secs();
                let expiry = now_ms() / 1000 + ttl;
                let username = format!("{expiry}:{}", session.user_id);
                let key = ring::hmac::Key::new(
                    ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                    secret.as_bytes(),
                );
                let tag = ring::hmac::sign(&key, username.as_bytes());
                let password = Base64::<Standard, _>::new(tag.as_ref().to_vec()).encode();
                Ok(json!({
                    "username": username,
                    "password": password,
                    "uris": voip.turn_uris,
                    "ttl": ttl,
                }))
            })
        })
        .boxed()
}
