//! Locust's request statistics (`RequestStats`, `StatsEntry`), kept in Rust with HDR histograms
//! for the response times: the one set of numbers every output of a run reads.
//!
//! `entry` is one `StatsEntry`'s figures, `hist` its histogram (sparse until it is not), `seconds` its per-second counts, `window` the recent
//! histogram behind Locust's "current" percentiles; `core` is what Python sees: the
//! `events.request` listener that records each event once, and the entries it reads.

mod core;
mod entry;
mod hist;
mod seconds;
mod window;

pub use self::core::{StatsCore, StatsEntryCore};
