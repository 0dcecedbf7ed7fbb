//! Open-model load: iterations started at a rate for the whole test (k6's arrival-rate
//! executors), whatever the users are doing. `plan` says when each is due; `schedule` hands
//! them to free users on time, and counts the ones no user could take.

pub mod plan;
pub mod schedule;
#[cfg(target_os = "linux")]
mod timer;

pub use schedule::ArrivalSchedule;
