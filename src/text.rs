//! Paths and foreign messages as text that is safe to print.
//!
//! File names are bytes on Unix: they may hold invalid UTF-8, newlines or an ESC that a terminal
//! would obey. [`path_text`] turns a path into text without losing anything a UTF-8 name holds
//! (so JSON keeps the real name), escaping only the bytes UTF-8 cannot carry; the terminal and
//! Markdown renderers then pass every string through [`escape_controls`]. Decoder messages may
//! end in or contain newlines; [`one_line`] makes them fit an error line.

use std::fmt::Write;
use std::path::Path;

/// The path as text: unchanged when it is valid UTF-8, else every byte that is not part of a
/// valid UTF-8 sequence written as `\xNN` (e.g. `bad\xff.png`).
pub fn path_text(path: &Path) -> String {
    if let Some(text) = path.to_str() {
        return text.to_string();
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        escape_invalid_utf8(path.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        // Elsewhere paths are UTF-16: an unpaired surrogate has no byte to show.
        path.to_string_lossy().into_owned()
    }
}

/// `bytes` as text, with each byte that is not part of valid UTF-8 written as `\xNN`.
pub fn escape_invalid_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// `text` with every control character (C0, DEL and C1, ESC included) made visible: `\n`,
/// `\r` and `\t` as such, the others as `\xNN` (ESC is `\x1b`) or `\u{NN}` above 0x7f.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A message from a library as one line: surrounding whitespace trimmed, each run of
/// whitespace holding a line break replaced by "; ", remaining control characters escaped.
pub fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    escape_controls(&lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_paths_are_unchanged_and_invalid_bytes_escaped() {
        assert_eq!(
            path_text(Path::new("photos/caf\u{e9} \u{1b}[31m.jpg")),
            "photos/caf\u{e9} \u{1b}[31m.jpg"
        );
        assert_eq!(escape_invalid_utf8(b"bad\xff.png"), "bad\\xff.png");
        assert_eq!(
            escape_invalid_utf8(b"a\xc3\xa9\xc3b"),
            "a\u{e9}\\xc3b",
            "valid é kept, a cut sequence escaped"
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let path = Path::new(std::ffi::OsStr::from_bytes(b"dir/bad\xff\xfe.png"));
            assert_eq!(path_text(path), "dir/bad\\xff\\xfe.png");
        }
    }

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(escape_controls("plain text, caf\u{e9}"), "plain text, caf\u{e9}");
        assert_eq!(escape_controls("\u{1b}[31mred\u{1b}[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape_controls("a\nb\tc\rd\u{7f}"), "a\\nb\\tc\\rd\\x7f");
        assert_eq!(escape_controls("x\u{9b}y"), "x\\u{9b}y", "C1 CSI");
        assert!(
            !escape_controls("\u{0}\u{7}\u{1b}\u{85}")
                .chars()
                .any(char::is_control)
        );
    }

    #[test]
    fn messages_become_one_line() {
        assert_eq!(
            one_line("I/O errors Not enough bytes, expected 2 but found 0\n"),
            "I/O errors Not enough bytes, expected 2 but found 0"
        );
        assert_eq!(one_line("first\n\n  second \r\nthird"), "first; second; third");
        assert_eq!(one_line("bell\u{7} inside"), "bell\\x07 inside");
        assert_eq!(one_line(""), "");
    }
}
