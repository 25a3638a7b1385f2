//! `POST /createRoom`. Spec: client-server-api "Creation"; create_room.yaml.

use bytes::Bytes;
use ruma::{OwnedUserId, RoomVersionId};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
    store::accounts::Session,
};

#[derive(Deserialize)]
struct StateEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    state_key: String,
    content: Value,
}

#[derive(Deserialize)]
struct CreateRoomRequest {
    visibility: Option<String>,
    room_alias_name: Option<String>,
    name: Option<String>,
    topic: Option<String>,
    #[serde(default)]
    invite: Vec<OwnedUserId>,
    room_version: Option<String>,
    preset: Option<String>,
    #[serde(default)]
    initial_state: Vec<StateEvent>,
    power_level_content_override: Option<Map<String, Value>>,
    creation_content: Option<Map<String, Value>>,
    #[serde(default)]
    is_direct: bool,
}

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("createRoom"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let services = services.clone();
            async move { respond(create(services, session, bytes)).await }
        })
        .boxed()
}

fn unsupported(message: String) -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        "M_UNSUPPORTED_ROOM_VERSION",
        message,
    )
}

async fn create(services: Services, session: Session, bytes: Bytes) -> Result<Value> {
    let request: CreateRoomRequest = body(&bytes)?;
    let version = request
        .room_version
        .as_deref()
        .map(|v| RoomVersionId::try_from(v).map_err(|e| unsupported(format!("{v:?}: {e}"))))
        .transpose()?;
    let preset = match request.preset.as_deref() {
        Some(p @ ("public_chat" | "private_chat" | "trusted_private_chat")) => p.to_owned(),
        Some(other) => return Err(Error::bad_json(format!("unknown preset {other:?}"))),
        None if request.visibility.as_deref() == Some("public") => "public_chat".into(),
        None => "private_chat".into(),
    };
    let alias = match &request.room_alias_name {
        Some(name) => Some(services.directory.check_new_alias(name)?),
        None => None,
    };
    if let Some(alias) = &alias {
        services.accounts.may_take_alias(alias, &session)?;
    }
    let user = &session.user_id;
    let rooms = &services.rooms;
    let room = rooms
        .create_room_with(user, version, request.creation_content.unwrap_or_default())
        .await?;
    let mut overrides = request.power_level_content_override.unwrap_or_default();
    if preset == "trusted_private_chat" {
        let users = overrides.entry("users").or_insert_with(|| json!({}));
        for invitee in &request.invite {
            users[invitee.as_str()] = json!(100);
        }
    }
    if !overrides.is_empty() {
        let (_, current) = rooms
            .state_event(&room, &"m.room.power_levels".into(), "")?
            .ok_or_else(|| Error::internal("a new room without power levels"))?;
        let mut content: Value = current
            .get("content")
            .cloned()
            .map(Into::into)
            .unwrap_or_default();
        for (key, value) in overrides {
            content[key] = value;
        }
        rooms
            .send(&room, user, "m.room.power_levels", Some(""), content)
            .await?;
    }
    if let Some(alias) = &alias {
        services.directory.put_alias(alias, &room, user)?;
        rooms
            .send(
                &room,
                user,
                "m.room.canonical_alias",
                Some(""),
                json!({"alias": alias}),
            )
            .await?;
    }
    if preset == "public_chat" {
        rooms
            .send(
                &room,
                user,
                "m.room.join_rules",
                Some(""),
                json!({"join_rule": "public"}),
            )
            .await?;
    }
    for event in request.initial_state {
        rooms
            .send(
                &room,
                user,
                &event.kind,
                Some(&event.state_key),
                event.content,
            )
            .await?;
    }
    if let Some(name) = request.name {
        rooms
            .send(&room, user, "m.room.name", Some(""), json!({"name": name}))
            .await?;
    }
    if let Some(topic) = request.topic {
        rooms
            .send(
                &room,
                user,
                "m.room.topic",
                Some(""),
                json!({"topic": topic}),
            )
            .await?;
    }
    if request.visibility.as_deref() == Some("public") {
        services.directory.set_public(&room, user, true)?;
    }
    for invitee in &request.invite {
        services
            .membership
            .invite(&room, user, invitee, request.is_direct, None)
            .await?;
    }
    Ok(json!({ "room_id": room }))
}
