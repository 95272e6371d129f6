//! LwM2M paths: `/`, `/o`, `/o/i`, `/o/i/r` and `/o/i/r/ri`.

use std::fmt;

/// The largest ID an object, instance or resource may have; 65535 is reserved by the spec.
pub const MAX_ID: u16 = 65534;

/// A path into the object tree. Ordered depth-first: a path sorts right before its children.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path {
    ids: [u16; 4],
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// More than four segments.
    TooDeep,
    /// A segment that is not a decimal number in 0..=65534.
    BadSegment(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::TooDeep => write!(f, "path has more than four segments"),
            PathError::BadSegment(s) => write!(f, "path segment {s:?} is not an ID in 0..=65534"),
        }
    }
}

impl std::error::Error for PathError {}

impl Path {
    pub const ROOT: Path = Path {
        ids: [0; 4],
        len: 0,
    };

    pub const fn object(o: u16) -> Path {
        Path {
            ids: [o, 0, 0, 0],
            len: 1,
        }
    }
    pub const fn instance(o: u16, i: u16) -> Path {
        Path {
            ids: [o, i, 0, 0],
            len: 2,
        }
    }
    pub const fn resource(o: u16, i: u16, r: u16) -> Path {
        Path {
            ids: [o, i, r, 0],
            len: 3,
        }
    }
    pub const fn resource_instance(o: u16, i: u16, r: u16, ri: u16) -> Path {
        Path {
            ids: [o, i, r, ri],
            len: 4,
        }
    }

    /// Builds a path from up to four IDs.
    pub fn from_ids(ids: &[u16]) -> Result<Path, PathError> {
        if ids.len() > 4 {
            return Err(PathError::TooDeep);
        }
        let mut p = Path::ROOT;
        for &id in ids {
            if id > MAX_ID {
                return Err(PathError::BadSegment(id.to_string()));
            }
            p.ids[p.len as usize] = id;
            p.len += 1;
        }
        Ok(p)
    }

    /// Parses URI path segments as they come out of CoAP Uri-Path options.
    /// An empty list is the root; a single empty segment (`/`) too.
    pub fn from_segments<'a>(
        segments: impl IntoIterator<Item = &'a str>,
    ) -> Result<Path, PathError> {
        let mut p = Path::ROOT;
        for s in segments {
            if s.is_empty() && p.len == 0 {
                continue;
            }
            if p.len == 4 {
                return Err(PathError::TooDeep);
            }
            let id = parse_id(s)?;
            p.ids[p.len as usize] = id;
            p.len += 1;
        }
        Ok(p)
    }

    /// Number of segments: 0 for the root, 4 for a resource instance.
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// The root has no segments; named like this for collections' sake.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_root(&self) -> bool {
        self.len == 0
    }
    pub fn ids(&self) -> &[u16] {
        &self.ids[..self.len as usize]
    }
    pub fn object_id(&self) -> Option<u16> {
        self.ids().first().copied()
    }
    pub fn instance_id(&self) -> Option<u16> {
        self.ids().get(1).copied()
    }
    pub fn resource_id(&self) -> Option<u16> {
        self.ids().get(2).copied()
    }
    pub fn resource_instance_id(&self) -> Option<u16> {
        self.ids().get(3).copied()
    }

    /// The path one level deeper, or `None` below a resource instance.
    pub fn child(&self, id: u16) -> Option<Path> {
        if self.len == 4 || id > MAX_ID {
            return None;
        }
        let mut p = *self;
        p.ids[p.len as usize] = id;
        p.len += 1;
        Some(p)
    }

    /// The path one level up; the root is its own parent.
    pub fn parent(&self) -> Path {
        let mut p = *self;
        if p.len > 0 {
            p.len -= 1;
            p.ids[p.len as usize] = 0;
        }
        p
    }

    /// Whether `other` is this path or lies below it.
    pub fn contains(&self, other: &Path) -> bool {
        self.len <= other.len && self.ids() == &other.ids[..self.len as usize]
    }
}

fn parse_id(s: &str) -> Result<u16, PathError> {
    // Leading zeros and signs are refused so that one path has one spelling.
    let valid = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    match s.parse::<u32>() {
        Ok(n) if valid && n <= MAX_ID as u32 => Ok(n as u16),
        _ => Err(PathError::BadSegment(s.to_string())),
    }
}

impl std::str::FromStr for Path {
    type Err = PathError;
    /// Parses `/3/0/1`; a trailing slash is not allowed except for the root `/`.
    fn from_str(s: &str) -> Result<Path, PathError> {
        let rest = s.strip_prefix('/').unwrap_or(s);
        if rest.is_empty() {
            return Ok(Path::ROOT);
        }
        Path::from_segments(rest.split('/')).and_then(|p| {
            if p.is_root() {
                Err(PathError::BadSegment(String::new()))
            } else {
                Ok(p)
            }
        })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            return f.write_str("/");
        }
        for id in self.ids() {
            write!(f, "/{id}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        for s in ["/", "/3", "/3/0", "/3/0/1", "/3/0/11/2", "/65534/0"] {
            assert_eq!(s.parse::<Path>().unwrap().to_string(), s);
        }
        for s in ["/3/0/1/2/3", "/a", "/3//1", "/65535", "/-1", "/01", "/3/"] {
            assert!(s.parse::<Path>().is_err(), "{s} accepted");
        }
    }

    #[test]
    fn depth_first_order() {
        let mut v: Vec<Path> = [
            "/3/1", "/3/0/1", "/3", "/3/0", "/1/0/1", "/3/0/0/2", "/3/0/0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            s,
            ["/1/0/1", "/3", "/3/0", "/3/0/0", "/3/0/0/2", "/3/0/1", "/3/1"]
        );
    }

    #[test]
    fn contains_and_parent() {
        let r = Path::resource(3, 0, 1);
        assert!(Path::object(3).contains(&r));
        assert!(Path::ROOT.contains(&r));
        assert!(!Path::instance(3, 1).contains(&r));
        assert_eq!(r.parent(), Path::instance(3, 0));
        assert_eq!(r.child(7), Some(Path::resource_instance(3, 0, 1, 7)));
        assert_eq!(Path::resource_instance(3, 0, 1, 7).child(1), None);
    }
}
