//! The shape of an information line: `+NAME: value,"quoted, with comma",,value`.

/// One comma-separated value of an information line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Without the quotes when it was quoted.
    pub text: &'a str,
    pub quoted: bool,
}

impl<'a> Field<'a> {
    /// An empty unquoted field stands for an omitted value.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn int(&self) -> Option<i64> {
        self.text.trim().parse().ok()
    }

    pub fn uint(&self) -> Option<u32> {
        self.text.trim().parse().ok()
    }

    /// Hexadecimal with or without `0x` (LAC, TAC, cell IDs).
    pub fn hex(&self) -> Option<u64> {
        let t = self.text.trim();
        let t = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        if t.is_empty() || t.len() > 16 {
            return None;
        }
        u64::from_str_radix(t, 16).ok()
    }

    pub fn float(&self) -> Option<f64> {
        self.text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
    }
}

/// Splits `line` after `prefix` (`+CSQ`, with or without the colon and spaces) into
/// fields. `None` when the line does not start with the prefix.
pub fn after_prefix<'a>(line: &'a str, prefix: &str) -> Option<Vec<Field<'a>>> {
    let rest = strip_prefix_ci(line.trim(), prefix)?;
    let rest = rest.strip_prefix(':')?;
    Some(split(rest.trim_start()))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Comma-separated values; commas inside double quotes belong to the value. An
/// unterminated quote runs to the end of the line.
pub fn split(s: &str) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let trimmed = rest.trim_start();
        if let Some(inner) = trimmed.strip_prefix('"') {
            let (text, after) = match inner.find('"') {
                Some(end) => (
                    inner.get(..end).unwrap_or(""),
                    inner.get(end + 1..).unwrap_or(""),
                ),
                None => (inner, ""),
            };
            out.push(Field { text, quoted: true });
            match after.find(',') {
                Some(comma) => rest = after.get(comma + 1..).unwrap_or(""),
                None => return out,
            }
        } else {
            match trimmed.find(',') {
                Some(comma) => {
                    out.push(Field {
                        text: trimmed.get(..comma).unwrap_or("").trim_end(),
                        quoted: false,
                    });
                    rest = trimmed.get(comma + 1..).unwrap_or("");
                }
                None => {
                    out.push(Field {
                        text: trimmed.trim_end(),
                        quoted: false,
                    });
                    return out;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_and_empty_fields() {
        let f = after_prefix("+CGDCONT: 1,\"IP\",\"a,b\",\"0.0.0.0\",,", "+CGDCONT").unwrap();
        let texts: Vec<&str> = f.iter().map(|f| f.text).collect();
        assert_eq!(texts, vec!["1", "IP", "a,b", "0.0.0.0", "", ""]);
        assert!(f[1].quoted && !f[0].quoted);
        assert_eq!(
            after_prefix("+csq: 5,99", "+CSQ").unwrap()[0].int(),
            Some(5)
        );
        assert!(after_prefix("+CSQX: 5", "+CSQ").is_none());
        assert!(after_prefix("+CS", "+CSQ").is_none());
        let f = split("\"unterminated, still");
        assert_eq!(f[0].text, "unterminated, still");
        assert_eq!(split("").len(), 1);
    }

    #[test]
    fn numbers() {
        let f = split("0x21F9,8F381C5,-1126,0.50,zz,99999999999999999999");
        assert_eq!(f[0].hex(), Some(0x21f9));
        assert_eq!(f[1].hex(), Some(0x8f381c5));
        assert_eq!(f[2].int(), Some(-1126));
        assert_eq!(f[3].float(), Some(0.5));
        assert_eq!(f[4].hex(), None);
        assert_eq!(f[5].int(), None);
    }
}
