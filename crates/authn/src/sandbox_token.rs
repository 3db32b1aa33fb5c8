//! [`SandboxTokenAuthenticator`]: code inside a sandbox calling the gateway as *that
//! sandbox*, with a token the gateway minted (`Authorization: Bearer <jwt>`).
//!
//! The token is a compact JWS: header `alg` = `EdDSA`, `typ` = [`SANDBOX_TOKEN_TYP`], and
//! `kid` naming one of the gateway's signing keys ([`SandboxKeys`]); claims `iss` and
//! `aud` (the gateway's, from config), `sub` (the sandbox id), `iat`, `exp` and `jti`.
//!
//! - A bearer whose header does not say `typ: gatehouse-sandbox+jwt` is **not mine**
//!   (`Ok(None)`): an OIDC access token goes on to the bearer authenticator.
//! - A token that says it is ours but fails any check is **rejected** (`Err`, 401): an
//!   unknown `kid`, another `alg` (only EdDSA is accepted, so an `alg` swapped to `HS256`
//!   or `none` fails), a bad signature, a wrong `iss` or `aud`, an expired `exp` (no
//!   leeway), or an empty `sub`.
//!
//! The principal is [`PrincipalKind::Sandbox`] with subject `sandbox:<id>` and the fixed
//! role from config (`sandbox`); [`Principal::sandbox_id`] gives the id back.

use crate::authenticator::{Authenticator, RequestView};
use crate::error::AuthError;
use crate::principal::{AuthMethod, Principal, PrincipalKind, SANDBOX_SUBJECT_PREFIX};
use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Arc;

/// The JOSE `typ` of a sandbox token.
pub const SANDBOX_TOKEN_TYP: &str = "gatehouse-sandbox+jwt";

/// The error code of a rejected sandbox token.
pub const INVALID_SANDBOX_TOKEN: &str = "GATEWAY::INVALID_SANDBOX_TOKEN";

/// The public keys sandbox tokens are checked with (the gateway's signing key ring).
pub trait SandboxKeys: Send + Sync {
    /// The verification key with this `kid`, while it may still verify tokens.
    fn decoding_key(&self, kid: &str) -> Option<Arc<DecodingKey>>;
}

/// The claims of a sandbox token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SandboxClaims {
    /// Issuer: the gateway.
    pub iss: String,
    /// The sandbox id.
    pub sub: String,
    /// Audience: the gateway.
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
}

/// Checks sandbox tokens.
pub struct SandboxTokenAuthenticator {
    keys: Arc<dyn SandboxKeys>,
    issuer: String,
    audience: String,
    role: String,
}

impl std::fmt::Debug for SandboxTokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxTokenAuthenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn rejected(message: &str) -> AuthError {
    AuthError::Rejected {
        code: INVALID_SANDBOX_TOKEN,
        message: message.to_owned(),
    }
}

impl SandboxTokenAuthenticator {
    /// Tokens issued by `issuer` for `audience`, checked with `keys`; callers get `role`.
    pub fn new(keys: Arc<dyn SandboxKeys>, issuer: &str, audience: &str, role: &str) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            role: role.to_owned(),
        }
    }

    /// Whether `token`'s header claims to be a sandbox token (it may still be invalid).
    pub fn is_sandbox_token(token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .is_ok_and(|h| h.typ.as_deref() == Some(SANDBOX_TOKEN_TYP))
    }

    /// Verifies a sandbox token completely; the error says why, without the token.
    pub fn verify(&self, token: &str) -> Result<SandboxClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| rejected("The sandbox token is malformed."))?;
        if header.typ.as_deref() != Some(SANDBOX_TOKEN_TYP) {
            return Err(rejected("The token is not a sandbox token."));
        }
        if header.alg != Algorithm::EdDSA {
            return Err(rejected("The sandbox token's algorithm is not accepted."));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.decoding_key(kid))
            .ok_or_else(|| rejected("The sandbox token's signing key is unknown."))?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = 0;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<SandboxClaims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => rejected("The sandbox token has expired."),
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => {
                    rejected("The sandbox token is not meant for this gateway.")
                }
                _ => rejected("The sandbox token is not valid."),
            }
        })?;
        if data.claims.sub.is_empty() {
            return Err(rejected("The sandbox token names no sandbox."));
        }
        Ok(data.claims)
    }

    /// The principal of verified claims.
    pub fn principal(&self, claims: &SandboxClaims) -> Principal {
        Principal {
            kind: PrincipalKind::Sandbox,
            subject: format!("{SANDBOX_SUBJECT_PREFIX}{}", claims.sub),
            team: None,
            groups: Vec::new(),
            role: Some(self.role.clone()),
            method: AuthMethod::SandboxToken,
            key_name: None,
        }
    }
}

/// The bearer token of a request, when it carries exactly one `Authorization: Bearer`.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[async_trait]
impl Authenticator for SandboxTokenAuthenticator {
    fn name(&self) -> &'static str {
        "sandbox_token"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        let Some(token) = bearer(req.headers) else {
            return Ok(None);
        };
        if !Self::is_sandbox_token(token) {
            return Ok(None);
        }
        let claims = self.verify(token)?;
        Ok(Some(self.principal(&claims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    /// RFC 8037 A.1's key.
    const SEED: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    const PUBLIC: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ];

    struct OneKey;
    impl SandboxKeys for OneKey {
        fn decoding_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
            (kid == "k1").then(|| Arc::new(DecodingKey::from_ed_der(&PUBLIC)))
        }
    }

    fn encoding() -> EncodingKey {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&SEED);
        EncodingKey::from_ed_der(&der)
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(aud: &str, exp: u64) -> SandboxClaims {
        SandboxClaims {
            iss: "gh".into(),
            sub: "sbx-1".into(),
            aud: aud.into(),
            iat: now(),
            exp,
            jti: "j".into(),
        }
    }

    fn token(kid: &str, typ: &str, c: &SandboxClaims) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.into());
        h.typ = Some(typ.into());
        jsonwebtoken::encode(&h, c, &encoding()).unwrap()
    }

    fn auth() -> SandboxTokenAuthenticator {
        SandboxTokenAuthenticator::new(Arc::new(OneKey), "gh", "gh-api", "sandbox")
    }

    async fn run(a: &SandboxTokenAuthenticator, t: &str) -> Result<Option<Principal>, AuthError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        a.authenticate(&RequestView {
            peer: None,
            headers: &headers,
        })
        .await
    }

    #[tokio::test]
    async fn a_good_token_is_that_sandbox() {
        let t = token("k1", SANDBOX_TOKEN_TYP, &claims("gh-api", now() + 60));
        let p = run(&auth(), &t).await.unwrap().unwrap();
        assert_eq!(p.kind, PrincipalKind::Sandbox);
        assert_eq!(p.sandbox_id(), Some("sbx-1"));
        assert_eq!(p.role.as_deref(), Some("sandbox"));
        assert_eq!(p.method, AuthMethod::SandboxToken);
    }

    #[tokio::test]
    async fn other_bearers_are_not_mine() {
        let t = token("k1", "JWT", &claims("gh-api", now() + 60));
        assert!(run(&auth(), &t).await.unwrap().is_none());
        assert!(run(&auth(), "opaque").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn ours_that_fail_are_rejected() {
        let a = auth();
        let expired = token("k1", SANDBOX_TOKEN_TYP, &claims("gh-api", now() - 1));
        let wrong_aud = token("k1", SANDBOX_TOKEN_TYP, &claims("other", now() + 60));
        let unknown_kid = token("k2", SANDBOX_TOKEN_TYP, &claims("gh-api", now() + 60));
        let good = token("k1", SANDBOX_TOKEN_TYP, &claims("gh-api", now() + 60));
        let (head, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let mut other = claims("gh-api", now() + 60);
        other.sub = "sbx-2".into();
        let forged_body = data_encoding::BASE64URL_NOPAD
            .encode(serde_json::to_string(&other).unwrap().as_bytes());
        let tampered = format!("{head}.{forged_body}.{sig}");
        // alg swapped to HS256, "signed" with the public key as the HMAC secret.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        h.typ = Some(SANDBOX_TOKEN_TYP.into());
        let swapped = jsonwebtoken::encode(
            &h,
            &claims("gh-api", now() + 60),
            &EncodingKey::from_secret(&PUBLIC),
        )
        .unwrap();
        for t in [expired, wrong_aud, unknown_kid, tampered, swapped] {
            let e = run(&a, &t).await.unwrap_err();
            assert_eq!(e.code(), INVALID_SANDBOX_TOKEN);
            assert!(!e.message().contains(&t), "no token in the message");
        }
    }
}
