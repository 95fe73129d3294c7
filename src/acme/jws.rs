//! The JOSE part of RFC 8555 (§6.2) without I/O: the account key as a JWK
//! (RFC 7517, P-256), its thumbprint (RFC 7638) for key authorizations
//! (§8.1), and flattened JWS ES256 request bodies (RFC 7515 §7.2.2,
//! RFC 7518 §3.4: the signature is R‖S, 64 bytes) signed with ring.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

pub fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

/// The account key (PKCS#8 P-256) ready to sign.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl AccountKey {
    pub fn from_pkcs8(der: &[u8]) -> Result<AccountKey, String> {
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| format!("account key: {e}"))?;
        Ok(AccountKey { pair, rng })
    }

    /// RFC 7518 §6.2.1 public key members, in RFC 7638 §3.2 order
    /// (lexicographic, no spaces): the thumbprint input and the `jwk`.
    pub fn jwk_json(&self) -> String {
        // Uncompressed point: 0x04 ‖ X (32) ‖ Y (32).
        let p = self.pair.public_key().as_ref();
        format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(&p[1..33]),
            b64(&p[33..65])
        )
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(canonical JWK)).
    pub fn thumbprint(&self) -> String {
        b64(ring::digest::digest(&ring::digest::SHA256, self.jwk_json().as_bytes()).as_ref())
    }

    /// §8.1: `token.thumbprint`.
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint())
    }

    /// A request body (§6.2): protected header with `alg`, `nonce`, `url`
    /// and either `jwk` (new account, §6.2) or `kid` (the account URL);
    /// `payload` `None` is POST-as-GET (§6.3, empty payload).
    pub fn sign(
        &self,
        url: &str,
        nonce: &str,
        kid: Option<&str>,
        payload: Option<&str>,
    ) -> Result<String, String> {
        let key = match kid {
            Some(k) => format!(r#""kid":{}"#, json_string(k)),
            None => format!(r#""jwk":{}"#, self.jwk_json()),
        };
        let protected = format!(
            r#"{{"alg":"ES256",{key},"nonce":{},"url":{}}}"#,
            json_string(nonce),
            json_string(url)
        );
        let protected = b64(protected.as_bytes());
        let payload = payload.map(|p| b64(p.as_bytes())).unwrap_or_default();
        let signing_input = format!("{protected}.{payload}");
        let sig = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| "signing failed".to_string())?;
        Ok(format!(
            r#"{{"protected":"{protected}","payload":"{payload}","signature":"{}"}}"#,
            b64(sig.as_ref())
        ))
    }
}

/// A JSON string literal (serde_json's escaping).
pub fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn key() -> AccountKey {
        let der = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        AccountKey::from_pkcs8(der.as_ref()).unwrap()
    }

    #[test]
    fn signed_body_verifies_and_names_url_and_nonce() {
        let k = key();
        let body = k
            .sign(
                "https://ca/new-order",
                "n0nce",
                Some("https://ca/acct/1"),
                Some("{}"),
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let prot = v["protected"].as_str().unwrap();
        let payload = v["payload"].as_str().unwrap();
        let header: serde_json::Value = serde_json::from_slice(&B64.decode(prot).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "n0nce");
        assert_eq!(header["url"], "https://ca/new-order");
        assert_eq!(header["kid"], "https://ca/acct/1");
        assert!(header.get("jwk").is_none());
        assert_eq!(B64.decode(payload).unwrap(), b"{}");
        let sig = B64.decode(v["signature"].as_str().unwrap()).unwrap();
        assert_eq!(sig.len(), 64);
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k.pair.public_key().as_ref());
        public
            .verify(format!("{prot}.{payload}").as_bytes(), &sig)
            .unwrap();
        // POST-as-GET: empty payload; a new account carries the JWK.
        let body = k.sign("https://ca/acct", "n", None, None).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["payload"], "");
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(v["protected"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(header["jwk"]["kty"], "EC");
        assert_eq!(header["jwk"]["crv"], "P-256");
    }

    #[test]
    fn thumbprint_is_sha256_of_the_canonical_jwk() {
        let k = key();
        let j = k.jwk_json();
        assert!(j.starts_with(r#"{"crv":"P-256","kty":"EC","x":""#));
        assert_eq!(B64.decode(k.thumbprint()).unwrap().len(), 32);
        assert_eq!(
            k.key_authorization("tok"),
            format!("tok.{}", k.thumbprint())
        );
    }
}
