//! `GET appservices`: each application service with its queue and how
//! delivery goes; `hearth appservice status` (alias `list`) prints it
//! through the running server; `hearth appservice check FILE` reads a
//! registration file as the server would, before it is added.

use std::{path::Path, sync::Arc};

use serde_json::{json, Value};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{appservices::AppserviceService, http_util::ok_json};

pub fn routes(appservices: Arc<AppserviceService>) -> BoxedFilter<(Response,)> {
    warp::path!("appservices")
        .and(warp::get())
        .map(move || ok_json(&json!({ "appservices": appservices.status() })))
        .boxed()
}

/// `hearth appservice status`: one line per application service.
pub async fn status_cli(config: &crate::config::Config) -> Result<String, String> {
    let (status, answer) = super::client::ask_running(
        config,
        http::Method::GET,
        "/_hearth/admin/v1/appservices",
        None,
    )
    .await
    .map_err(|e| format!("{e} (appservice status needs the running server)"))?;
    if status != 200 {
        return Err(format!("the running server refused: {status} {answer}"));
    }
    let list = answer["appservices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        return Ok("no application services are registered".into());
    }
    Ok(list.iter().map(line).collect::<Vec<_>>().join("\n"))
}

fn line(a: &Value) -> String {
    let mut text = format!(
        "{} {}: {} queued, {} transactions ({} entries) sent",
        a["id"].as_str().unwrap_or(""),
        a["url"].as_str().unwrap_or("(no url: nothing pushed)"),
        a["queued"],
        a["transactions_sent"],
        a["events_sent"],
    );
    if let Some(ms) = a["oldest_queued_ms"].as_u64() {
        text.push_str(&format!(" (oldest event {}s old)", age_secs(ms)));
    }
    if let Some(ms) = a["last_success_ms"].as_u64() {
        text.push_str(&format!(", last success {}s ago", age_secs(ms)));
    }
    if let Some(failures) = a["failures"].as_u64().filter(|f| *f > 0) {
        text.push_str(&format!(
            ", failing ({failures} attempts, since {}s ago): {}",
            a["failing_since_ms"].as_u64().map_or(0, age_secs),
            a["last_error"].as_str().unwrap_or("")
        ));
    }
    text
}

fn age_secs(ms: u64) -> u64 {
    crate::time::now_ms().saturating_sub(ms) / 1000
}

/// `hearth appservice check FILE`: the file read and checked alone and
/// beside those already configured (IDs, tokens and namespaces clash).
pub fn check_cli(config: &crate::config::Config, file: &Path) -> Result<String, String> {
    let mut section = config.appservice.clone();
    if !section.registrations.iter().any(|f| f == file) {
        section.registrations.push(file.to_owned());
    }
    let loaded = crate::config::appservices::Appservices::load(&section, &config.server_name)?;
    let checked = loaded
        .all()
        .iter()
        .find(|a| a.file == file)
        .ok_or_else(|| format!("{} was not read", file.display()))?;
    Ok(format!(
        "{}: application service {:?} acting as {}, {} user, {} alias and {} room namespaces; \
         pushes to {}",
        file.display(),
        checked.id,
        checked.sender,
        checked.users.len(),
        checked.aliases.len(),
        checked.rooms.len(),
        checked.url.as_deref().unwrap_or("nothing (url: null)")
    ))
}
