//! The demo server's settings, with their defaults in one place (documented in
//! `docs/demo-server.md`).

/// Everything the server can be told: each field is a command-line option (`--access-token-ttl`)
/// whose default is given here and nowhere else. `Default` gives the same values.
#[derive(Clone, Debug, clap::Args, serde::Serialize)]
pub struct Config {
    /// Email of the seeded admin account.
    #[arg(long, default_value = DEFAULT_ADMIN_EMAIL)]
    pub admin_email: String,
    /// Password of the seeded admin account.
    #[arg(long, default_value = DEFAULT_ADMIN_PASSWORD)]
    pub admin_password: String,
    /// HMAC secret of the tokens (default: random per start, so tokens do not survive a restart,
    /// as nothing else does).
    #[arg(long)]
    pub jwt_secret: Option<String>,
    /// Access-token lifetime, seconds.
    #[arg(long, default_value_t = 900)]
    pub access_token_ttl: u64,
    /// Refresh-token lifetime, seconds.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    pub refresh_token_ttl: u64,
    /// PBKDF2-HMAC-SHA256 iterations per password hash.
    #[arg(long, default_value_t = 1000)]
    pub password_hash_iterations: u32,
    /// Registrations accepted per minute, server-wide (0: no limit).
    #[arg(long, default_value_t = 600)]
    pub register_per_minute: u32,
    /// Login attempts per account (email) per minute (0: no limit).
    #[arg(long, default_value_t = 60)]
    pub login_attempts_per_minute: u32,
    /// Users kept; one more evicts the oldest non-admin user.
    #[arg(long, default_value_t = 100_000)]
    pub max_users: usize,
    /// Revoked token ids remembered until they expire (expired ones are pruned first).
    #[arg(long, default_value_t = 100_000)]
    pub max_revoked_tokens: usize,
    /// Mean added latency of a chat answer, ms (0: none).
    #[arg(long, default_value_t = 20)]
    pub chat_latency_ms: u64,
    /// Spread of the chat latency: uniform in mean +/- jitter, ms.
    #[arg(long, default_value_t = 10)]
    pub chat_latency_jitter_ms: u64,
    /// Conversations kept per user; one more evicts the user's oldest.
    #[arg(long, default_value_t = 100)]
    pub max_conversations_per_user: usize,
    /// Conversations kept in all; one more evicts the oldest.
    #[arg(long, default_value_t = 100_000)]
    pub max_conversations: usize,
    /// Messages kept per conversation; the oldest are dropped.
    #[arg(long, default_value_t = 200)]
    pub max_messages_per_conversation: usize,
    /// Fault injection: fraction (0..1) of non-health requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fault injection: multiplies the chat latency (1: unchanged, 0: none).
    #[arg(long, default_value_t = 1.0)]
    pub latency_scale: f64,
    /// Fault injection: probability (0..1) of dropping a chat answer mid-body.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Largest realtime WebSocket message (text or binary), bytes; a larger one closes with 1009.
    #[arg(long, default_value_t = 64 * 1024)]
    pub ws_max_message_size: usize,
    /// Most audio bytes between audio_start and audio_end; more closes with 1009.
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub ws_max_audio_bytes: usize,
    /// Most realtime WebSocket connections at once; more are refused at the handshake with 503.
    #[arg(long, default_value_t = 10_000)]
    pub ws_max_connections: usize,
    /// Largest document upload (the file's bytes), bytes; more is a 413.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// How long an uploaded document stays 'processing' before 'ready', ms (0: at once).
    #[arg(long, default_value_t = 500)]
    pub document_processing_ms: u64,
    /// Documents kept; one more evicts the oldest.
    #[arg(long, default_value_t = 10_000)]
    pub max_documents: usize,
    /// Access log, one line per request: '-' for stderr or a file path, appended to (default:
    /// off).
    #[arg(long)]
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
    /// The options' defaults, read from their declarations above.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        match <Only as clap::Parser>::try_parse_from(["voiceassist-demo"]) {
            Ok(only) => only.config,
            // only a malformed default gets here, and `defaults_are_valid` catches that
            Err(e) => e.exit(),
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

impl Config {
    /// A warning for a server that anyone on the network can reach while its admin account keeps
    /// the published default password, or None. `host` is what the server binds to: a loopback
    /// address (or `localhost`) reaches this machine only.
    pub fn exposure_warning(&self, host: &str) -> Option<String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let local = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (!local && self.admin_password == DEFAULT_ADMIN_PASSWORD).then(|| {
            format!(
                "voiceassist-demo: warning: listening on {host}, beyond this machine, with the published \
                 default admin password ({DEFAULT_ADMIN_PASSWORD}): anyone who can reach it can log in as \
                 the admin; set --admin-password"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposed_server_with_the_default_admin_password_is_warned_of() {
        let default = Config::default();
        for host in ["0.0.0.0", "::", "192.168.1.10", "demo.example.com"] {
            let warning = default.exposure_warning(host).unwrap_or_default();
            assert!(
                warning.contains(host) && warning.contains("--admin-password"),
                "{host}: {warning}"
            );
        }
        for host in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
        ] {
            assert_eq!(default.exposure_warning(host), None, "{host}");
        }
        let own = Config {
            admin_password: "something-else".into(),
            ..Config::default()
        };
        assert_eq!(own.exposure_warning("0.0.0.0"), None);
    }

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
