//! `os-release(5)`: the operating system's identification.

use std::io;
use std::path::Path;

use super::under;

/// The assignments of an os-release file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    fields: Vec<(String, String)>,
}

impl OsRelease {
    /// Reads `/etc/os-release`, or `/usr/lib/os-release` when the former does not exist.
    ///
    /// The man page says to use the `/etc` file exclusively when it exists, so any error
    /// other than "not found" is returned rather than hidden by the fallback.
    pub fn read(root: &Path) -> io::Result<Self> {
        match std::fs::read_to_string(under(root, "/etc/os-release")) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::read_to_string(under(root, "/usr/lib/os-release")).map(|t| Self::parse(&t))
            }
            Err(e) => Err(e),
        }
    }

    /// Parses the file's text with the shell-like rules of `os-release(5)`: `#` comment
    /// lines, blank lines, values in double quotes (backslash escapes `"`, `\`, `` ` `` and
    /// `$`), in single quotes (no escapes) or bare (backslash escapes any character).
    ///
    /// Malformed lines (no `=`, invalid key, unterminated quote) are skipped: one bad line
    /// must not cost the rest of the identification.
    pub fn parse(text: &str) -> Self {
        let fields = text.lines().filter_map(parse_line).collect();
        OsRelease { fields }
    }

    /// The value of `key`; the last assignment wins, as when the shell sources the file.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A name for humans: `PRETTY_NAME`, else `NAME` followed by `VERSION_ID`.
    pub fn display_name(&self) -> Option<String> {
        let non_empty = |key| self.get(key).filter(|v| !v.is_empty());
        if let Some(pretty) = non_empty("PRETTY_NAME") {
            return Some(pretty.to_owned());
        }
        match (non_empty("NAME"), non_empty("VERSION_ID")) {
            (Some(name), Some(version)) => Some(format!("{name} {version}")),
            (Some(name), None) => Some(name.to_owned()),
            (None, _) => None,
        }
    }
}

fn parse_line(line: &str) -> Option<(String, String)> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (key, value) = line.split_once('=')?;
    let key = key.trim_end();
    if !is_valid_key(key) {
        return None;
    }
    Some((key.to_owned(), parse_value(value.trim_start())?))
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Unquotes one value. Whitespace inside a bare value is kept (as systemd's own parser
/// does), trailing whitespace is dropped. `None` for an unterminated quote.
fn parse_value(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut pending_space = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            pending_space.push(c);
            continue;
        }
        out.push_str(&pending_space);
        pending_space.clear();
        match c {
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        e @ ('"' | '\\' | '`' | '$') => out.push(e),
                        e => {
                            out.push('\\');
                            out.push(e);
                        }
                    },
                    other => out.push(other),
                }
            },
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    other => out.push(other),
                }
            },
            // A trailing backslash would continue the line in the shell; there is no next
            // line to join here, so it is dropped.
            '\\' => out.extend(chars.next()),
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of `os-release(5)` for Fedora, abbreviated.
    const FEDORA: &str = r#"NAME=Fedora
VERSION="32 (Workstation Edition)"
ID=fedora
VERSION_ID=32
PRETTY_NAME="Fedora 32 (Workstation Edition)"
ANSI_COLOR="0;34"
LOGO=fedora-logo-icon
CPE_NAME="cpe:/o:fedoraproject:fedora:32"
HOME_URL="https://fedoraproject.org/"
VARIANT="Workstation Edition"
VARIANT_ID=workstation
"#;

    #[test]
    fn man_page_example() {
        let os = OsRelease::parse(FEDORA);
        assert_eq!(os.get("NAME"), Some("Fedora"));
        assert_eq!(os.get("VERSION"), Some("32 (Workstation Edition)"));
        assert_eq!(os.get("CPE_NAME"), Some("cpe:/o:fedoraproject:fedora:32"));
        assert_eq!(os.get("VARIANT_ID"), Some("workstation"));
        assert_eq!(
            os.display_name().as_deref(),
            Some("Fedora 32 (Workstation Edition)")
        );
    }

    #[test]
    fn debian_bookworm() {
        let os = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n",
        );
        assert_eq!(
            os.display_name().as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn name_and_version_id_without_pretty_name() {
        let os = OsRelease::parse("NAME='Yocto'\nVERSION_ID=4.0.12\n");
        assert_eq!(os.display_name().as_deref(), Some("Yocto 4.0.12"));
        let os = OsRelease::parse("NAME=Buildroot\nPRETTY_NAME=\n");
        assert_eq!(os.display_name().as_deref(), Some("Buildroot"));
        assert_eq!(OsRelease::parse("ID=x\n").display_name(), None);
    }

    #[test]
    fn comments_blank_lines_and_bad_lines() {
        let os = OsRelease::parse(
            "# NAME=commented\n\n   \n  # indented comment\nno equals sign\n\
             1BAD=key\nBAD-KEY=x\nNAME=kept\n",
        );
        assert_eq!(os.get("NAME"), Some("kept"));
        assert_eq!(os.fields.len(), 1);
    }

    #[test]
    fn double_quote_escapes() {
        let os = OsRelease::parse(
            r#"A="say \"hi\" \\ \$HOME \`cmd\`"
B="keep \n as is"
"#,
        );
        assert_eq!(os.get("A"), Some(r#"say "hi" \ $HOME `cmd`"#));
        assert_eq!(os.get("B"), Some(r"keep \n as is"));
    }

    #[test]
    fn single_quotes_take_backslashes_literally() {
        let os = OsRelease::parse(r#"A='a \"b\" \\ c'"#);
        assert_eq!(os.get("A"), Some(r#"a \"b\" \\ c"#));
    }

    #[test]
    fn bare_values() {
        let os = OsRelease::parse("A=with\\ space\nB=  padded  \t\nC=\nD=a'b c'd\r\n");
        assert_eq!(os.get("A"), Some("with space"));
        assert_eq!(os.get("B"), Some("padded"));
        assert_eq!(os.get("C"), Some(""));
        assert_eq!(os.get("D"), Some("ab cd"));
    }

    #[test]
    fn unterminated_quotes_skip_the_line() {
        let os = OsRelease::parse("A=\"open\nB='open\nC=\"end\\\"\nD=ok\n");
        assert_eq!(os.get("A"), None);
        assert_eq!(os.get("B"), None);
        assert_eq!(os.get("C"), None);
        assert_eq!(os.get("D"), Some("ok"));
    }

    #[test]
    fn last_assignment_wins() {
        let os = OsRelease::parse("NAME=first\nNAME=second\n");
        assert_eq!(os.get("NAME"), Some("second"));
    }

    #[test]
    fn spaces_around_equals_and_non_ascii() {
        let os = OsRelease::parse("NAME = \"Système ☃\"\n");
        assert_eq!(os.get("NAME"), Some("Système ☃"));
    }

    #[test]
    fn read_prefers_etc_and_falls_back_to_usr_lib() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "NAME=vendor\n").unwrap();
        assert_eq!(OsRelease::read(root).unwrap().get("NAME"), Some("vendor"));

        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/os-release"), "NAME=local\n").unwrap();
        assert_eq!(OsRelease::read(root).unwrap().get("NAME"), Some("local"));
    }

    #[test]
    fn read_follows_the_usual_relative_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "ID=debian\n").unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        assert_eq!(OsRelease::read(root).unwrap().get("ID"), Some("debian"));
    }

    #[test]
    fn read_without_any_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = OsRelease::read(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
