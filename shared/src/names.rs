//! Safe zip entry names from user-given labels and ids.
//!
//! A label or id becomes one path component: it can never contain a
//! separator, never be `.`/`..`, never hold control characters or characters
//! Windows refuses, never be a Windows device name, and is shortened to a
//! length every file system accepts. Unicode letters are kept readable.
//! [`EntryNamer`] then makes names unique within one zip (case-insensitively,
//! for case-insensitive file systems), so colliding images all survive.

use std::collections::HashSet;

/// Longest component we produce, in characters (well under the 255-byte
/// limit of common file systems even for 4-byte characters).
pub const MAX_NAME_CHARS: usize = 60;

const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Make `raw` safe as one path component.
pub fn sanitize_component(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            // Invisible direction overrides would make a listing lie about the name.
            '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200F}'
            | '\u{FEFF}' => '_',
            c => c,
        })
        .collect();

    // Windows drops trailing dots and spaces; leading dots hide files.
    let trimmed = out.trim_matches(|c: char| c == '.' || c == ' ' || c.is_whitespace());
    out = trimmed.to_string();
    if out.chars().count() > MAX_NAME_CHARS {
        out = out.chars().take(MAX_NAME_CHARS).collect();
        out = out.trim_end_matches(['.', ' ']).to_string();
    }
    if out.is_empty() {
        return "_".to_string();
    }
    let stem = out.split('.').next().unwrap_or("").trim_end();
    if WINDOWS_RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(stem))
    {
        out.insert(0, '_');
    }
    out
}

/// Hands out unique entry names `LABEL/ID.EXT` within one zip.
#[derive(Debug, Default)]
pub struct EntryNamer {
    taken: HashSet<String>,
}

impl EntryNamer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserve a name no other entry uses (`manifest.json` is reserved too).
    pub fn entry_name(&mut self, label: &str, id: &str, extension: &str) -> String {
        let folder = sanitize_component(label);
        let stem = sanitize_component(id);
        let mut suffix = 1u32;
        loop {
            let name = if suffix == 1 {
                format!("{folder}/{stem}.{extension}")
            } else {
                format!("{folder}/{stem}~{suffix}.{extension}")
            };
            if self.taken.insert(name.to_lowercase()) {
                return name;
            }
            suffix += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_dots_cannot_escape() {
        assert_eq!(sanitize_component("../x"), "_x");
        assert_eq!(sanitize_component(".."), "_");
        assert_eq!(sanitize_component("."), "_");
        assert_eq!(sanitize_component("a/b"), "a_b");
        assert_eq!(sanitize_component("a\\b"), "a_b");
        assert_eq!(sanitize_component("/etc/passwd"), "_etc_passwd");
        assert_eq!(sanitize_component("C:\\Windows"), "C__Windows");
        assert_eq!(sanitize_component("..\\..\\x"), "_.._x");
        for raw in ["../x", "..", "a/../../b", "\\\\server\\share", "/abs"] {
            let name = sanitize_component(raw);
            assert!(
                !name.contains('/') && !name.contains('\\') && name != ".." && name != ".",
                "{raw} -> {name}"
            );
        }
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(sanitize_component("a\0b"), "a_b");
        assert_eq!(sanitize_component("a\nb\tc\x7f"), "a_b_c_");
        assert_eq!(sanitize_component("evil\u{202E}gpj.exe"), "evil_gpj.exe");
    }

    #[test]
    fn empty_and_blank_names_get_a_placeholder() {
        assert_eq!(sanitize_component(""), "_");
        assert_eq!(sanitize_component("   "), "_");
        assert_eq!(sanitize_component("..."), "_");
    }

    #[test]
    fn windows_reserved_names_are_defused() {
        assert_eq!(sanitize_component("CON"), "_CON");
        assert_eq!(sanitize_component("nul"), "_nul");
        assert_eq!(sanitize_component("com1.txt"), "_com1.txt");
        assert_eq!(sanitize_component("CONSOLE"), "CONSOLE");
        assert_eq!(sanitize_component("a:b*c?d"), "a_b_c_d");
    }

    #[test]
    fn long_names_are_shortened() {
        let long = "ü".repeat(500);
        let name = sanitize_component(&long);
        assert_eq!(name.chars().count(), MAX_NAME_CHARS);
        assert!(name.len() <= 255);
    }

    #[test]
    fn unicode_stays_readable() {
        assert_eq!(sanitize_component("chats noirs 🐈"), "chats noirs 🐈");
        assert_eq!(sanitize_component("猫"), "猫");
        assert_eq!(sanitize_component("Äpfel"), "Äpfel");
    }

    #[test]
    fn colliding_names_stay_distinct() {
        let mut namer = EntryNamer::new();
        assert_eq!(namer.entry_name("cats", "a/b", "jpg"), "cats/a_b.jpg");
        assert_eq!(namer.entry_name("cats", "a\\b", "jpg"), "cats/a_b~2.jpg");
        assert_eq!(namer.entry_name("cats", "a_b", "jpg"), "cats/a_b~3.jpg");
        assert_eq!(namer.entry_name("Cats", "A_B", "jpg"), "Cats/A_B~4.jpg");
        assert_eq!(namer.entry_name("dogs", "a/b", "jpg"), "dogs/a_b.jpg");
    }
}
