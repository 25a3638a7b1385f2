//! `hearth federation-check <server_name>`: a built-in federation tester.
//! Shows how a name resolves (well-known, SRV, addresses), which
//! certificate each address presents and whether it is valid for the name,
//! the server's version, and whether its keys fetch and verify.

use std::time::{Duration, UNIX_EPOCH};

use ruma::{CanonicalJsonObject, ServerName};
use serde::Serialize;
use tokio_rustls::TlsConnector;

use crate::{
    config::Config,
    keys::remote::check_key_response,
    net::{
        dns::Endpoints,
        https::{dial, HttpsClient, Resolution},
    },
};

#[derive(Debug, Serialize)]
pub struct Report {
    pub server_name: String,
    pub resolution: Resolution,
    pub endpoints: Result<Endpoints, String>,
    pub connections: Vec<ConnectionReport>,
    pub version: Result<String, String>,
    pub keys: Result<Vec<KeyReport>, String>,
    pub ok: bool,
    pub verdict: String,
}

#[derive(Debug, Serialize)]
pub struct ConnectionReport {
    pub address: String,
    /// SHA-256 of the presented leaf certificate.
    pub certificate_sha256: Option<String>,
    /// Whether the chain is valid for the name, or why not.
    pub certificate: Result<String, String>,
}

#[derive(Debug, Serialize)]
pub struct KeyReport {
    pub key_id: String,
    pub valid_until_ts: u64,
    pub expired_ts: Option<u64>,
}

/// Runs every check; never fails itself, the report says what failed.
pub async fn run(config: &Config, client: &HttpsClient, server: &ServerName) -> Report {
    let resolution = client.resolve(server).await;
    let endpoints = client.dns().endpoints(&resolution.authority).await;
    let connections = match &endpoints {
        Ok(endpoints) => inspect_all(config, client, endpoints).await,
        Err(_) => Vec::new(),
    };
    let version = crate::peers::version::fetch(client, server).await;
    let keys = fetch_keys(client, server).await;
    let mut report = Report {
        server_name: server.to_string(),
        resolution,
        endpoints,
        connections,
        version,
        keys,
        ok: false,
        verdict: String::new(),
    };
    (report.ok, report.verdict) = verdict(&report, config.federation.verify_certificates);
    report
}

async fn inspect_all(
    config: &Config,
    client: &HttpsClient,
    endpoints: &Endpoints,
) -> Vec<ConnectionReport> {
    let mut reports = Vec::new();
    for address in &endpoints.addresses {
        reports.push(inspect(config, client, &endpoints.tls_name, *address).await);
    }
    reports
}

/// Connects to one address and judges the certificate it presents.
async fn inspect(
    config: &Config,
    client: &HttpsClient,
    name: &str,
    address: std::net::SocketAddr,
) -> ConnectionReport {
    let mut report = ConnectionReport {
        address: address.to_string(),
        certificate_sha256: None,
        certificate: Err(String::new()),
    };
    let handshake = async {
        let stream = dial(client.policy(), name, &[address])
            .await
            .map_err(|e| e.to_string())?;
        let tls = TlsConnector::from(std::sync::Arc::new(
            crate::net::tls::inspecting_client_config()?,
        ));
        let sni =
            rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        let stream = tls
            .connect(sni, stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let chain: Vec<_> = stream
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        Ok::<_, String>(chain)
    };
    match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Err(_) => report.certificate = Err("timed out".into()),
        Ok(Err(e)) => report.certificate = Err(e),
        Ok(Ok(chain)) => {
            report.certificate_sha256 = chain
                .first()
                .map(|leaf| hex(ring::digest::digest(&ring::digest::SHA256, leaf).as_ref()));
            report.certificate = crate::net::tls::judge_chain(
                config.federation.extra_ca_file.as_deref(),
                name,
                &chain,
            )
            .map(|()| format!("valid for {name}"));
        }
    }
    report
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn fetch_keys(client: &HttpsClient, server: &ServerName) -> Result<Vec<KeyReport>, String> {
    let response = client
        .get_now(server, "/_matrix/key/v2/server")
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!("answered {}", response.status));
    }
    let object: CanonicalJsonObject =
        serde_json::from_slice(&response.body).map_err(|e| format!("not a JSON object: {e}"))?;
    let keys = check_key_response(server, &object)?;
    Ok(keys
        .into_iter()
        .map(|(key_id, key)| KeyReport {
            key_id,
            valid_until_ts: key.valid_until_ts,
            expired_ts: key.expired_ts,
        })
        .collect())
}

fn verdict(report: &Report, certificates_matter: bool) -> (bool, String) {
    let name = &report.server_name;
    if let Err(e) = &report.endpoints {
        return (false, format!("FAIL: {name} does not resolve: {e}"));
    }
    let reachable = report
        .connections
        .iter()
        .any(|c| c.certificate.is_ok() || (!certificates_matter && c.certificate_sha256.is_some()));
    if !reachable {
        let why = report
            .connections
            .iter()
            .map(|c| {
                format!(
                    "{}: {}",
                    c.address,
                    c.certificate.as_ref().err().map_or("", |e| e.as_str())
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return (
            false,
            format!("FAIL: no address of {name} presents a valid certificate ({why})"),
        );
    }
    match (&report.version, &report.keys) {
        (Err(e), _) => (false, format!("FAIL: /version of {name}: {e}")),
        (_, Err(e)) => (false, format!("FAIL: keys of {name}: {e}")),
        (Ok(version), Ok(keys)) => {
            let ids: Vec<&str> = keys
                .iter()
                .filter(|k| k.expired_ts.is_none())
                .map(|k| k.key_id.as_str())
                .collect();
            (
                true,
                format!(
                    "OK: {name} federates ({version} at {}, keys {})",
                    report.resolution.authority,
                    ids.join(", ")
                ),
            )
        }
    }
}

impl Report {
    /// The human-readable report, one step a line, ending with the verdict.
    pub fn to_text(&self) -> String {
        let mut out = vec![format!("Federation check of {}", self.server_name)];
        out.push(format!("  well-known   {}", self.resolution.well_known));
        out.push(format!("  authority    {}", self.resolution.authority));
        match &self.endpoints {
            Ok(endpoints) => {
                out.extend(
                    endpoints
                        .steps
                        .iter()
                        .map(|s| format!("  dns          {s}")),
                );
                out.push(format!(
                    "  certificate  must be valid for {}",
                    endpoints.tls_name
                ));
            }
            Err(e) => out.push(format!("  dns          FAILED: {e}")),
        }
        for c in &self.connections {
            let result = match &c.certificate {
                Ok(ok) => ok.clone(),
                Err(e) => format!("INVALID: {e}"),
            };
            let fingerprint = c
                .certificate_sha256
                .as_deref()
                .map(|f| format!(" sha256 {f}"))
                .unwrap_or_default();
            out.push(format!(
                "  connect      {}: {result}{fingerprint}",
                c.address
            ));
        }
        out.push(match &self.version {
            Ok(v) => format!("  version      {v}"),
            Err(e) => format!("  version      FAILED: {e}"),
        });
        match &self.keys {
            Ok(keys) => out.extend(keys.iter().map(|k| {
                let until =
                    UNIX_EPOCH + Duration::from_millis(k.expired_ts.unwrap_or(k.valid_until_ts));
                let state = if k.expired_ts.is_some() {
                    "expired"
                } else {
                    "valid until"
                };
                format!(
                    "  key          {} {state} {} (signature verified)",
                    k.key_id,
                    httpdate::fmt_http_date(until)
                )
            })),
            Err(e) => out.push(format!("  keys         FAILED: {e}")),
        }
        out.push(self.verdict.clone());
        out.join("\n")
    }
}
