//! The first checks performed on receipt of a PDU: format and size,
//! signatures (with the room version's key-validity rule), and the content
//! hash (an event whose hash does not match is redacted and kept), plus the
//! event ID each room version derives.
//! Spec: server-server-api.md "Checks performed on receipt of a PDU" and
//! "Validating hashes and signatures on received events"; rooms/v1..v12
//! "Event IDs" and "Signing key validity period" (v5+).

use std::collections::BTreeMap;

use ruma::{
    canonical_json::redact,
    room_version_rules::{EventIdFormatVersion, RoomVersionRules},
    serde::{base64::Standard, Base64},
    signatures::{
        required_server_signatures_to_verify_event, verify_event, PublicKeyMap, Verified,
    },
    state_res::check_pdu_format,
    CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, RoomVersionId, ServerName,
};

use crate::keys::{remote::KeyUse, KeyService};

/// A PDU that passed format, signature and hash checks.
#[derive(Debug, Clone)]
pub struct CheckedPdu {
    pub event_id: OwnedEventId,
    /// As received, or redacted when the content hash did not match.
    pub object: CanonicalJsonObject,
    pub redacted_for_hash_mismatch: bool,
}

/// Why a PDU was refused before any authorization check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn rules(room_version: &RoomVersionId) -> Result<RoomVersionRules, Refused> {
    room_version
        .rules()
        .ok_or_else(|| Refused(format!("room version {room_version} is not supported")))
}

/// The event ID: sent in the event for v1 and v2, else `$` and the
/// reference hash (standard base64 in v3, URL-safe from v4).
pub fn event_id(
    object: &CanonicalJsonObject,
    rules: &RoomVersionRules,
) -> Result<OwnedEventId, Refused> {
    let id = match rules.event_id_format {
        EventIdFormatVersion::V1 => match object.get("event_id") {
            Some(CanonicalJsonValue::String(id)) => id.clone(),
            _ => return Err(Refused("event_id is missing".into())),
        },
        _ => {
            let hash = ruma::signatures::reference_hash(object, rules)
                .map_err(|e| Refused(format!("reference hash: {e}")))?;
            format!("${hash}")
        }
    };
    OwnedEventId::try_from(id.as_str()).map_err(|e| Refused(format!("event ID {id:?}: {e}")))
}

/// Checks signatures and hashes against keys already gathered.
pub fn verify_with_keys(
    object: CanonicalJsonObject,
    rules: &RoomVersionRules,
    keys: &PublicKeyMap,
) -> Result<CheckedPdu, Refused> {
    check_pdu_format(&object, &rules.event_format)
        .map_err(|e| Refused(format!("bad format: {e}")))?;
    verify_formatted(object, rules, keys, None)
}

/// [`verify_with_keys`] for an event whose format was checked (and whose
/// ID may be known): each serialisation of a PDU costs as much as a
/// tenth of its signature check, so none is done twice.
fn verify_formatted(
    object: CanonicalJsonObject,
    rules: &RoomVersionRules,
    keys: &PublicKeyMap,
    known_id: Option<OwnedEventId>,
) -> Result<CheckedPdu, Refused> {
    let event_id = match known_id {
        Some(id) => id,
        None => event_id(&object, rules)?,
    };
    match verify_event(keys, &object, rules) {
        Ok(Verified::All) => Ok(CheckedPdu {
            event_id,
            object,
            redacted_for_hash_mismatch: false,
        }),
        Ok(Verified::Signatures) => {
            let object = redact(object, &rules.redaction, None)
                .map_err(|e| Refused(format!("cannot redact: {e}")))?;
            Ok(CheckedPdu {
                event_id,
                object,
                redacted_for_hash_mismatch: true,
            })
        }
        Err(e) => Err(Refused(format!("signature check failed: {e}"))),
    }
}

/// The full check: gathers the public keys of every server that must have
/// signed (usable at the event's `origin_server_ts` from room version 5),
/// then verifies. Format is checked first so junk costs no key fetch.
pub async fn check(
    keys: &KeyService,
    room_version: &RoomVersionId,
    object: CanonicalJsonObject,
) -> Result<CheckedPdu, Refused> {
    check_as(keys, room_version, object, None).await
}

/// [`check`] for an event whose ID the caller already derived.
pub async fn check_as(
    keys: &KeyService,
    room_version: &RoomVersionId,
    object: CanonicalJsonObject,
    known_id: Option<OwnedEventId>,
) -> Result<CheckedPdu, Refused> {
    let rules = rules(room_version)?;
    check_pdu_format(&object, &rules.event_format)
        .map_err(|e| Refused(format!("bad format: {e}")))?;
    let purpose = if rules.enforce_key_validity {
        let ts = match object.get("origin_server_ts") {
            Some(CanonicalJsonValue::Integer(ts)) => u64::try_from(i64::from(*ts)).unwrap_or(0),
            _ => return Err(Refused("origin_server_ts is missing".into())),
        };
        KeyUse::EventAt(ts)
    } else {
        KeyUse::Ever
    };
    let servers = required_server_signatures_to_verify_event(&object, &rules.signatures)
        .map_err(|e| Refused(format!("cannot tell who must sign: {e}")))?;
    let mut map = PublicKeyMap::new();
    for server in servers {
        map.insert(
            server.to_string(),
            server_keys(keys, &object, &server, purpose).await?,
        );
    }
    verify_formatted(object, &rules, &map, known_id)
}

/// Whether `server`, which the auth rules do not require (an invited
/// user's server co-signing its invite), validly signed the event just
/// now: with a key valid today.
pub async fn check_signed_by(
    keys: &KeyService,
    rules: &RoomVersionRules,
    object: &CanonicalJsonObject,
    server: &ServerName,
) -> Result<(), Refused> {
    let usable = server_keys(keys, object, server, KeyUse::Request).await?;
    let mut redacted = redact(object.clone(), &rules.redaction, None)
        .map_err(|e| Refused(format!("cannot redact: {e}")))?;
    // ruma checks every signer present: keep only the one asked about.
    if let Some(CanonicalJsonValue::Object(all)) = redacted.get_mut("signatures") {
        all.retain(|signer, _| signer == server.as_str());
    }
    let map = PublicKeyMap::from([(server.to_string(), usable)]);
    ruma::signatures::verify_json(&map, &redacted)
        .map_err(|e| Refused(format!("signature of {server}: {e}")))
}

/// The usable keys of `server` among those it signed `object` with.
async fn server_keys(
    keys: &KeyService,
    object: &CanonicalJsonObject,
    server: &ServerName,
    purpose: KeyUse,
) -> Result<BTreeMap<String, Base64>, Refused> {
    let signed_with: Vec<String> = match object.get("signatures") {
        Some(CanonicalJsonValue::Object(all)) => match all.get(server.as_str()) {
            Some(CanonicalJsonValue::Object(by_key)) => by_key
                .keys()
                .filter(|k| k.starts_with("ed25519:"))
                .cloned()
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let mut usable = BTreeMap::new();
    let mut problems = Vec::new();
    for key_id in signed_with {
        match keys.remote_key(server, &key_id, purpose).await {
            Ok(key) => match Base64::<Standard, Vec<u8>>::parse(&key) {
                Ok(key) => {
                    usable.insert(key_id, key);
                }
                Err(e) => problems.push(format!("{key_id}: {e}")),
            },
            Err(e) => problems.push(e.message),
        }
    }
    if usable.is_empty() {
        let why = if problems.is_empty() {
            "no ed25519 signature".to_owned()
        } else {
            problems.join("; ")
        };
        return Err(Refused(format!("no usable signature by {server}: {why}")));
    }
    Ok(usable)
}

#[cfg(test)]
mod tests;
