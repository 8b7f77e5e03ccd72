//! Problems appearing and clearing, logged for a person on call: one routine for a record's
//! problems and for every source's (an SES identity's), each within an hourly budget, so that
//! a subject whose problems flap says so once instead of filling the log.

use std::time::{Duration, Instant};

/// Problem changes (appearing or clearing) logged per subject and hour; past that, one line
/// says the subject flaps, and its changes are not logged until the hour is over.
pub const CHANGES_LOGGED_PER_HOUR: u32 = 6;

/// The window of [`CHANGES_LOGGED_PER_HOUR`].
const LOG_WINDOW: Duration = Duration::from_secs(3600);

/// A problem of a table: a record's `Problem`, an SES identity's `SesProblem`.
pub trait Named: Copy + PartialEq {
    /// The name in the `problem` label and the logs.
    fn name(self) -> &'static str;
    /// What to do about it.
    fn fix(self) -> &'static str;
}

/// One finding: a problem and what was seen.
pub trait Finding {
    /// The kind of problem.
    type Problem: Named;
    /// The problem found.
    fn problem(&self) -> Self::Problem;
    /// What was seen.
    fn detail(&self) -> &str;
}

/// What has problems that are logged as they change, and how its log lines read.
pub trait Subject {
    /// Logs a problem that appeared, with what was seen and the fix.
    fn appeared(&self, problem: &'static str, detail: &str, fix: &'static str);
    /// Logs a problem that cleared.
    fn cleared(&self, problem: &'static str);
    /// Logs that the subject's problems keep changing: `changes` this hour.
    fn flapping(&self, changes: u32);
}

/// One subject's logged changes this hour: when the hour began, and how many.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget(Option<(Instant, u32)>);

/// Logs the problems of `subject` that appeared or cleared between `before` and the findings
/// `now`, at `at`, counted against `budget`.
pub fn log<F: Finding>(
    subject: &impl Subject,
    before: &[F::Problem],
    now: &[F],
    budget: &mut Budget,
    at: Instant,
) {
    let appeared = now.iter().filter(|f| !before.contains(&f.problem()));
    let cleared = before
        .iter()
        .filter(|p| !now.iter().any(|f| f.problem() == **p));
    let changes = (appeared.clone().count() + cleared.clone().count()) as u32;
    if changes == 0 {
        return;
    }
    let (since, earlier) = match budget.0 {
        Some((since, earlier)) if at.duration_since(since) < LOG_WINDOW => (since, earlier),
        _ => (at, 0),
    };
    let total = earlier.saturating_add(changes);
    budget.0 = Some((since, total));
    if earlier >= CHANGES_LOGGED_PER_HOUR {
        return;
    }
    for finding in appeared {
        let problem = finding.problem();
        subject.appeared(problem.name(), finding.detail(), problem.fix());
    }
    for problem in cleared {
        subject.cleared(problem.name());
    }
    if total >= CHANGES_LOGGED_PER_HOUR {
        subject.flapping(total);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct P(&'static str);

    impl Named for P {
        fn name(self) -> &'static str {
            self.0
        }
        fn fix(self) -> &'static str {
            "fix it"
        }
    }

    impl Finding for P {
        type Problem = P;
        fn problem(&self) -> P {
            *self
        }
        fn detail(&self) -> &str {
            "seen"
        }
    }

    #[derive(Default)]
    struct Lines(RefCell<Vec<String>>);

    impl Subject for Lines {
        fn appeared(&self, problem: &'static str, _: &str, _: &'static str) {
            self.0.borrow_mut().push(format!("+{problem}"));
        }
        fn cleared(&self, problem: &'static str) {
            self.0.borrow_mut().push(format!("-{problem}"));
        }
        fn flapping(&self, changes: u32) {
            self.0.borrow_mut().push(format!("flapping {changes}"));
        }
    }

    #[test]
    fn changes_are_logged_until_the_hour_is_used_up() {
        let lines = Lines::default();
        let mut budget = Budget::default();
        let start = Instant::now();
        let (a, b) = (P("a"), P("b"));
        let none: &[P] = &[];
        log(&lines, none, &[a], &mut budget, start);
        log(&lines, &[a], &[a], &mut budget, start);
        log(&lines, &[a], &[b], &mut budget, start);
        assert_eq!(*lines.0.borrow(), ["+a", "+b", "-a"]);
        // Three changes so far: the next three reach the limit, and say so.
        log(&lines, &[b], &[a], &mut budget, start);
        log(&lines, &[a], none, &mut budget, start);
        assert_eq!(lines.0.borrow()[3..], ["+a", "-b", "-a", "flapping 6"]);
        // Used up: nothing more this hour.
        log(&lines, none, &[a], &mut budget, start);
        assert_eq!(lines.0.borrow().len(), 7);
        // The next hour starts afresh.
        log(&lines, &[a], none, &mut budget, start + LOG_WINDOW);
        assert_eq!(lines.0.borrow()[7..], ["-a"]);
    }
}
