//! Crash points for the crash tests: when `FERRY_CRASH_AT` names a point, the process dies
//! there as abruptly as `kill -9` would. Unset (always, outside tests), they do nothing.

pub fn crash_point(name: &str) {
    if std::env::var_os("FERRY_CRASH_AT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}
