//! The gateway's own Ed25519 signing key: generated at start, or loaded from a PKCS#8
//! PEM file (`openssl genpkey -algorithm ed25519 -out caller.pem`), so several replicas
//! can share one key and a restart does not change it. The public half is published as a
//! JWKS (`/.well-known/jwks.json`, RFC 8037 `OKP` key, `kid` = its RFC 7638 thumbprint).
//! It signs the verified-caller assertion ([`crate::pipeline::caller`]); a later issue
//! reuses it for sandbox tokens. The gateway holds its keys in a [`crate::signing::KeyRing`].

use data_encoding::{BASE64, BASE64URL_NOPAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// The fixed PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7); the 32-byte seed
/// follows it.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 PEM private key.
    #[error(
        "{0} is not an Ed25519 private key in PKCS#8 PEM (openssl genpkey -algorithm ed25519)"
    )]
    Format(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An Ed25519 key pair.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: Arc<DecodingKey>,
    jwks: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The key in `path`, or a new random one when `path` is `None`.
    pub fn load_or_generate(path: Option<&Path>) -> Result<Self, KeyError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| KeyError::Io {
                    path: p.display().to_string(),
                    source,
                })?;
                let seed = seed_from_pem(&text)
                    .ok_or_else(|| KeyError::Format(p.display().to_string()))?;
                Ok(Self::from_seed(seed))
            }
            None => {
                let mut seed = [0u8; 32];
                rand::rng().fill_bytes(&mut seed);
                Ok(Self::from_seed(seed))
            }
        }
    }

    /// The key pair of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let x = BASE64URL_NOPAD.encode(&public);
        // RFC 7638: the thumbprint over the required members in lexicographic order.
        let thumb = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = BASE64URL_NOPAD.encode(&Sha256::digest(thumb.as_bytes()));
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(&seed);
        let jwks = serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig",
        }]})
        .to_string();
        Self {
            kid,
            encoding: EncodingKey::from_ed_der(&der),
            decoding: Arc::new(DecodingKey::from_ed_der(&public)),
            jwks,
        }
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as one JWK (`OKP`, `Ed25519`, `kid`, `alg`, `use`).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&self.jwks)
            .map(|v| v["keys"][0].clone())
            .unwrap_or_default()
    }

    /// The verification key.
    pub fn decoding_key(&self) -> Arc<DecodingKey> {
        self.decoding.clone()
    }

    /// The public JWKS document.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// A compact JWS (`alg: EdDSA`, this `kid`, `typ`) over `claims`.
    pub fn sign<T: serde::Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

impl SigningKey {
    /// Verifies a token this key signed: signature, `typ`, `aud` and `exp` (no leeway).
    pub fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        aud: &str,
    ) -> Result<T, KeyError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| KeyError::Sign(e.to_string()))?;
        if header.typ.as_deref() != Some(typ) || header.kid.as_deref() != Some(&self.kid) {
            return Err(KeyError::Sign("wrong token type or key".into()));
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = 0;
        v.set_audience(&[aud]);
        v.set_required_spec_claims(&["exp", "aud"]);
        jsonwebtoken::decode::<T>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// The seed of an Ed25519 `PRIVATE KEY` PEM.
fn seed_from_pem(text: &str) -> Option<[u8; 32]> {
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PRIVATE KEY-----")
        .collect();
    let der = BASE64.decode(body.as_bytes()).ok()?;
    let seed = der.strip_prefix(&PKCS8_PREFIX[..])?;
    seed.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn signs_what_its_jwks_verifies_and_loads_openssl_pem() {
        let k = SigningKey::load_or_generate(None).unwrap();
        let t = k
            .sign(
                "x+jwt",
                &serde_json::json!({"sub": "a", "aud": "b", "exp": 4_000_000_000u64}),
            )
            .unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(k.jwks()).unwrap();
        let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&["b"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(&t, &key, &v)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "a");
        // RFC 8037 A.1's key, as `openssl genpkey -algorithm ed25519` writes it.
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
        let seed = seed_from_pem(pem).unwrap();
        let k = SigningKey::from_seed(seed);
        assert!(
            k.jwks()
                .contains("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "{}",
            k.jwks()
        );
        assert_eq!(k.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert!(seed_from_pem("nope").is_none());
    }
}
