//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the
//! receiver verifies `webhook-signature` = `v1,` + base64 of
//! HMAC-SHA256(secret, `{webhook-id}.{webhook-timestamp}.{body}`), where the
//! secret is the base64 after `whsec_`.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A webhook endpoint's signing secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>` (the form the specification's libraries
    /// generate and take).
    pub fn parse(s: &str) -> Result<Secret, String> {
        let b64 = s.strip_prefix("whsec_").ok_or("must start with whsec_ (a Standard Webhooks secret)")?;
        let key = STANDARD.decode(b64).map_err(|e| format!("not base64 after whsec_: {e}"))?;
        if key.len() < 16 {
            return Err(format!("the key is {} bytes; at least 16 are required", key.len()));
        }
        Ok(Secret(key))
    }

    /// The `webhook-signature` header value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The example of the Standard Webhooks reference libraries' tests.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(Secret::parse("whsec_!!!").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
    }
}
