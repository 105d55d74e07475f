//! Reading what commands act on: arguments, or `-` for one per line on stdin, so commands compose
//! in pipelines (`ferry updates list --ids | ferry updates approve -`).

use anyhow::Context;

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
