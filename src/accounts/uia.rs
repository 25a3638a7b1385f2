//! User-interactive authentication sessions: each starts with the
//! request it protects (its method and path, and the user for requests
//! made with an access token) and can complete only that one; it remembers
//! the stages done and the fields of the request that started it (so a
//! registration's second step need not repeat the username and password),
//! and what it produced (so a repeated registration is idempotent).
//! Kept in memory: a restart asks the client to start again, as an
//! expired session would.
//! Spec: client-server-api "User-Interactive Authentication API".

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// How long a session lasts from its start.
const LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Sessions kept at once; past it the oldest go (a stranger can start
/// registrations without limit otherwise).
const MAX_SESSIONS: usize = 10_000;

struct Session {
    operation: String,
    started: Instant,
    completed: Vec<String>,
    params: Map<String, Value>,
    outcome: Option<Value>,
}

/// A request's standing once its stage is complete.
pub struct Passed {
    pub session: String,
    /// The request's fields (except `auth`), over those of earlier
    /// requests in the session.
    pub params: Map<String, Value>,
    /// What an earlier completion of this session produced.
    pub outcome: Option<Value>,
}

/// What the stage's check of an `auth` dict found.
pub enum Verdict {
    Passed,
    Failed(String),
}

#[derive(Default)]
pub struct UiaSessions {
    sessions: Mutex<HashMap<String, Session>>,
}

impl UiaSessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs user-interactive auth for `operation` with one single-stage
    /// flow, `stage`: `verify` checks an `auth` dict of that type. Passes
    /// once the stage is complete in the request's session; else the 401
    /// to answer (with `errcode` only when a given attempt failed).
    pub async fn authenticate<F, Fut>(
        &self,
        operation: &str,
        stage: &str,
        request: &Map<String, Value>,
        verify: F,
    ) -> Result<Passed>
    where
        F: FnOnce(Value) -> Fut,
        Fut: std::future::Future<Output = Result<Verdict>>,
    {
        let auth = request.get("auth").cloned().unwrap_or(Value::Null);
        let (session, done) = self.join(operation, stage, auth.get("session"), request)?;
        if done {
            return self.passed(session);
        }
        let failure = match auth.get("type").and_then(Value::as_str) {
            None => None,
            Some(kind) if kind != stage => {
                Some(format!("this request takes the {stage} stage, not {kind}"))
            }
            Some(_) => match verify(auth).await? {
                Verdict::Passed => {
                    if let Some(s) = self.lock().get_mut(&session) {
                        s.completed.push(stage.to_owned());
                    }
                    return self.passed(session);
                }
                Verdict::Failed(message) => Some(message),
            },
        };
        Err(self.challenge(&session, stage, failure))
    }

    /// Records what the session's operation produced.
    pub fn set_outcome(&self, session: &str, outcome: Value) {
        if let Some(s) = self.lock().get_mut(session) {
            s.outcome = Some(outcome);
        }
    }

    /// The request's session (a new one when it names none), with its
    /// fields merged in, and whether `stage` is complete in it.
    fn join(
        &self,
        operation: &str,
        stage: &str,
        id: Option<&Value>,
        request: &Map<String, Value>,
    ) -> Result<(String, bool)> {
        let fields = request.iter().filter(|(k, _)| *k != "auth");
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.started) < LIFETIME);
        let Some(id) = id else {
            if sessions.len() >= MAX_SESSIONS {
                let oldest = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.started)
                    .map(|(k, _)| k.clone());
                oldest.map(|k| sessions.remove(&k));
            }
            let id = super::random(24);
            sessions.insert(
                id.clone(),
                Session {
                    operation: operation.to_owned(),
                    started: now,
                    completed: Vec::new(),
                    params: fields.map(|(k, v)| (k.clone(), v.clone())).collect(),
                    outcome: None,
                },
            );
            return Ok((id, false));
        };
        let id = id
            .as_str()
            .ok_or_else(|| Error::bad_json("auth.session must be a string"))?;
        let session = sessions.get_mut(id).ok_or_else(|| {
            Error::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("unknown session {id:?}"),
            )
        })?;
        if session.operation != operation {
            return Err(Error::forbidden(
                "that session was started for another request",
            ));
        }
        for (key, value) in fields {
            session.params.insert(key.clone(), value.clone());
        }
        Ok((id.to_owned(), session.completed.iter().any(|s| s == stage)))
    }

    fn passed(&self, session: String) -> Result<Passed> {
        let sessions = self.lock();
        let s = sessions
            .get(&session)
            .ok_or_else(|| Error::internal("session ended while in use"))?;
        Ok(Passed {
            params: s.params.clone(),
            outcome: s.outcome.clone(),
            session,
        })
    }

    /// The 401 that tells the client what to do next.
    fn challenge(&self, session: &str, stage: &str, failure: Option<String>) -> Error {
        let completed = self
            .lock()
            .get(session)
            .map(|s| s.completed.clone())
            .unwrap_or_default();
        let fields = [
            ("flows", json!([{"stages": [stage]}])),
            ("params", json!({})),
            ("session", json!(session)),
            ("completed", json!(completed)),
        ];
        let error = match failure {
            Some(message) => Error::new(StatusCode::UNAUTHORIZED, "M_FORBIDDEN", message),
            None => Error::bare(StatusCode::UNAUTHORIZED),
        };
        fields
            .into_iter()
            .fold(error, |error, (name, value)| error.with_field(name, value))
    }
}
