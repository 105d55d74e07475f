//! Reading what commands act on: arguments, or `-` for one per line on stdin, so commands compose
//! in pipelines (`ferry updates list --ids | ferry updates approve -`).

use anyhow::Context;

/// A `--status` value (Get-WsusComputer's update states, any case and separators).
pub fn update_state(status: &str) -> anyhow::Result<ferry::compliance::UpdateState> {
    ferry::compliance::UpdateState::parse(status)
        .with_context(|| format!("--status {status:?}: use needed, failed, installed, installed-pending-reboot, not-applicable or unknown"))
}

/// The arguments, with `-` replaced by the non-empty, non-comment lines of stdin.
pub fn args_or_stdin(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            for line in std::io::stdin().lines() {
                let line = line.context("reading from stdin")?;
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    out.push(line.to_string());
                }
            }
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}
