//! `toka-host tools …`: operator commands about tool manifests. `vet` prints
//! the digest of what a manifest points to and, with `--write`, pins it.

use crate::exit;
use crate::manifest::{self, Sha256Hex};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// `toka-host tools` subcommands.
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Print the SHA-256 of the file a manifest runs, and whether it matches
    /// the manifest's pin; with --write, record it in the manifest.
    ///
    /// Vet the file first: the pin says "this exact content was reviewed".
    Vet(VetArgs),
}

/// `toka-host tools vet` flags.
#[derive(Debug, Args)]
pub struct VetArgs {
    /// The manifest (.yaml).
    pub manifest: PathBuf,

    /// Write the digest into `spec.executable.sha256` (comments and layout
    /// of the file are kept).
    #[arg(long)]
    pub write: bool,
}

/// Runs a `tools` subcommand; returns the exit code.
pub fn run(cmd: ToolsCommand) -> u8 {
    match cmd {
        ToolsCommand::Vet(args) => match vet(&args) {
            Ok(()) => exit::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                exit::INVALID
            }
        },
    }
}

fn vet(args: &VetArgs) -> Result<(), String> {
    let file = &args.manifest;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: {}", file.display(), manifest::io_reason(&e)))?;
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let exe = &yaml["spec"]["executable"];
    let rel = exe["path"]
        .as_str()
        .ok_or_else(|| format!("{}: spec.executable.path is missing", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let path = base.join(rel);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{}: {}", path.display(), manifest::io_reason(&e)))?;
    let digest = Sha256Hex::of(&bytes);
    let pinned = exe["sha256"].as_str();
    println!("{digest}  {}", path.display());
    match pinned {
        Some(p) if p.eq_ignore_ascii_case(digest.as_str()) => {
            println!("matches the pin in {}", file.display());
            return Ok(());
        }
        Some(p) => println!("differs from the pin {p} in {}", file.display()),
        None => println!("{} pins no digest", file.display()),
    }
    if !args.write {
        println!("review the file, then rerun with --write to pin it");
        return Ok(());
    }
    let updated = pin(&text, digest.as_str())
        .ok_or_else(|| format!("{}: cannot find where to write sha256; add `sha256: {digest}` under spec.executable by hand", file.display()))?;
    std::fs::write(file, &updated).map_err(|e| format!("{}: {e}", file.display()))?;
    manifest::load(file)
        .map_err(|e| format!("wrote the pin, but the manifest is still invalid: {e}"))?;
    println!("pinned in {}", file.display());
    Ok(())
}

/// Returns `text` with `sha256` set to `digest` under `spec.executable`,
/// editing the text (not re-serializing) so comments and layout survive.
fn pin(text: &str, digest: &str) -> Option<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // An existing `sha256:` (block or flow style): replace its value.
    for line in &mut lines {
        if let Some(i) = line.find("sha256:") {
            let after = &line[i + "sha256:".len()..];
            let value_len = after
                .trim_start()
                .find(|c: char| {
                    !c.is_ascii_alphanumeric() && c != '<' && c != '>' && c != '"' && c != '\''
                })
                .unwrap_or(after.trim_start().len());
            let ws = after.len() - after.trim_start().len();
            let end = i + "sha256:".len() + ws + value_len;
            *line = format!("{}sha256: {digest}{}", &line[..i], &line[end..]);
            return Some(lines.join("\n") + "\n");
        }
    }
    // Block style: insert after `path:` with the same indentation.
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("path:") && !line.contains('{') {
            let indent = &line[..line.len() - trimmed.len()];
            lines.insert(n + 1, format!("{indent}sha256: {digest}"));
            return Some(lines.join("\n") + "\n");
        }
    }
    // Flow style: `executable: { ..., path: x }`.
    for line in &mut lines {
        if line.contains("executable:")
            && let Some(close) = line.rfind('}')
        {
            line.insert_str(close, &format!(", sha256: {digest} "));
            return Some(lines.join("\n") + "\n");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::pin;

    #[test]
    fn pins_in_every_layout() {
        let d = "ab".repeat(32);
        let block = "spec:\n  executable:\n    type: shell\n    path: x.sh # the script\n";
        assert_eq!(
            pin(block, &d).unwrap(),
            format!(
                "spec:\n  executable:\n    type: shell\n    path: x.sh # the script\n    sha256: {d}\n"
            )
        );
        let existing = format!("    sha256: {} # vetted\n", "0".repeat(64));
        assert_eq!(
            pin(&existing, &d).unwrap(),
            format!("    sha256: {d} # vetted\n")
        );
        let flow = "  executable: { type: shell, path: x.sh }\n";
        let out = pin(flow, &d).unwrap();
        assert!(
            out.contains(&format!("path: x.sh , sha256: {d} }}")),
            "{out}"
        );
        let flow_pinned = format!(
            "  executable: {{ type: shell, path: x.sh, sha256: {} }}\n",
            "1".repeat(64)
        );
        assert!(
            pin(&flow_pinned, &d)
                .unwrap()
                .contains(&format!("sha256: {d} }}"))
        );
    }
}
