//! Passwords (PBKDF2-HMAC-SHA256, salted, with a configurable iteration count) and tokens
//! (HS256 JWTs through `jsonwebtoken`, with an expiry and a unique `jti` used for revocation).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// A salted password hash. `Debug` prints no bytes.
#[derive(Clone)]
pub struct PasswordHash {
    salt: [u8; SALT_LEN],
    hash: [u8; HASH_LEN],
    iterations: u32,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PasswordHash(pbkdf2-sha256, {} iterations)",
            self.iterations
        )
    }
}

/// Fills `buf` from the OS's random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("no randomness available: {e}"))
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    random_bytes(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn hash_password(password: &str, iterations: u32) -> Result<PasswordHash, String> {
    let mut salt = [0u8; SALT_LEN];
    random_bytes(&mut salt)?;
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iterations, &mut hash);
    Ok(PasswordHash {
        salt,
        hash,
        iterations,
    })
}

/// Recomputes the hash with the stored salt and iteration count; compares in constant time.
pub fn verify_password(password: &str, stored: &PasswordHash) -> bool {
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        &stored.salt,
        stored.iterations,
        &mut hash,
    );
    hash.iter()
        .zip(stored.hash.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

/// The JWT payload: standard `sub`/`iat`/`exp`/`jti`, plus the token's kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    pub typ: TokenKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
    WrongKind,
    Internal,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Invalid => "invalid token",
            Self::Expired => "token expired",
            Self::WrongKind => "wrong kind of token",
            Self::Internal => "cannot sign tokens",
        }
    }
}

/// Signs and checks tokens with one HMAC secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: u64,
    pub refresh_ttl: u64,
}

impl Tokens {
    pub fn new(secret: &[u8], access_ttl: u64, refresh_ttl: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    /// A signed token for `user_id`, and its claims.
    pub fn issue(&self, user_id: u64, kind: TokenKind) -> Result<(String, Claims), TokenError> {
        let iat = now_secs();
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            sub: user_id.to_string(),
            iat,
            exp: iat.saturating_add(ttl),
            jti: random_hex(16).map_err(|_| TokenError::Internal)?,
            typ: kind,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Internal)?;
        Ok((token, claims))
    }

    /// The claims of a token signed here, unexpired and of the expected kind.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        // jsonwebtoken accepts exp == now; a token is dead from its exp second on.
        if data.claims.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        if data.claims.typ != kind {
            return Err(TokenError::WrongKind);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_and_a_wrong_one_does_not() {
        let h = hash_password("correct horse", 10).unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("", &h));
    }

    #[test]
    fn the_same_password_gets_different_salts() {
        let a = hash_password("pw", 10).unwrap();
        let b = hash_password("pw", 10).unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash, b.hash);
        assert!(!format!("{a:?}").contains("pw"));
    }

    #[test]
    fn a_token_round_trips() {
        let t = Tokens::new(b"secret", 60, 120);
        let (token, claims) = t.issue(42, TokenKind::Access).unwrap();
        let back = t.verify(&token, TokenKind::Access).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.sub, "42");
        assert_eq!(back.exp - back.iat, 60);
        let (_, r) = t.issue(42, TokenKind::Refresh).unwrap();
        assert_eq!(r.exp - r.iat, 120);
        assert_ne!(r.jti, claims.jti);
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let t = Tokens::new(b"secret", 60, 60);
        let (refresh, _) = t.issue(1, TokenKind::Refresh).unwrap();
        assert_eq!(
            t.verify(&refresh, TokenKind::Access),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn another_secret_or_garbage_is_invalid() {
        let a = Tokens::new(b"secret-a", 60, 60);
        let b = Tokens::new(b"secret-b", 60, 60);
        let (token, _) = a.issue(1, TokenKind::Access).unwrap();
        assert_eq!(
            b.verify(&token, TokenKind::Access),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            a.verify("x.y.z", TokenKind::Access),
            Err(TokenError::Invalid)
        );
        assert_eq!(a.verify("", TokenKind::Access), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_expires() {
        let t = Tokens::new(b"secret", 1, 1);
        let (token, _) = t.issue(1, TokenKind::Access).unwrap();
        assert!(t.verify(&token, TokenKind::Access).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(
            t.verify(&token, TokenKind::Access),
            Err(TokenError::Expired)
        );
    }
}
