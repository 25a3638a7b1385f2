//! A stand-in identity server: its key, and the `signed` blocks it gives
//! when an address is bound (for third-party invites).

use serde_json::{json, Value};

pub struct IdentityServer {
    key: ruma::signatures::Ed25519KeyPair,
}

impl IdentityServer {
    pub fn new() -> Self {
        let document = ruma::signatures::Ed25519KeyPair::generate();
        let key = ruma::signatures::Ed25519KeyPair::from_der(&document, "0".into()).expect("key");
        Self { key }
    }

    pub fn public_key(&self) -> String {
        ruma::serde::Base64::<ruma::serde::base64::Standard, _>::new(self.key.public_key().to_vec())
            .encode()
    }

    /// The `signed` block for `mxid` and `token`.
    pub fn sign(&self, mxid: &str, token: &str) -> Value {
        let mut signed: ruma::CanonicalJsonObject =
            serde_json::from_value(json!({"mxid": mxid, "token": token})).expect("object");
        ruma::signatures::sign_json("identity.test", &self.key, &mut signed).expect("sign");
        serde_json::to_value(signed).expect("json")
    }
}
