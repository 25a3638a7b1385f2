//! A server's name and version, asked without signing: diagnostics
//! (`hearth federation-check`) ask before trusting the server's keys.
//! Spec: server-server-api.md "Server implementation"; version.yaml.

use ruma::ServerName;

use crate::net::https::HttpsClient;

/// `GET /v1/version`, as "name version".
pub async fn fetch(client: &HttpsClient, server: &ServerName) -> Result<String, String> {
    let response = client
        .get_now(server, "/_matrix/federation/v1/version")
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!("answered {}", response.status));
    }
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|e| format!("not JSON: {e}"))?;
    let name = body["server"]["name"].as_str().unwrap_or("unknown");
    let version = body["server"]["version"].as_str().unwrap_or("unknown");
    Ok(format!("{name} {version}"))
}
