//! The realtime WebSocket endpoint's bookkeeping and pure logic: the hub (connection cap, shutdown
//! signal, counters), how an answer is cut into streamed chunks, and the deterministic voice
//! transcript. The handler and the frame protocol are in `routes/realtime.rs`; the protocol is
//! documented in `docs/demo-server.md` ("Realtime WebSocket").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use super::config::Config;

/// Target length of a streamed chunk, in characters: chunks end after the first whitespace at or
/// past it, so a knowledge-base answer (150 to 300 characters) streams as 4 to 10 chunks.
pub const CHUNK_CHARS: usize = 32;

/// The WebSocket layer (tungstenite) buffers a message of up to this many bytes before refusing
/// it; the handler enforces the configured `ws_max_message_size` below it, so that a message up
/// to 4× over the limit is read whole and answered with a clean close 1009 (see the docs for what
/// happens above).
pub fn hard_limit(max_message_size: usize) -> usize {
    max_message_size.saturating_mul(4).max(4096)
}

/// What the voice mode "hears": the transcript of `n` audio bytes is `TRANSCRIPTS[n % 8]`. Six of
/// the eight match the knowledge base (the answer has citations), two match nothing.
pub const TRANSCRIPTS: [&str; 8] = [
    "How much does the Team plan cost?",
    "How do I set up my microphone for voice mode?",
    "Which languages do you support?",
    "Is my data encrypted?",
    "Tell me a joke",
    "Can VoiceAssist integrate with Slack?",
    "How do I upload a document to the knowledge base?",
    "What will the weather be like tomorrow?",
];

/// The transcript of an utterance of `audio_bytes` bytes (deterministic; see `TRANSCRIPTS`).
pub fn transcript(audio_bytes: u64) -> &'static str {
    TRANSCRIPTS[(audio_bytes % TRANSCRIPTS.len() as u64) as usize]
}

/// The duration of `audio_bytes` of 16-bit mono PCM at `sample_rate` Hz, in milliseconds.
pub fn audio_duration_ms(audio_bytes: u64, sample_rate: u32) -> u64 {
    let bytes_per_second = u64::from(sample_rate.max(1)) * 2;
    audio_bytes.saturating_mul(1000) / bytes_per_second
}

/// Cuts `text` into chunks of about `CHUNK_CHARS` characters, each ending after a whitespace (the
/// last one excepted); the chunks concatenate to exactly `text`. A word longer than the target
/// stays whole. An empty text gives no chunk.
pub fn chunks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = 0;
    let mut last_ws = false;
    for (i, c) in text.char_indices() {
        // a chunk ends at the first non-whitespace after it has reached the target
        if chars >= CHUNK_CHARS && last_ws && !c.is_whitespace() {
            out.push(&text[start..i]);
            start = i;
            chars = 0;
        }
        chars += 1;
        last_ws = c.is_whitespace();
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The realtime counters, as `/api/admin/metrics` reports them (`Hub::snapshot`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted (upgraded or about to be) since start.
    pub connections_total: u64,
    /// Handshakes refused with 503 (the cap was reached, or the server is stopping); a 401 is
    /// not counted here.
    pub connections_refused: u64,
    /// Data messages (text and binary) received, and their bytes.
    pub messages_in: u64,
    pub bytes_in: u64,
    /// Data messages (text) sent, and their bytes.
    pub messages_out: u64,
    pub bytes_out: u64,
    /// `error` frames sent.
    pub error_frames: u64,
    /// Answers streamed to the end (`message_complete` sent), by message or by voice.
    pub answers: u64,
    /// Voice utterances transcribed (`transcript` sent).
    pub transcripts: u64,
    /// Connections closed with 1009 (a message or an utterance over its limit).
    pub closed_too_big: u64,
    /// Connections dropped mid-answer by fault injection (`drop_rate`).
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    connections_total: AtomicU64,
    connections_refused: AtomicU64,
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    error_frames: AtomicU64,
    answers: AtomicU64,
    transcripts: AtomicU64,
    closed_too_big: AtomicU64,
    dropped: AtomicU64,
}

/// One per server: caps the open connections, tells them when the server stops, and counts.
pub struct Hub {
    pub max_message_size: usize,
    pub max_audio_bytes: usize,
    max_connections: usize,
    /// Connections open; a watch so that `closed()` can wait for 0.
    open: watch::Sender<usize>,
    /// Becomes true once, when the server stops.
    stopping: watch::Sender<bool>,
    counters: Counters,
}

/// Why a handshake is refused before the upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Full,
    Stopping,
}

/// A slot among `ws_max_connections`, held for the life of one connection.
pub struct Slot {
    hub: Arc<Hub>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Hub {
    pub fn new(config: &Config) -> Self {
        Self {
            max_message_size: config.ws_max_message_size,
            max_audio_bytes: config.ws_max_audio_bytes,
            max_connections: config.ws_max_connections,
            open: watch::Sender::new(0),
            stopping: watch::Sender::new(false),
            counters: Counters::default(),
        }
    }

    /// Takes a connection slot, unless the cap is reached or the server is stopping.
    pub fn open(self: &Arc<Self>) -> Result<Slot, Refused> {
        let refused = |hub: &Self, why| {
            hub.counters
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            Err(why)
        };
        if *self.stopping.borrow() {
            return refused(self, Refused::Stopping);
        }
        let max = self.max_connections;
        if !self.open.send_if_modified(|n| {
            let room = *n < max;
            if room {
                *n += 1;
            }
            room
        }) {
            return refused(self, Refused::Full);
        }
        self.counters
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        Ok(Slot { hub: self.clone() })
    }

    /// Tells every open connection to close (with 1001) and refuses new ones.
    pub fn shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// A receiver that sees `true` once the server stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Waits until no connection is open.
    pub async fn closed(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    pub fn snapshot(&self) -> Snapshot {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            connections_open: *self.open.borrow() as u64,
            connections_total: get(&c.connections_total),
            connections_refused: get(&c.connections_refused),
            messages_in: get(&c.messages_in),
            bytes_in: get(&c.bytes_in),
            messages_out: get(&c.messages_out),
            bytes_out: get(&c.bytes_out),
            error_frames: get(&c.error_frames),
            answers: get(&c.answers),
            transcripts: get(&c.transcripts),
            closed_too_big: get(&c.closed_too_big),
            dropped: get(&c.dropped),
        }
    }

    pub fn count_in(&self, bytes: usize) {
        self.counters.messages_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn count_out(&self, bytes: usize) {
        self.counters.messages_out.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_out
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn count_error_frame(&self) {
        self.counters.error_frames.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_answer(&self) {
        self.counters.answers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_transcript(&self) {
        self.counters.transcripts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_too_big(&self) {
        self.counters.closed_too_big.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_dropped(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb;

    #[test]
    fn chunks_concatenate_to_the_text_and_end_after_whitespace() {
        for entry in kb::ENTRIES {
            let text = entry.text;
            let parts = chunks(text);
            assert_eq!(parts.concat(), text);
            assert!(parts.len() >= 3, "{}: {parts:?}", entry.id);
            for p in &parts[..parts.len() - 1] {
                assert!(p.ends_with(' '), "{p:?}");
                assert!(p.chars().count() >= CHUNK_CHARS, "{p:?}");
            }
            assert!(parts.iter().all(|p| !p.is_empty()));
        }
    }

    #[test]
    fn chunking_edge_cases() {
        assert!(chunks("").is_empty());
        assert_eq!(chunks("short"), vec!["short"]);
        let long_word = "x".repeat(100);
        assert_eq!(chunks(&long_word), vec![long_word.as_str()]);
        let text = format!("{long_word} tail");
        assert_eq!(chunks(&text), vec![&text[..101], "tail"]);
        // multi-byte characters are counted as characters and never split
        let accents = "é".repeat(40) + " ü";
        let parts = chunks(&accents);
        assert_eq!(parts.concat(), accents);
        assert_eq!(parts.len(), 2);
        // trailing whitespace stays in the last chunk
        let spaced = format!("{} {}   ", "a".repeat(40), "b");
        assert_eq!(chunks(&spaced).concat(), spaced);
    }

    #[test]
    fn transcripts_are_deterministic_and_six_of_eight_match_the_kb() {
        assert_eq!(transcript(0), TRANSCRIPTS[0]);
        assert_eq!(transcript(9), TRANSCRIPTS[1]);
        assert_eq!(transcript(32_000), transcript(32_000));
        let matching: Vec<bool> = TRANSCRIPTS
            .iter()
            .map(|t| !kb::search_builtin(t).is_empty())
            .collect();
        assert_eq!(
            matching,
            [true, true, true, true, false, true, true, false],
            "{TRANSCRIPTS:?}"
        );
        assert_eq!(kb::search_builtin(TRANSCRIPTS[0])[0].id(), "kb-003");
    }

    #[test]
    fn audio_duration_is_16_bit_mono() {
        assert_eq!(audio_duration_ms(32_000, 16_000), 1000);
        assert_eq!(audio_duration_ms(16_000, 8_000), 1000);
        assert_eq!(audio_duration_ms(0, 16_000), 0);
        assert_eq!(audio_duration_ms(u64::MAX, 0), u64::MAX / 2);
    }

    #[test]
    fn the_hard_limit_leaves_room_above_the_configured_one() {
        assert_eq!(hard_limit(64 * 1024), 256 * 1024);
        assert_eq!(hard_limit(10), 4096);
        assert_eq!(hard_limit(usize::MAX), usize::MAX);
    }

    #[test]
    fn the_hub_caps_connections_and_refuses_after_shutdown() {
        let hub = Arc::new(Hub::new(&Config {
            ws_max_connections: 2,
            ..Config::default()
        }));
        let a = hub.open().unwrap();
        let b = hub.open().unwrap();
        assert_eq!(hub.open().err(), Some(Refused::Full));
        assert_eq!(hub.snapshot().connections_open, 2);
        drop(a);
        let c = hub.open().unwrap();
        let s = hub.snapshot();
        assert_eq!((s.connections_open, s.connections_total), (2, 3));
        assert_eq!(s.connections_refused, 1);
        let mut rx = hub.stopping();
        assert!(!*rx.borrow_and_update());
        hub.shutdown();
        assert!(*rx.borrow_and_update());
        assert_eq!(hub.open().err(), Some(Refused::Stopping));
        drop((b, c));
        assert_eq!(hub.snapshot().connections_open, 0);
        assert_eq!(hub.snapshot().connections_refused, 2);
    }

    #[test]
    fn closed_waits_for_the_last_connection() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let hub = Arc::new(Hub::new(&Config::default()));
            let slot = hub.open().unwrap();
            let waiter = {
                let hub = hub.clone();
                tokio::spawn(async move { hub.closed().await })
            };
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(!waiter.is_finished());
            drop(slot);
            tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
                .await
                .unwrap()
                .unwrap();
        });
    }

    #[test]
    fn counters_add_up() {
        let hub = Hub::new(&Config::default());
        hub.count_in(10);
        hub.count_in(5);
        hub.count_out(7);
        hub.count_error_frame();
        hub.count_answer();
        hub.count_transcript();
        hub.count_too_big();
        hub.count_dropped();
        let s = hub.snapshot();
        assert_eq!((s.messages_in, s.bytes_in), (2, 15));
        assert_eq!((s.messages_out, s.bytes_out), (1, 7));
        assert_eq!(
            (
                s.error_frames,
                s.answers,
                s.transcripts,
                s.closed_too_big,
                s.dropped
            ),
            (1, 1, 1, 1, 1)
        );
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["messages_in"], 2);
        assert_eq!(json["connections_open"], 0);
    }
}
