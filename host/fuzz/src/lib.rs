//! What the fuzz targets share: a sandbox directory laid out like the repo
//! (so seed manifests find their files), and the "no echo" check on error
//! messages.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Longest run of input bytes an error message may repeat verbatim when
/// the input is not a manifest at all (`run /etc/passwd` must not print
/// it). Field paths are exempt.
pub const MAX_ECHO_NOT_A_MANIFEST: usize = 40;

/// Longest value a manifest error may quote from the input, in bytes
/// (toka-spec cuts a quote at 64 characters of up to 4 bytes, then `…`).
pub const MAX_QUOTED_VALUE: usize = 64 * 4;

/// A directory laid out like the repo around a manifest at `m/fuzz.yaml`:
/// `../files/tool.wasm`, `../files/script.sh`, `../files/data/`,
/// `../plugins/build/*.wasm`, `./data/`, `./scratch/`. Created once per
/// process and left for the OS to clean (the fuzzer never returns).
pub struct Sandbox {
    /// Root of the layout.
    pub root: PathBuf,
    /// Where a fuzzed manifest is said to be read from.
    pub manifest: PathBuf,
}

impl Sandbox {
    /// Creates the layout under a new temporary directory.
    pub fn new() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("toka-fuzz-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let wasm = b"\0asm\x0d\0\x01\0";
        for d in [
            "m/data",
            "m/scratch",
            "files/data",
            "plugins/build",
            "scripts/tools",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::write(root.join("files/tool.wasm"), wasm).expect("write");
        std::fs::write(root.join("files/script.sh"), b"#!/bin/sh\necho hi\n").expect("write");
        for name in [
            "hello",
            "file-reader",
            "date-validator",
            "summarize-file",
            "text-stats",
            "text-stats-py",
            "text-stats-js",
            "text-stats-c",
        ] {
            std::fs::write(root.join(format!("plugins/build/{name}.wasm")), wasm).expect("write");
        }
        for name in ["validate-env.sh", "setup-toka-testing.sh"] {
            std::fs::write(root.join("scripts/tools").join(name), b"#!/bin/sh\n").expect("write");
        }
        let manifest = root.join("m/fuzz.yaml");
        Sandbox { root, manifest }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// The first run of at least `n` bytes of `input` that `message` repeats,
/// ignoring runs made only of characters that appear in field paths
/// (`spec.security.sandbox.readonly_paths[0]`) and ASCII punctuation/space,
/// which any manifest error legitimately names.
pub fn echoed<'m>(input: &[u8], message: &'m str, n: usize) -> Option<&'m str> {
    let w = echoed_bytes(input, message.as_bytes(), n)?;
    let at = w.as_ptr() as usize - message.as_ptr() as usize;
    message.get(at..at + n).or(Some("<non-UTF-8 boundary>"))
}

/// [`echoed`] on bytes: the run itself, as it stands in `message`.
pub fn echoed_bytes<'m>(input: &[u8], message: &'m [u8], n: usize) -> Option<&'m [u8]> {
    if input.len() < n || message.len() < n {
        return None;
    }
    let windows: HashSet<&[u8]> = input.windows(n).collect();
    message
        .windows(n)
        .find(|w| windows.contains(w) && !is_field_words(w))
}

/// `message` with the name serde's `unknown field `KEY`` gives replaced by
/// `placeholder` (the key may hold backticks itself: cut to serde's last
/// "`, expected"); with a placeholder, what stood on either side is not
/// joined into a run the message never had.
pub fn without_named_key(message: &str, placeholder: &str) -> String {
    // A tool asked for by name (`/v1/tools/NAME/invoke`) is named too.
    let message = &match message.split_once("no tool named `") {
        Some((head, rest)) if !placeholder.is_empty() => match rest.split_once("` in ") {
            Some((_, tail)) => format!("{head}no tool named `{placeholder}` in {tail}"),
            None => message.to_string(),
        },
        _ => message.to_string(),
    };
    match message.split_once("unknown field `") {
        Some((head, rest)) => {
            let tail = rest.rfind("`, expected").map_or("", |i| &rest[i..]);
            if placeholder.is_empty() {
                format!("{head}{tail}")
            } else {
                format!("{head}unknown field `{placeholder}{tail}")
            }
        }
        None => message.to_string(),
    }
}

/// `input` with every occurrence of `run` blanked: its ASCII letters and
/// digits made `Q`s, everything else (the structure around them) kept.
pub fn blank_run(input: &[u8], run: &[u8]) -> Vec<u8> {
    let blank: Vec<u8> = run
        .iter()
        .map(|&b| if b.is_ascii_alphanumeric() { b'Q' } else { b })
        .collect();
    replace_run(input, run, &blank)
}

/// `input` without any occurrence of `run`.
pub fn cut_run(input: &[u8], run: &[u8]) -> Vec<u8> {
    replace_run(input, run, b"")
}

fn replace_run(input: &[u8], run: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if !run.is_empty() && input[i..].starts_with(run) {
            out.extend_from_slice(with);
            i += run.len();
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

fn is_field_words(w: &[u8]) -> bool {
    w.iter()
        .all(|b| b.is_ascii_lowercase() || b"._[]0123456789 -`:,()'".contains(b))
}

/// Like [`echoed`], but a run the message contains for any input (our own
/// words, which the fuzzer learns and copies into its inputs) is not an
/// echo: each candidate is checked again with that run blanked out of the
/// input (its letters and digits made `Q`s); only a run that then leaves
/// the message was taken from the input.
pub fn echoed_from_input(
    input: &str,
    message: &str,
    n: usize,
    reparse: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    // An unknown key is named (that is how a typo is found); its length is
    // bounded by the quoted-value check. Values are never named here.
    let message = without_named_key(message, "");
    let run = echoed(input.as_bytes(), &message, n)?.to_string();
    if OUR_WORDS.iter().any(|w| w.contains(&run)) {
        return None;
    }
    // Letters and digits only: spaces and punctuation keep the YAML's
    // structure (a blanked space would merge a tag with its value).
    let blank: String = run
        .chars()
        .map(|c| if c.is_alphanumeric() { 'Q' } else { c })
        .collect();
    let blanked = input.replace(&run, &blank);
    match reparse(&blanked) {
        Some(m) if m.contains(&run) => None,
        _ => Some(run),
    }
}

/// Fixed phrases of toka-spec's YAML errors (`manifest/yaml.rs`), which
/// the fuzzer copies into inputs where blanking cannot tell them apart.
const OUR_WORDS: &[&str] = &[
    "expected a mapping of fields (a Toka manifest has `metadata:` and `spec:`)",
    "too many YAML aliases (`*name` references to `&name` anchors) expand here; \
     write the values out instead of nesting aliases",
    "the YAML is nested too deeply",
];

/// `s`'s backtick-quoted spans (`` `like this` ``).
pub fn quoted(s: &str) -> impl Iterator<Item = &str> {
    s.split('`').skip(1).step_by(2)
}

/// A path for messages and asserts.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}

/// `text` written back by `serde_yaml::Value`, when that round trip keeps
/// its meaning for a typed reader; `None` when it cannot, and the
/// round-trip invariant of the `manifest` and `agents_file` targets has
/// nothing to compare (docs/RELIABILITY.md, findings 2, 8 and 9):
///
/// - `Value` cannot read it (an integer over 64 bits, which a JSON field
///   reads);
/// - it holds a null or a number or boolean `Value` would respell (see
///   [`has_null`], [`lossy_scalars`]);
/// - it holds a tag (`!x`, `!!str`): serde_yaml reads some tagged values
///   one way into a typed field and another into `Value` (`agents: !!!!`
///   is an empty list typed, the string `""` as a `Value`), and cannot
///   write some back at all;
/// - serde_yaml cannot write the `Value`, or what it writes reads back as
///   another `Value`.
pub fn value_round_trip(text: &str) -> Option<String> {
    if text.contains('!') {
        return None;
    }
    let value = serde_yaml::from_str::<serde_yaml::Value>(text).ok()?;
    if has_null(&value) || lossy_scalars(text) {
        return None;
    }
    let again = serde_yaml::to_string(&value).ok()?;
    let back = serde_yaml::from_str::<serde_yaml::Value>(&again).ok()?;
    (back == value).then_some(again)
}

/// True when `v` holds a YAML null anywhere. serde_yaml reads an empty
/// value differently from the explicit `null` that `serde_yaml::Value`
/// writes back for it (`agents:` is an empty list, `agents: null` an error;
/// `workflow:` is "", `workflow: null` the string "null"), so the round
/// trip through `Value` of a document with nulls is skipped
/// (docs/RELIABILITY.md, finding 2).
pub fn has_null(v: &serde_yaml::Value) -> bool {
    use serde_yaml::Value;
    match v {
        Value::Null => true,
        Value::Sequence(s) => s.iter().any(has_null),
        Value::Mapping(m) => m.iter().any(|(k, v)| has_null(k) || has_null(v)),
        // Tags too: serde_yaml reads some tagged values it then writes back
        // otherwise (`agents: !!n!`) or cannot write at all.
        Value::Tagged(_) => true,
        _ => false,
    }
}

/// True when `text` spells a number or boolean otherwise than
/// `serde_yaml::Value` writes it back (`+1`, `-0`, `007`, `0x1f`, floats,
/// integers too large for 64 bits, `True`, `FALSE`): a string field reads
/// the spelling, so the round trip through `Value` would change it
/// (docs/RELIABILITY.md, findings 2 and 9). Every word of the text that
/// YAML would read as a number or boolean is checked, quoted or not, so
/// this errs on the side of skipping.
pub fn lossy_scalars(text: &str) -> bool {
    use serde_yaml::Value;
    text.split(|c: char| c.is_whitespace() || "[]{},:#'\"".contains(c))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_digit() || "+-.tTfF".contains(c)))
        .any(|w| match serde_yaml::from_str::<Value>(w) {
            Ok(Value::Number(n)) => n.is_f64() || n.to_string() != w,
            Ok(Value::Bool(b)) => b.to_string() != w,
            _ => false,
        })
}
