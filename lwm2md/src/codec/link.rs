//! CoRE Link Format (content format 40, RFC 6690), as used in the Register payload and
//! Discover responses: `</3/0>;ver=1.1,</>;rt="oma.lwm2m";ct=110`.

use super::CodecError;

/// One link: a target URI reference and its parameters in order; a parameter without
/// `=value` has `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub target: String,
    pub attrs: Vec<(String, Option<String>)>,
}

impl Link {
    pub fn new(target: impl Into<String>) -> Link {
        Link {
            target: target.into(),
            attrs: Vec::new(),
        }
    }

    /// Adds a parameter, builder style.
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Link {
        self.attrs.push((name.into(), Some(value.into())));
        self
    }

    /// The value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Parameters RFC 6690 defines as relation types or quoted strings: always quoted, as
/// servers commonly expect (`rt="oma.lwm2m"`).
const QUOTED: [&str; 5] = ["rt", "if", "title", "anchor", "rel"];

/// Characters a parameter value may carry unquoted (RFC 6690 `ptoken`).
fn is_ptoken(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'()*+-./:<=>?@[]^_`{|}~".contains(&b)
}

/// Writes links comma-separated, quoting values only where needed.
pub fn encode_links(links: &[Link]) -> String {
    let mut out = String::new();
    for (k, link) in links.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push('<');
        out.push_str(&link.target);
        out.push('>');
        for (name, value) in &link.attrs {
            out.push(';');
            out.push_str(name);
            if let Some(value) = value {
                out.push('=');
                let plain = !value.is_empty()
                    && value.bytes().all(is_ptoken)
                    && !QUOTED.contains(&name.as_str());
                if plain {
                    out.push_str(value);
                } else {
                    out.push('"');
                    for c in value.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
        }
    }
    out
}

/// Parses a link-format document. Whitespace around separators is tolerated, quoted
/// values may hold commas, semicolons and backslash escapes.
pub fn parse_links(text: &str) -> Result<Vec<Link>, CodecError> {
    let mut p = Parser {
        rest: text.trim_start(),
    };
    let mut links = Vec::new();
    while !p.rest.is_empty() {
        links.push(p.link()?);
        p.skip_ws();
        if !p.eat(',') && !p.rest.is_empty() {
            return Err(bad("expected ',' between links"));
        }
        p.skip_ws();
    }
    Ok(links)
}

fn bad(why: &str) -> CodecError {
    CodecError::Malformed(format!("link format: {why}"))
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn link(&mut self) -> Result<Link, CodecError> {
        if !self.eat('<') {
            return Err(bad("a link starts with '<'"));
        }
        let end = self.rest.find('>').ok_or_else(|| bad("'<' without '>'"))?;
        let (target, rest) = self.rest.split_at(end);
        self.rest = rest.get(1..).unwrap_or("");
        let mut link = Link::new(target);
        loop {
            self.skip_ws();
            if !self.eat(';') {
                return Ok(link);
            }
            self.skip_ws();
            let name_len = self
                .rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$&+-.^_`|~*".contains(c)))
                .unwrap_or(self.rest.len());
            if name_len == 0 {
                return Err(bad("empty parameter name"));
            }
            let (name, rest) = self.rest.split_at(name_len);
            self.rest = rest;
            self.skip_ws();
            let value = if self.eat('=') {
                self.skip_ws();
                Some(self.value()?)
            } else {
                None
            };
            link.attrs.push((name.to_string(), value));
        }
    }

    fn value(&mut self) -> Result<String, CodecError> {
        if self.eat('"') {
            let mut value = String::new();
            let mut chars = self.rest.char_indices();
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = self.rest.get(k + 1..).unwrap_or("");
                        return Ok(value);
                    }
                    '\\' => match chars.next() {
                        Some((_, escaped)) => value.push(escaped),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            Err(bad("unterminated quoted string"))
        } else {
            let len = self
                .rest
                .find(|c: char| matches!(c, ',' | ';') || c.is_whitespace())
                .unwrap_or(self.rest.len());
            let (value, rest) = self.rest.split_at(len);
            self.rest = rest;
            Ok(value.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn register_payload() {
        // A Register payload: the root link with rt and the supported content formats.
        let links = vec![
            Link::new("/")
                .attr("rt", "oma.lwm2m")
                .attr("ct", "60 110 112 11542 11543"),
            Link::new("/1/0"),
            Link::new("/3").attr("ver", "1.1"),
            Link::new("/3/0"),
        ];
        let text = r#"</>;rt="oma.lwm2m";ct="60 110 112 11542 11543",</1/0>,</3>;ver=1.1,</3/0>"#;
        assert_eq!(encode_links(&links), text);
        assert_eq!(parse_links(text).unwrap(), links);
    }

    #[test]
    fn discover_payload() {
        // A Discover answer on /3/0 with attributes and dim.
        let text = "</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/2>,</3/0/6>;dim=2,</3/0/7>;dim=2;gt=50";
        let links = parse_links(text).unwrap();
        assert_eq!(links.len(), 5);
        assert_eq!(links[0].get("pmax"), Some("60"));
        assert_eq!(links[3].get("dim"), Some("2"));
        assert_eq!(links[4].get("gt"), Some("50"));
        assert_eq!(encode_links(&links), text);
    }

    #[test]
    fn tolerant_parsing() {
        let text = " </a> ; rt = \"x,y;z\" ; obs ,\n </b>;title=\"say \\\"hi\\\"\" ";
        let links = parse_links(text).unwrap();
        assert_eq!(
            links,
            vec![
                Link {
                    target: "/a".into(),
                    attrs: vec![("rt".into(), Some("x,y;z".into())), ("obs".into(), None)],
                },
                Link::new("/b").attr("title", "say \"hi\""),
            ]
        );
        assert_eq!(parse_links("").unwrap(), vec![]);
        for bad in ["/a", "</a", "</a>;", "</a>;rt=\"x", "</a> </b>", "</a>;=1"] {
            assert!(parse_links(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn link() -> impl Strategy<Value = Link> {
        let attr = ("[a-z][a-z0-9]{0,5}", proptest::option::of("[ -~]{0,8}"));
        ("/[0-9/]{0,10}", proptest::collection::vec(attr, 0..4))
            .prop_map(|(target, attrs)| Link { target, attrs })
    }

    proptest! {
        #[test]
        fn round_trip(links in proptest::collection::vec(link(), 0..5)) {
            prop_assert_eq!(parse_links(&encode_links(&links)).unwrap(), links);
        }
    }
}
