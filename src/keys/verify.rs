//! Checking one server's signature on a JSON object.
//!
//! ruma's `verify_json` insists on a key for *every* signer of an object,
//! which does not fit a notary response (signed by the origin and by the
//! notary, checked one at a time), so we check per signer here, over ruma's
//! canonical form, with ring's ed25519.

use ring::signature::{UnparsedPublicKey, ED25519};
use ruma::{
    serde::{base64::Standard, Base64},
    signatures::to_canonical_json_string_for_signing,
    CanonicalJsonObject, CanonicalJsonValue,
};

/// An object prepared for signature checks: its canonical signing form is
/// computed once, however many signatures are checked.
pub struct SignedJson<'a> {
    object: &'a CanonicalJsonObject,
    canonical: String,
}

impl<'a> SignedJson<'a> {
    pub fn new(object: &'a CanonicalJsonObject) -> Result<Self, String> {
        let canonical = to_canonical_json_string_for_signing(object)
            .map_err(|e| format!("cannot canonicalise: {e}"))?;
        Ok(Self { object, canonical })
    }

    /// The key ids `entity` signed with.
    pub fn signers(&self, entity: &str) -> Vec<String> {
        match self.entity_signatures(entity) {
            Some(map) => map.keys().cloned().collect(),
            None => Vec::new(),
        }
    }

    fn entity_signatures(&self, entity: &str) -> Option<&CanonicalJsonObject> {
        match self.object.get("signatures")? {
            CanonicalJsonValue::Object(all) => match all.get(entity)? {
                CanonicalJsonValue::Object(map) => Some(map),
                _ => None,
            },
            _ => None,
        }
    }

    /// Checks `entity`'s signature made with `key_id` against `public_key`
    /// (unpadded base64, as servers publish it).
    pub fn verify(&self, entity: &str, key_id: &str, public_key: &str) -> Result<(), String> {
        let signature = match self.entity_signatures(entity).and_then(|m| m.get(key_id)) {
            Some(CanonicalJsonValue::String(s)) => s,
            Some(_) => return Err(format!("signature {entity}/{key_id} is not a string")),
            None => return Err(format!("no signature by {entity} with {key_id}")),
        };
        let signature = decode(signature).map_err(|e| format!("signature {key_id}: {e}"))?;
        let public_key = decode(public_key).map_err(|e| format!("public key {key_id}: {e}"))?;
        if verify_bytes(&public_key, &signature, self.canonical.as_bytes()) {
            Ok(())
        } else {
            Err(format!(
                "signature by {entity} with {key_id} does not verify"
            ))
        }
    }
}

fn decode(text: &str) -> Result<Vec<u8>, String> {
    Base64::<Standard, Vec<u8>>::parse(text)
        .map(Base64::into_inner)
        .map_err(|e| e.to_string())
}

/// A bare ed25519 check.
pub fn verify_bytes(public_key: &[u8], signature: &[u8], message: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests;
