//! Observations (RFC 7641, Core TS §6.4): which server watches which path, and when a
//! notification is due under the attributes in effect.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::coap::RequestId;
use crate::codec::{ContentFormat, Record};
use crate::path::Path;
use crate::value::Value;

use super::attributes::Attributes;

/// RFC 7641 §4.5: a notification is sent confirmable at least once a day so that a
/// vanished observer is noticed.
pub const CON_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct Observation {
    pub server: u16,
    pub peer: SocketAddr,
    pub token: Vec<u8>,
    /// The observed path; the root for a composite observation.
    pub path: Path,
    /// The paths of an Observe-Composite (FETCH); empty for a plain Observe.
    pub composite: Vec<Path>,
    pub format: ContentFormat,
    /// The last Observe sequence number sent (24 bits).
    pub seq: u32,
    pub last_sent: Instant,
    pub last_con: Instant,
    /// When the reporting criteria were last evaluated (epmin/epmax count from here).
    pub last_eval: Instant,
    /// What the last notification (or the establishing response) carried.
    pub last_records: Vec<Record>,
    /// The values at the last evaluation (for crossings and edges).
    pub last_seen: Vec<Record>,
    /// A value under the path may have changed since `last_records`.
    pub changed: bool,
    /// Composite: which of its paths changed (bit i for path i; the last bit stands for
    /// every path beyond 63), so that each path's own pmin applies.
    pub changed_paths: u64,
    /// Recent notifications, to match a RST or timeout to this observation.
    pub recent: Vec<RequestId>,
    /// Notifications produced while the server could not be reached (/1/x/6), encoded
    /// in `format`, oldest first, sent once an Update gets through.
    pub stored: VecDeque<Vec<u8>>,
}

/// Who observes what, in which format: what identifies an observation.
pub struct Target {
    pub server: u16,
    pub peer: SocketAddr,
    pub token: Vec<u8>,
    pub path: Path,
    pub composite: Vec<Path>,
    pub format: ContentFormat,
}

impl Observation {
    /// An observation starting at `now` with nothing sent yet.
    pub fn new(target: Target, now: Instant) -> Observation {
        let Target {
            server,
            peer,
            token,
            path,
            composite,
            format,
        } = target;
        Observation {
            server,
            peer,
            token,
            path,
            composite,
            format,
            seq: 0,
            last_sent: now,
            last_con: now,
            last_eval: now,
            last_records: Vec::new(),
            last_seen: Vec::new(),
            changed: false,
            changed_paths: 0,
            recent: Vec::new(),
            stored: VecDeque::new(),
        }
    }

    /// Whether a change at `path` concerns this observation.
    pub fn covers(&self, path: &Path) -> bool {
        let overlaps = |p: &Path| p.contains(path) || path.contains(p);
        if self.composite.is_empty() {
            overlaps(&self.path)
        } else {
            self.composite.iter().any(overlaps)
        }
    }

    /// Notes a change at `changed` if it concerns this observation.
    pub fn note_change(&mut self, changed: &Path) {
        let overlaps = |p: &Path| p.contains(changed) || changed.contains(p);
        if self.composite.is_empty() {
            self.changed |= overlaps(&self.path);
            return;
        }
        for (i, p) in self.composite.iter().enumerate() {
            if overlaps(p) {
                self.changed = true;
                self.changed_paths |= 1 << i.min(63);
            }
        }
    }

    /// Whether composite path `i` changed since the last evaluation.
    pub fn path_changed(&self, i: usize) -> bool {
        self.changed_paths & (1 << i.min(63)) != 0
    }

    /// The next instant a notification may be due, if any. Nothing pending and no pmax:
    /// no deadline at all, so an idle observation costs no wake-ups.
    /// A change is evaluated no earlier than epmin after the previous evaluation and
    /// reported no earlier than pmin after the previous notification; epmax forces an
    /// evaluation (a value that changed without being pushed is caught there).
    pub fn deadline(&self, attrs: &Attributes) -> Option<Instant> {
        let pmin = Duration::from_secs(attrs.pmin.unwrap_or(0).into());
        let epmin = Duration::from_secs(attrs.epmin.unwrap_or(0).into());
        let by_change = self
            .changed
            .then(|| (self.last_sent + pmin).max(self.last_eval + epmin));
        let by_pmax = attrs
            .pmax
            .filter(|&p| p > 0)
            .map(|p| self.last_sent + Duration::from_secs(p.into()).max(pmin));
        let by_epmax = (!self.changed).then(|| self.epmax_due_at(attrs)).flatten();
        by_change.into_iter().chain(by_pmax).chain(by_epmax).min()
    }

    fn epmax_due_at(&self, attrs: &Attributes) -> Option<Instant> {
        attrs
            .epmax
            .filter(|&p| p > 0)
            .map(|p| self.last_eval + Duration::from_secs(p.into()))
    }

    /// Whether epmax says the criteria must be evaluated now.
    pub fn epmax_elapsed(&self, attrs: &Attributes, now: Instant) -> bool {
        self.epmax_due_at(attrs).is_some_and(|t| now >= t)
    }

    /// Whether pmax says a notification must go out now whatever the value.
    pub fn pmax_elapsed(&self, attrs: &Attributes, now: Instant) -> bool {
        attrs
            .pmax
            .filter(|&p| p > 0)
            .is_some_and(|p| now >= self.last_sent + Duration::from_secs(p.into()))
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq = (self.seq + 1) & 0x00ff_ffff;
        self.seq
    }

    /// Keeps a notification for later delivery (notification storing).
    pub fn store(&mut self, payload: Vec<u8>, limit: usize) {
        if self.stored.len() >= limit.max(1) {
            self.stored.pop_front();
            tracing::warn!(path = %self.path, "stored notifications full: the oldest is dropped");
        }
        self.stored.push_back(payload);
    }

    pub fn remember(&mut self, id: RequestId) {
        if self.recent.len() >= 4 {
            self.recent.remove(0);
        }
        self.recent.push(id);
    }
}

/// Whether the current value is worth a notification (Core TS 1.1 §5.1.2, 1.2 §7.3.2).
/// `notified` is what the server has, `seen` the value at the previous evaluation.
/// Without conditions any difference from what the server has counts. With edge (1.2,
/// booleans), only a turn the way asked for since the previous evaluation counts; with
/// gt or lt, a threshold crossed in either direction since the previous evaluation; with
/// st, a step of at least st from what the server has. Conditions apply to a single
/// value of the right type; for anything else they are ignored.
pub fn worth_notifying(
    attrs: &Attributes,
    notified: &[Record],
    seen: &[Record],
    current: &[Record],
) -> bool {
    if let (Some(edge), [old], [new]) = (attrs.edge, seen, current) {
        if let (Value::Boolean(old), Value::Boolean(new)) = (&old.value, &new.value) {
            return old != new && *new == edge;
        }
    }
    let unconditional = attrs.gt.is_none() && attrs.lt.is_none() && attrs.st.is_none();
    let (Some(before), Some(reported), Some(new), false) = (
        single_number(seen),
        single_number(notified),
        single_number(current),
        unconditional,
    ) else {
        return current != notified;
    };
    let crossed = |t: f64| (before <= t) != (new <= t);
    attrs.gt.is_some_and(crossed)
        || attrs.lt.is_some_and(crossed)
        || attrs.st.is_some_and(|st| (new - reported).abs() >= st)
}

fn single_number(records: &[Record]) -> Option<f64> {
    match records {
        [r] => match r.value {
            Value::Integer(n) | Value::Time(n) => Some(n as f64),
            Value::Unsigned(n) => Some(n as f64),
            Value::Float(x) => Some(x),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(x: f64) -> Vec<Record> {
        vec![Record {
            path: Path::resource(3303, 0, 5700),
            value: Value::Float(x),
        }]
    }

    #[test]
    fn thresholds() {
        let none = Attributes::default();
        assert!(worth_notifying(&none, &rec(1.0), &rec(1.0), &rec(1.1)));
        assert!(
            !worth_notifying(&none, &rec(1.0), &rec(1.5), &rec(1.0)),
            "back to what the server has"
        );
        let gt = Attributes {
            gt: Some(20.0),
            ..Default::default()
        };
        assert!(!worth_notifying(&gt, &rec(18.0), &rec(18.0), &rec(19.0)));
        assert!(worth_notifying(&gt, &rec(18.0), &rec(19.0), &rec(21.0)));
        assert!(worth_notifying(&gt, &rec(21.0), &rec(21.0), &rec(19.0)));
        let st = Attributes {
            st: Some(0.5),
            ..Default::default()
        };
        assert!(!worth_notifying(&st, &rec(20.0), &rec(20.3), &rec(20.4)));
        assert!(worth_notifying(&st, &rec(20.0), &rec(20.3), &rec(19.5)));
    }

    #[test]
    fn deadlines() {
        let now = Instant::now();
        let mut o = Observation::new(
            Target {
                server: 1,
                peer: "192.0.2.1:5683".parse().unwrap(),
                token: vec![1],
                path: Path::resource(3, 0, 10),
                composite: Vec::new(),
                format: ContentFormat::Text,
            },
            now,
        );
        let attrs = Attributes {
            pmin: Some(10),
            pmax: Some(60),
            ..Default::default()
        };
        assert_eq!(o.deadline(&Attributes::default()), None);
        assert_eq!(o.deadline(&attrs), Some(now + Duration::from_secs(60)));
        o.changed = true;
        assert_eq!(o.deadline(&attrs), Some(now + Duration::from_secs(10)));
        assert!(!o.pmax_elapsed(&attrs, now + Duration::from_secs(59)));
        assert!(o.pmax_elapsed(&attrs, now + Duration::from_secs(60)));
        o.seq = 0x00ff_ffff;
        assert_eq!(o.next_seq(), 0);

        // epmin holds a change back from the last evaluation, beyond pmin.
        let eval = Attributes {
            pmin: Some(10),
            epmin: Some(30),
            epmax: Some(120),
            ..Default::default()
        };
        assert_eq!(o.deadline(&eval), Some(now + Duration::from_secs(30)));
        // Nothing pending: the next evaluation is due at epmax.
        o.changed = false;
        assert_eq!(o.deadline(&eval), Some(now + Duration::from_secs(120)));
        assert!(!o.epmax_elapsed(&eval, now + Duration::from_secs(119)));
        assert!(o.epmax_elapsed(&eval, now + Duration::from_secs(120)));
    }
}
