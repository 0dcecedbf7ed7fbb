//! The demo server's settings, with their defaults in one place (documented in
//! `docs/demo-server.md`).

/// Everything a `DemoServer` can be told. `Default` gives the documented defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// Email of the seeded admin account.
    pub admin_email: String,
    /// Password of the seeded admin account.
    pub admin_password: String,
    /// HMAC secret of the JWTs; `None` draws a random one at start (tokens then do not survive a
    /// restart, as nothing else does).
    pub jwt_secret: Option<String>,
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl: u64,
    /// Lifetime of a refresh token, in seconds.
    pub refresh_token_ttl: u64,
    /// PBKDF2-HMAC-SHA256 iterations per password hash.
    pub password_hash_iterations: u32,
    /// Registrations accepted per minute, server-wide; 0 turns the limit off.
    pub register_per_minute: u32,
    /// Login attempts per account (email) per minute; 0 turns the limit off.
    pub login_attempts_per_minute: u32,
    /// Most users kept; registering one more evicts the oldest non-admin user.
    pub max_users: usize,
    /// Most revoked-token ids remembered (expired ones are pruned first).
    pub max_revoked_tokens: usize,
}

pub const DEFAULT_ADMIN_EMAIL: &str = "admin@voiceassist.local";
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin12345";
/// Minimum length of a registered password (the seeded admin's is not checked).
pub const MIN_PASSWORD_LEN: usize = 8;

impl Default for Config {
    fn default() -> Self {
        Self {
            admin_email: DEFAULT_ADMIN_EMAIL.to_owned(),
            admin_password: DEFAULT_ADMIN_PASSWORD.to_owned(),
            jwt_secret: None,
            access_token_ttl: 900,
            refresh_token_ttl: 7 * 24 * 3600,
            password_hash_iterations: 1000,
            register_per_minute: 600,
            login_attempts_per_minute: 60,
            max_users: 100_000,
            max_revoked_tokens: 100_000,
        }
    }
}

impl Config {
    /// Checks the values that would make the server useless; the message names the option.
    pub fn validate(&self) -> Result<(), String> {
        if self.access_token_ttl == 0 {
            return Err("access_token_ttl must be at least 1 second".into());
        }
        if self.refresh_token_ttl == 0 {
            return Err("refresh_token_ttl must be at least 1 second".into());
        }
        if self.password_hash_iterations == 0 {
            return Err("password_hash_iterations must be at least 1".into());
        }
        if self.max_users == 0 {
            return Err("max_users must be at least 1".into());
        }
        if self.max_revoked_tokens == 0 {
            return Err("max_revoked_tokens must be at least 1".into());
        }
        if !self.admin_email.contains('@') {
            return Err("admin_email must be an email address".into());
        }
        if self.admin_password.is_empty() {
            return Err("admin_password must not be empty".into());
        }
        if matches!(&self.jwt_secret, Some(s) if s.is_empty()) {
            return Err("jwt_secret must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn zero_ttl_is_refused_by_name() {
        let c = Config {
            access_token_ttl: 0,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().contains("access_token_ttl"));
    }
}
