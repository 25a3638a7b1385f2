//! Push rules: `GET /pushrules/` and `/pushrules/global/`, and per rule
//! `GET`/`PUT`/`DELETE /pushrules/global/{kind}/{ruleId}` with its
//! `enabled` and `actions`. Spec: client-server-api "Push Rules";
//! pushrules.yaml.

use bytes::Bytes;
use ruma::{
    push::{
        Action, NewConditionalPushRule, NewPatternedPushRule, NewPushRule, NewSimplePushRule,
        PushCondition, RuleKind, Ruleset,
    },
    OwnedRoomId, OwnedUserId,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    accounts::push_rules::{edit, rule_json, ruleset},
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode, raw_query},
    request::param,
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let rooms = services.rooms.clone();
    let all = v3()
        .and(warp::path("pushrules"))
        .and(warp::path::end())
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let rooms = rooms.clone();
            respond(async move { Ok(json!({ "global": ruleset(&rooms, &session.user_id)? })) })
        });
    let rooms = services.rooms.clone();
    let global = v3()
        .and(warp::path!("pushrules" / "global"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let rooms = rooms.clone();
            respond(async move { to_value(ruleset(&rooms, &session.user_id)?) })
        });
    let rule = v3()
        .and(warp::path!("pushrules" / "global" / String / String / ..))
        .and(
            warp::path::end()
                .map(|| None)
                .or(warp::path!(String).map(Some))
                .unify(),
        )
        .and(warp::method())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(
            move |kind: String,
                  id: String,
                  part: Option<String>,
                  method: http::Method,
                  session: Session,
                  query: String,
                  bytes: Bytes| {
                let services = services.clone();
                let request = RuleRequest {
                    kind: RuleKind::from(percent_decode(&kind).as_str()),
                    id: percent_decode(&id),
                    part,
                    query,
                    bytes,
                };
                respond(async move { one_rule(&services, &session, method, request) })
            },
        );
    all.or(global).unify().or(rule).unify().boxed()
}

struct RuleRequest {
    kind: RuleKind,
    id: String,
    /// `enabled`, `actions`, or none for the rule itself.
    part: Option<String>,
    query: String,
    bytes: Bytes,
}

fn one_rule(
    services: &Services,
    session: &Session,
    method: http::Method,
    request: RuleRequest,
) -> Result<Value> {
    let user = &session.user_id;
    let not_found = || Error::not_found(format!("no push rule {}", request.id));
    if method == http::Method::GET {
        let rules = ruleset(&services.rooms, user)?;
        let found = rules.get(request.kind.clone(), &request.id);
        let found = found.ok_or_else(not_found)?;
        return match request.part.as_deref() {
            None => rule_json(found),
            Some("enabled") => Ok(json!({"enabled": found.enabled()})),
            Some("actions") => Ok(json!({"actions": found.actions()})),
            _ => Err(Error::unrecognized("no such push rule endpoint")),
        };
    }
    edit(&services.accounts, &services.rooms, user, |rules| {
        match (&method, request.part.as_deref()) {
            (&http::Method::DELETE, None) => rules
                .remove(request.kind.clone(), &request.id)
                .map_err(|e| refusal(e.to_string(), not_found)),
            (&http::Method::PUT, None) => put_rule(rules, &request),
            (&http::Method::PUT, Some("enabled")) => {
                let enabled: bool = field(&request.bytes, "enabled")?;
                rules
                    .set_enabled(request.kind.clone(), &request.id, enabled)
                    .map_err(|_| not_found())
            }
            (&http::Method::PUT, Some("actions")) => {
                let actions: Vec<Action> = field(&request.bytes, "actions")?;
                rules
                    .set_actions(request.kind.clone(), &request.id, actions)
                    .map_err(|_| not_found())
            }
            _ => Err(Error::unrecognized("no such push rule endpoint")),
        }
        .map(|()| true)
    })?;
    Ok(json!({}))
}

/// A removal refused: 404 when the rule is missing, 400 otherwise.
fn refusal(message: String, not_found: impl Fn() -> Error) -> Error {
    if message.contains("not found") {
        not_found()
    } else {
        Error::invalid_param(message)
    }
}

/// `PUT …/{kind}/{ruleId}`: a new or replaced rule of the user's, placed
/// by `before`/`after`.
fn put_rule(rules: &mut Ruleset, request: &RuleRequest) -> Result<()> {
    let actions: Vec<Action> = field(&request.bytes, "actions")?;
    let id = request.id.clone();
    let new = match request.kind {
        RuleKind::Override | RuleKind::Underride => {
            let conditions: Vec<PushCondition> =
                optional_field(&request.bytes, "conditions")?.unwrap_or_default();
            let rule = NewConditionalPushRule::new(id, conditions, actions);
            if request.kind == RuleKind::Override {
                NewPushRule::Override(rule)
            } else {
                NewPushRule::Underride(rule)
            }
        }
        RuleKind::Content => {
            let pattern: String = field(&request.bytes, "pattern")?;
            NewPushRule::Content(NewPatternedPushRule::new(id, pattern, actions))
        }
        RuleKind::Room => {
            let room: OwnedRoomId = crate::request::parsed("ruleId", &id)?;
            NewPushRule::Room(NewSimplePushRule::new(room, actions))
        }
        RuleKind::Sender => {
            let user: OwnedUserId = crate::request::parsed("ruleId", &id)?;
            NewPushRule::Sender(NewSimplePushRule::new(user, actions))
        }
        _ => return Err(Error::invalid_param("unknown push rule kind")),
    };
    let before = param(&request.query, "before");
    let after = param(&request.query, "after");
    rules
        .insert(new, after.as_deref(), before.as_deref())
        .map_err(|e| Error::invalid_param(e.to_string()))
}

fn field<T: DeserializeOwned>(bytes: &Bytes, name: &str) -> Result<T> {
    optional_field(bytes, name)?.ok_or_else(|| Error::bad_json(format!("{name} is required")))
}

fn optional_field<T: DeserializeOwned>(bytes: &Bytes, name: &str) -> Result<Option<T>> {
    let mut request: Value = body(bytes)?;
    match request.get_mut(name).map(Value::take) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| Error::bad_json(format!("{name}: {e}"))),
    }
}

fn to_value(rules: Ruleset) -> Result<Value> {
    serde_json::to_value(rules).map_err(|e| Error::internal(e.to_string()))
}
