//! `POST push/test` (`{"user_id"}`): a test notification to each of a
//! user's pushers, and each gateway's answer; `hearth push test USER`
//! through the running server (it alone holds the pushers and reaches the
//! gateways).

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    error::Error,
    http_util::{body_limited, ok_json, reply},
    push::PushService,
};

pub fn routes(push: Arc<PushService>) -> BoxedFilter<(Response,)> {
    warp::path!("push" / "test")
        .and(warp::post())
        .and(body_limited())
        .then(move |body: Bytes| {
            let push = push.clone();
            async move {
                let test = async {
                    let body: Value = serde_json::from_slice(&body)
                        .map_err(|e| Error::bad_json(e.to_string()))?;
                    let user = crate::request::user_id(body["user_id"].as_str().unwrap_or(""))?;
                    let answers = push.test(&user).await?;
                    let answers: Vec<Value> = answers
                        .into_iter()
                        .map(|(app_id, pushkey, answer)| {
                            json!({"app_id": app_id, "pushkey": pushkey, "answer": answer})
                        })
                        .collect();
                    Ok(ok_json(&json!({ "pushers": answers })))
                };
                reply(test.await)
            }
        })
        .boxed()
}

/// `hearth push test USER`: what to print.
pub async fn cli(config: &crate::config::Config, user: &str) -> Result<String, String> {
    let body = json!({ "user_id": user });
    let (status, answer) = super::client::ask_running(
        config,
        http::Method::POST,
        "/_hearth/admin/v1/push/test",
        Some(body),
    )
    .await
    .map_err(|e| format!("{e} (push test needs the running server)"))?;
    if status != 200 {
        return Err(format!("the running server refused: {status} {answer}"));
    }
    let pushers = answer["pushers"].as_array().cloned().unwrap_or_default();
    if pushers.is_empty() {
        return Ok(format!("{user} has no pushers"));
    }
    Ok(pushers
        .iter()
        .map(|p| {
            format!(
                "{} {}: {}",
                p["app_id"].as_str().unwrap_or(""),
                p["pushkey"].as_str().unwrap_or(""),
                p["answer"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}
