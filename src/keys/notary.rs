//! Answering key queries for other servers (we act as a notary).
//! Spec: server-server-api.md "Querying Keys Through Another Server".

use futures_util::{stream, StreamExt};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, ServerName};

use super::{remote::Route, KeyService};
use crate::{error::Result, store::StoredKeyResponse, time::now_ms};

/// Servers looked up at once for one batch query.
const BATCH_CONCURRENCY: usize = 8;

fn valid_until(response: &CanonicalJsonObject) -> u64 {
    match response.get("valid_until_ts") {
        Some(CanonicalJsonValue::Integer(i)) => u64::try_from(i64::from(*i)).unwrap_or(0),
        _ => 0,
    }
}

/// A cached response is served for half of the lifetime it had when fetched.
fn is_fresh(cached: &StoredKeyResponse, minimum_valid_until_ts: u64, now: u64) -> bool {
    let until = valid_until(&cached.response);
    let half_life = until.saturating_sub(cached.fetched_ts) / 2;
    now < cached.fetched_ts.saturating_add(half_life) && until >= minimum_valid_until_ts
}

impl KeyService {
    /// `server`'s key response countersigned by us, or `None` if we have
    /// never been able to get one. When the server cannot be reached the
    /// last response we received is returned, so old signatures stay
    /// checkable; so it is when `may_fetch` says the asker has made us
    /// fetch enough for now (anyone may ask, and each fetch is a request
    /// of ours to a server they name).
    pub async fn notary_lookup(
        &self,
        server: &ServerName,
        minimum_valid_until_ts: Option<u64>,
        may_fetch: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<CanonicalJsonObject>> {
        if server == self.server_name() {
            return self.server_key_response().map(Some);
        }
        let now = now_ms();
        let minimum = minimum_valid_until_ts.unwrap_or(now);
        let cached = self.store.server_keys.response(server)?;
        let chosen = match cached {
            Some(c) if is_fresh(&c, minimum, now) => Some(c),
            cached if !may_fetch() => cached,
            _ => {
                // Gated like every key fetch: a flood of queries for one
                // server costs it at most one request per few seconds.
                if let Err(e) = self.refresh(server, Route::Direct).await {
                    tracing::info!(%server, error = %e, "notary: origin unreachable, serving cache");
                }
                self.store.server_keys.response(server)?
            }
        };
        let Some(StoredKeyResponse { mut response, .. }) = chosen else {
            return Ok(None);
        };
        self.sign_json(&mut response)?;
        Ok(Some(response))
    }

    /// Looks up several servers concurrently, in the order given.
    pub async fn notary_batch(
        &self,
        queries: Vec<(ruma::OwnedServerName, Option<u64>)>,
        may_fetch: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<CanonicalJsonObject>> {
        let results: Vec<Result<Option<CanonicalJsonObject>>> = stream::iter(queries)
            .map(|(server, minimum)| async move {
                self.notary_lookup(&server, minimum, may_fetch).await
            })
            .buffered(BATCH_CONCURRENCY)
            .collect()
            .await;
        let mut responses = Vec::new();
        for result in results {
            responses.extend(result?);
        }
        Ok(responses)
    }
}

#[cfg(test)]
mod tests;
