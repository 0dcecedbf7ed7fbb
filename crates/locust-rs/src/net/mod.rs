//! The sockets under every connection: TCP with the kernel's receive timestamps, so that a
//! response time ends when its last bytes arrived, not when a starved engine thread got round to
//! reading them (docs/metrics.md, "Which clock").
//!
//! `arrival` turns a kernel stamp into a point on the monotonic clock the start was taken on, and
//! keeps per connection when its last bytes arrived; `stamped` is the socket that reads them.

pub mod arrival;
pub mod stamped;
