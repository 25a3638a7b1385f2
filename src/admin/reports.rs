//! Reports for the admin: `GET reports` (every one, oldest first) and
//! `POST reports/{id}/dismiss`; `hearth reports [dismiss ID]` through the
//! running server, or on a stopped server's data directory.

use std::sync::Arc;

use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    http_util::{ok_json, reply},
    reports::ReportService,
    store::reports::Report,
};

pub fn routes(reports: Arc<ReportService>) -> BoxedFilter<(Response,)> {
    let service = reports.clone();
    let list = warp::path!("reports").and(warp::get()).map(move || {
        reply(service.all().map(|all| {
            let all: Vec<_> = all
                .into_iter()
                .map(|(id, report)| json!({"id": id, "report": report}))
                .collect();
            ok_json(&json!({ "reports": all }))
        }))
    });
    let dismiss = warp::path!("reports" / u64 / "dismiss")
        .and(warp::post())
        .map(move |id: u64| reply(reports.dismiss(id).map(|()| ok_json(&json!({})))));
    list.or(dismiss).unify().boxed()
}

/// `hearth reports` (None) or `hearth reports dismiss ID`; what to print.
pub async fn cli(config: &crate::config::Config, dismiss: Option<u64>) -> Result<String, String> {
    use crate::store::{OpenError, Store};
    match Store::open(&config.data_dir) {
        Ok(store) => match dismiss {
            Some(id) => match store.reports.remove(id).map_err(|e| e.to_string())? {
                true => Ok(format!("report {id} dismissed")),
                false => Err(format!("no report {id}")),
            },
            None => Ok(to_text(&store.reports.all().map_err(|e| e.to_string())?)),
        },
        Err(OpenError::Locked) => online(config, dismiss).await,
        Err(e) => Err(e.to_string()),
    }
}

async fn online(config: &crate::config::Config, dismiss: Option<u64>) -> Result<String, String> {
    use http::Method;
    let (method, path) = match dismiss {
        Some(id) => (
            Method::POST,
            format!("/_hearth/admin/v1/reports/{id}/dismiss"),
        ),
        None => (Method::GET, "/_hearth/admin/v1/reports".to_owned()),
    };
    let body = dismiss.map(|_| json!({}));
    let (status, answer) = super::client::ask_running(config, method, &path, body).await?;
    if status != 200 {
        return Err(format!("the running server refused: {status} {answer}"));
    }
    if let Some(id) = dismiss {
        return Ok(format!("report {id} dismissed"));
    }
    let reports: Vec<(u64, Report)> = answer["reports"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|r| {
                    Some((
                        r["id"].as_u64()?,
                        serde_json::from_value(r["report"].clone()).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(to_text(&reports))
}

fn to_text(reports: &[(u64, Report)]) -> String {
    if reports.is_empty() {
        return "no reports".into();
    }
    reports
        .iter()
        .map(|(id, r)| {
            let subject = match (&r.event_id, &r.room_id, &r.user_id) {
                (Some(event), Some(room), _) => format!("event {event} in {room}"),
                (None, Some(room), _) => format!("room {room}"),
                (_, _, Some(user)) => format!("user {user}"),
                _ => "?".into(),
            };
            format!("{id}: {} reported {subject}: {:?}", r.reporter, r.reason)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
