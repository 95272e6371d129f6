//! Registration retries per the Server object (Core TS §6.2.1.1): attempts within a
//! communication sequence back off exponentially from the Communication Retry Timer;
//! after Communication Retry Count failures the sequence has failed and the next one
//! starts after the Sequence Delay Timer; after Sequence Retry Count failed sequences the
//! registration has failed (then bootstrap, when /1/x/16 says so).

use std::time::Duration;

use crate::model::Object;
use crate::objects::server;
use crate::value::{ResourceValue, Value};

/// The longest delay taken from a resource: values a server writes must not overflow
/// the clock (about 136 years).
pub const MAX_DELAY: Duration = Duration::from_secs(u32::MAX as u64);

/// A delay of `secs` seconds, capped at `MAX_DELAY`.
pub fn delay_secs(secs: u64) -> Duration {
    Duration::from_secs(secs).min(MAX_DELAY)
}

/// The resources /1/x/16–20, with the spec's defaults where absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRules {
    pub retry_count: u32,
    pub retry_timer: Duration,
    pub sequence_delay: Duration,
    pub sequence_retry_count: u32,
    pub bootstrap_on_failure: bool,
}

impl Default for RetryRules {
    fn default() -> Self {
        RetryRules {
            retry_count: 5,
            retry_timer: Duration::from_secs(60),
            sequence_delay: Duration::from_secs(86400),
            sequence_retry_count: 1,
            bootstrap_on_failure: true,
        }
    }
}

/// What follows a failed Register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The next attempt of the same sequence, after this delay.
    Attempt(Duration),
    /// A new sequence, after the Sequence Delay Timer.
    Sequence(Duration),
    /// Every sequence failed: the registration has failed.
    Exhausted,
}

/// Where a session is in its retry schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Failed attempts in the current sequence.
    pub attempts: u32,
    /// Failed sequences.
    pub sequences: u32,
}

impl RetryRules {
    /// Reads the rules from the Server object instance `instance`.
    pub fn of(obj: &dyn Object, instance: u16) -> RetryRules {
        let d = RetryRules::default();
        let int = |r| match obj.read(instance, r) {
            Some(ResourceValue::Single(Value::Integer(n))) => u64::try_from(n).ok(),
            Some(ResourceValue::Single(Value::Unsigned(n))) => Some(n),
            _ => None,
        };
        let count = |r, default: u32| {
            int(r)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX).max(1))
                .unwrap_or(default)
        };
        RetryRules {
            retry_count: count(server::COMMUNICATION_RETRY_COUNT, d.retry_count),
            retry_timer: int(server::COMMUNICATION_RETRY_TIMER).map_or(d.retry_timer, delay_secs),
            sequence_delay: int(server::SEQUENCE_DELAY_TIMER).map_or(d.sequence_delay, delay_secs),
            sequence_retry_count: count(server::SEQUENCE_RETRY_COUNT, d.sequence_retry_count),
            bootstrap_on_failure: match obj
                .read(instance, server::BOOTSTRAP_ON_REGISTRATION_FAILURE)
            {
                Some(ResourceValue::Single(Value::Boolean(b))) => b,
                _ => d.bootstrap_on_failure,
            },
        }
    }

    /// Records a failed attempt and says what comes next.
    pub fn next(&self, state: &mut RetryState) -> Retry {
        state.attempts = state.attempts.saturating_add(1);
        if state.attempts < self.retry_count {
            // retry timer × 2^(attempt − 1)
            let factor = 1u32.checked_shl(state.attempts - 1).unwrap_or(u32::MAX);
            return Retry::Attempt(self.retry_timer.saturating_mul(factor).min(MAX_DELAY));
        }
        state.attempts = 0;
        state.sequences = state.sequences.saturating_add(1);
        if state.sequences < self.sequence_retry_count {
            return Retry::Sequence(self.sequence_delay);
        }
        state.sequences = 0;
        Retry::Exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_five_attempts_in_one_sequence() {
        let rules = RetryRules::default();
        let mut s = RetryState::default();
        let got: Vec<Retry> = (0..5).map(|_| rules.next(&mut s)).collect();
        let secs = |n| Retry::Attempt(Duration::from_secs(n));
        assert_eq!(
            got,
            [secs(60), secs(120), secs(240), secs(480), Retry::Exhausted]
        );
        assert_eq!(s, RetryState::default());
    }

    #[test]
    fn sequences_repeat_after_the_sequence_delay() {
        let rules = RetryRules {
            retry_count: 2,
            retry_timer: Duration::from_secs(10),
            sequence_delay: Duration::from_secs(300),
            sequence_retry_count: 3,
            bootstrap_on_failure: false,
        };
        let mut s = RetryState::default();
        let got: Vec<Retry> = (0..6).map(|_| rules.next(&mut s)).collect();
        let a = Retry::Attempt(Duration::from_secs(10));
        let q = Retry::Sequence(Duration::from_secs(300));
        assert_eq!(got, [a, q, a, q, a, Retry::Exhausted]);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let rules = RetryRules {
            retry_count: u32::MAX,
            retry_timer: Duration::from_secs(u64::MAX / 2),
            ..RetryRules::default()
        };
        let mut s = RetryState::default();
        for _ in 0..100 {
            assert!(matches!(rules.next(&mut s), Retry::Attempt(d) if d <= MAX_DELAY));
        }
    }
}
