//! Fault points for the crash and race tests. Unset (always, outside tests), they do nothing.
//! - `crash_point`: when `FERRY_CRASH_AT` names the point, the process dies there as abruptly
//!   as `kill -9` would.
//! - `pause_point`: when `FERRY_PAUSE_AT` names the point, the process waits there for
//!   `FERRY_PAUSE_MS` milliseconds (500 if unset), so that a test can run another in between.

pub fn crash_point(name: &str) {
    if std::env::var_os("FERRY_CRASH_AT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}

pub fn pause_point(name: &str) {
    if std::env::var_os("FERRY_PAUSE_AT").is_some_and(|v| v == name) {
        let ms = std::env::var("FERRY_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
