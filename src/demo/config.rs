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
    /// Mean extra latency of a chat answer, in milliseconds (0: none).
    pub chat_latency_ms: u64,
    /// Spread of the chat latency: uniform in mean ± jitter, in milliseconds.
    pub chat_latency_jitter_ms: u64,
    /// Most conversations kept per user; one more evicts that user's oldest.
    pub max_conversations_per_user: usize,
    /// Most conversations kept in all; one more evicts the oldest.
    pub max_conversations: usize,
    /// Most messages kept per conversation; the oldest are dropped first.
    pub max_messages_per_conversation: usize,
    /// Fault injection: fraction (0..=1) of non-health requests answered 500.
    pub error_rate: f64,
    /// Fault injection: multiplies the chat latency (1: unchanged, 0: none).
    pub latency_scale: f64,
    /// Fault injection: probability (0..=1) that a chat answer's connection is dropped mid-body.
    pub drop_rate: f64,
    // --- realtime WebSocket (src/demo/realtime.rs) ---
    /// Largest WebSocket message (text or binary) accepted, in bytes; a larger one closes the
    /// connection with 1009.
    pub ws_max_message_size: usize,
    /// Most audio bytes accepted between `audio_start` and `audio_end`; more closes with 1009.
    pub ws_max_audio_bytes: usize,
    /// Most realtime connections open at once; one more is refused at the handshake with 503.
    pub ws_max_connections: usize,
    /// Largest accepted document upload (the file's bytes), in bytes; more is a 413.
    pub max_upload_bytes: usize,
    /// How long an uploaded document stays `processing` before it is `ready`, in ms (0: at once).
    pub document_processing_ms: u64,
    /// Most documents kept; one more evicts the oldest.
    pub max_documents: usize,
    /// Where the access log goes: `None` (off), `"-"` (stderr) or a file path (appended to).
    pub access_log: Option<String>,
}

pub const DEFAULT_ADMIN_EMAIL: &str = "admin@voiceassist.local";
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin12345";
/// Minimum length of a registered password (the seeded admin's is not checked).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest configurable chat latency (mean + jitter), before `latency_scale`: one minute.
pub const MAX_CHAT_LATENCY_MS: u64 = 60_000;
/// Largest configurable `ws_max_message_size`: 16 MiB (the WebSocket layer buffers up to four
/// times it per connection, see `realtime::hard_limit`).
pub const MAX_WS_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Largest configurable upload limit: 1 GiB (an upload is held in memory while it is checked).
pub const MAX_UPLOAD_BYTES: usize = 1 << 30;
/// Longest configurable document processing delay: one hour.
pub const MAX_DOCUMENT_PROCESSING_MS: u64 = 3_600_000;

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
            chat_latency_ms: 20,
            chat_latency_jitter_ms: 10,
            max_conversations_per_user: 100,
            max_conversations: 100_000,
            max_messages_per_conversation: 200,
            error_rate: 0.0,
            latency_scale: 1.0,
            drop_rate: 0.0,
            ws_max_message_size: 64 * 1024,
            ws_max_audio_bytes: 2 * 1024 * 1024,
            ws_max_connections: 10_000,
            max_upload_bytes: 10 * 1024 * 1024,
            document_processing_ms: 500,
            max_documents: 10_000,
            access_log: None,
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
        for (name, cap) in [
            (
                "max_conversations_per_user",
                self.max_conversations_per_user,
            ),
            ("max_conversations", self.max_conversations),
            (
                "max_messages_per_conversation",
                self.max_messages_per_conversation,
            ),
            ("max_upload_bytes", self.max_upload_bytes),
            ("max_documents", self.max_documents),
        ] {
            if cap == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        if !self.latency_scale.is_finite() || self.latency_scale < 0.0 {
            return Err("latency_scale must be a finite number >= 0".into());
        }
        if self
            .chat_latency_ms
            .saturating_add(self.chat_latency_jitter_ms)
            > MAX_CHAT_LATENCY_MS
        {
            return Err(format!(
                "chat_latency_ms + chat_latency_jitter_ms must be at most {MAX_CHAT_LATENCY_MS}"
            ));
        }
        for (name, value) in [
            ("ws_max_message_size", self.ws_max_message_size),
            ("ws_max_audio_bytes", self.ws_max_audio_bytes),
            ("ws_max_connections", self.ws_max_connections),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.ws_max_message_size > MAX_WS_MESSAGE_SIZE {
            return Err(format!(
                "ws_max_message_size must be at most {MAX_WS_MESSAGE_SIZE}"
            ));
        }
        if !self.admin_email.contains('@') {
            return Err("admin_email must be an email address".into());
        }
        if self.admin_password.is_empty() {
            return Err("admin_password must not be empty".into());
        }
        if self.max_upload_bytes > MAX_UPLOAD_BYTES {
            return Err(format!(
                "max_upload_bytes must be at most {MAX_UPLOAD_BYTES}"
            ));
        }
        if self.document_processing_ms > MAX_DOCUMENT_PROCESSING_MS {
            return Err(format!(
                "document_processing_ms must be at most {MAX_DOCUMENT_PROCESSING_MS}"
            ));
        }
        if matches!(&self.access_log, Some(s) if s.is_empty()) {
            return Err("access_log must be \"-\" (stderr) or a file path".into());
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

    #[test]
    fn fault_rates_must_be_fractions() {
        for bad in [-0.1, 1.5, f64::NAN] {
            let c = Config {
                error_rate: bad,
                ..Config::default()
            };
            assert!(c.validate().unwrap_err().contains("error_rate"));
            let c = Config {
                drop_rate: bad,
                ..Config::default()
            };
            assert!(c.validate().unwrap_err().contains("drop_rate"));
        }
        let c = Config {
            latency_scale: f64::INFINITY,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().contains("latency_scale"));
    }
}
