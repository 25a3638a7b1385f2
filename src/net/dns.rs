//! From an authority (`host`, `host:port` or an IP literal, as left by the
//! well-known step) to the addresses to dial, through hickory-resolver.
//! Spec: server-server-api.md "Resolving server names", steps 1, 2, 3.1-3.5
//! and 4-6: once the well-known step is done, what to do depends only on
//! the authority, which is also the `Host` header and certificate name.
//! DNS answers are cached by hickory for their TTLs.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use hickory_resolver::{
    config::{NameServerConfig, ResolverConfig, ResolverOpts},
    net::runtime::TokioRuntimeProvider,
    proto::rr::RData,
    TokioResolver,
};

pub const DEFAULT_PORT: u16 = 8448;

/// Where an authority leads: the name its certificate must carry, and the
/// addresses to try in order, with how each step went (for diagnostics).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Endpoints {
    pub tls_name: String,
    pub addresses: Vec<SocketAddr>,
    pub steps: Vec<String>,
}

/// Splits `host[:port]` (IPv6 literals in brackets).
pub fn split_authority(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{authority:?}: unclosed ["))?;
        (ip.to_owned(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("{authority:?}: bad port {p:?}"))
        })
        .transpose()?;
    if host.is_empty() {
        return Err(format!("{authority:?}: empty host"));
    }
    Ok((host, port))
}

pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// Uses `nameservers` (`ip:port`) when given, else the system's resolv.conf.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| {
                format!(
                    "cannot read the system DNS configuration ({e}); set federation.nameservers"
                )
            })?
        } else {
            let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
            for server in nameservers {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut name_server.connections {
                    connection.port = server.port();
                }
                config.add_name_server(name_server);
            }
            TokioResolver::builder_with_config(config, provider)
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        options.cache_size = 1024;
        // Server names are fully qualified: never append search domains.
        options.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| format!("cannot build DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }

    /// Resolves an authority to the certificate name and addresses to try.
    pub async fn endpoints(&self, authority: &str) -> Result<Endpoints, String> {
        let (host, port) = split_authority(authority)?;
        let mut out = Endpoints {
            tls_name: host.clone(),
            ..Endpoints::default()
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, port.unwrap_or(DEFAULT_PORT));
            out.steps
                .push(format!("{authority} is an IP literal: {addr}"));
            out.addresses.push(addr);
            return Ok(out);
        }
        if let Some(port) = port {
            out.steps.push(format!(
                "{authority} has an explicit port: address lookup of {host}"
            ));
            let ips = self.addresses(&host, &mut out.steps).await?;
            out.addresses
                .extend(ips.into_iter().map(|ip| SocketAddr::new(ip, port)));
            return Ok(out);
        }
        for service in ["_matrix-fed._tcp", "_matrix._tcp"] {
            let targets = self
                .srv(&format!("{service}.{host}"), &mut out.steps)
                .await?;
            if !targets.is_empty() {
                for (target, target_port) in targets {
                    match self.addresses(&target, &mut out.steps).await {
                        Ok(ips) => out
                            .addresses
                            .extend(ips.into_iter().map(|ip| SocketAddr::new(ip, target_port))),
                        Err(e) => out.steps.push(e),
                    }
                }
                if out.addresses.is_empty() {
                    return Err(format!(
                        "no SRV target of {service}.{host} resolved to an address"
                    ));
                }
                return Ok(out);
            }
        }
        out.steps.push(format!(
            "no SRV records: address lookup of {host}, port {DEFAULT_PORT}"
        ));
        let ips = self.addresses(&host, &mut out.steps).await?;
        out.addresses
            .extend(ips.into_iter().map(|ip| SocketAddr::new(ip, DEFAULT_PORT)));
        Ok(out)
    }

    /// SRV targets, best first (lowest priority, then highest weight).
    /// A target of "." means the service is explicitly not offered.
    async fn srv(&self, name: &str, steps: &mut Vec<String>) -> Result<Vec<(String, u16)>, String> {
        let lookup = match self.resolver.srv_lookup(format!("{name}.")).await {
            Ok(lookup) => lookup,
            Err(e) => {
                steps.push(format!("SRV {name}: none ({e})"));
                return Ok(Vec::new());
            }
        };
        let mut records: Vec<_> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(srv.clone()),
                _ => None,
            })
            .collect();
        records.sort_by_key(|srv| (srv.priority, std::cmp::Reverse(srv.weight)));
        if records.iter().any(|srv| srv.target.is_root()) {
            return Err(format!(
                "SRV {name} has target \".\": the service is not available there"
            ));
        }
        let targets: Vec<(String, u16)> = records
            .iter()
            .map(|srv| {
                (
                    srv.target.to_utf8().trim_end_matches('.').to_owned(),
                    srv.port,
                )
            })
            .collect();
        let shown: Vec<String> = targets.iter().map(|(t, p)| format!("{t}:{p}")).collect();
        steps.push(format!("SRV {name}: {}", shown.join(", ")));
        Ok(targets)
    }

    /// AAAA and A records of `host`.
    pub async fn addresses(
        &self,
        host: &str,
        steps: &mut Vec<String>,
    ) -> Result<Vec<IpAddr>, String> {
        let lookup = self
            .resolver
            .lookup_ip(format!("{host}."))
            .await
            .map_err(|e| format!("address lookup of {host} failed: {e}"))?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(format!("{host} has no A or AAAA records"));
        }
        let shown: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        steps.push(format!("{host} has addresses {}", shown.join(", ")));
        Ok(ips)
    }
}

#[cfg(test)]
mod tests;
