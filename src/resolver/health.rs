//! Whether a resolver works, judged over its latest round, never from one query.
//!
//! Each record of a round tells something about every resolver asked about it. An answer says
//! the resolver works. A failure says it does not only when another resolver answered the same
//! name: when every resolver fails on a name, the failure belongs to the domain (its
//! nameservers are dead or lame), or to the exporter's own network. A SERVFAIL that DNSSEC
//! validation explains (the resolver answers with checking disabled, or says why in an Extended
//! DNS Error) is the zone's failure and counts as an answer: the resolver did its job. Answers
//! to the exporter's own questions about a broken domain's parent zone (the delegation walk)
//! count as answers too.
//!
//! A resolver is up when, in its latest round, it answered at least once and answered more
//! often than it failed on names another resolver answered.

/// What one resolver did with one record in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was not asked (or its result is not in yet).
    NotAsked,
    /// A definitive answer.
    Answered,
    /// No definitive answer; `dnssec_bogus` when validation explains it.
    Failed {
        /// The resolver validates DNSSEC and rejected the zone's signatures.
        dnssec_bogus: bool,
    },
}

/// One resolver's round so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records asked about and answered or failed.
    pub asked: u32,
    /// Definitive answers (and failures DNSSEC validation explains).
    pub answered: u32,
    /// Failures on names another resolver answered.
    pub own_failures: u32,
}

impl Tally {
    /// The verdict: it answered, and more often than it failed where others did not.
    pub fn working(&self) -> bool {
        self.answered > 0 && self.own_failures < self.answered
    }
}

/// Counts one record's outcomes, one per resolver, into the resolvers' tallies (same order).
pub fn count_record(tallies: &mut [Tally], outcomes: &[Outcome]) {
    let someone_answered = outcomes.contains(&Outcome::Answered);
    for (tally, outcome) in tallies.iter_mut().zip(outcomes) {
        if *outcome != Outcome::NotAsked {
            tally.asked += 1;
        }
        match outcome {
            Outcome::NotAsked => {}
            Outcome::Answered | Outcome::Failed { dnssec_bogus: true } => tally.answered += 1,
            Outcome::Failed {
                dnssec_bogus: false,
            } => {
                if someone_answered {
                    tally.own_failures += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Outcome = Outcome::Answered;
    const F: Outcome = Outcome::Failed {
        dnssec_bogus: false,
    };
    const B: Outcome = Outcome::Failed { dnssec_bogus: true };

    /// The verdicts after a round of `records` (one row of outcomes per record, one column
    /// per resolver) and answers to the walk's parent-zone questions.
    fn verdicts(records: &[&[Outcome]], walk_answers: &[u32]) -> Vec<bool> {
        let mut tallies = vec![Tally::default(); records[0].len()];
        for outcomes in records {
            count_record(&mut tallies, outcomes);
        }
        for (tally, answers) in tallies.iter_mut().zip(walk_answers) {
            tally.answered += answers;
        }
        tallies.iter().map(Tally::working).collect()
    }

    #[test]
    fn a_domain_with_dead_nameservers_among_healthy_domains() {
        // Three resolvers; the broken domain's records fail everywhere.
        let rounds = verdicts(&[&[A, A, A], &[F, F, F], &[F, F, F], &[A, A, A]], &[]);
        assert_eq!(rounds, [true, true, true]);
    }

    #[test]
    fn the_broken_domain_alone_counts_the_walks_answers() {
        let rounds = verdicts(&[&[F, F, F], &[F, F, F]], &[1, 1, 1]);
        assert_eq!(rounds, [true, true, true]);
    }

    #[test]
    fn a_lame_delegation_is_the_same_as_a_dead_one() {
        let rounds = verdicts(&[&[F, F], &[A, A]], &[1, 1]);
        assert_eq!(rounds, [true, true]);
    }

    #[test]
    fn validating_resolvers_rejecting_a_bogus_zone_work() {
        // Two validating resolvers reject the zone, a non-validating one answers.
        let rounds = verdicts(&[&[B, B, A], &[B, B, A]], &[]);
        assert_eq!(rounds, [true, true, true]);
    }

    #[test]
    fn a_domain_that_does_not_exist_is_answered() {
        // NXDOMAIN is a definitive answer.
        assert_eq!(verdicts(&[&[A, A]], &[]), [true, true]);
    }

    #[test]
    fn a_resolver_that_never_answers_is_down() {
        let rounds = verdicts(&[&[A, F, A], &[A, F, A]], &[]);
        assert_eq!(rounds, [true, false, true]);
    }

    #[test]
    fn a_resolver_whose_upstream_is_gone_is_down_even_with_an_answer_or_two() {
        // It answers one name (from its cache) and fails on three that others answer.
        let rounds = verdicts(&[&[A, A], &[A, F], &[A, F], &[A, F]], &[]);
        assert_eq!(rounds, [true, false]);
    }

    #[test]
    fn one_lost_datagram_does_not_bring_a_resolver_down() {
        let rounds = verdicts(&[&[A, A], &[A, A], &[A, F]], &[]);
        assert_eq!(rounds, [true, true]);
    }

    #[test]
    fn every_resolver_dead_is_every_resolver_down() {
        // Not even the parent zone answers: the exporter's own network is down.
        let rounds = verdicts(&[&[F, F, F], &[F, F, F]], &[0, 0, 0]);
        assert_eq!(rounds, [false, false, false]);
    }

    #[test]
    fn a_resolver_refusing_the_client_is_down() {
        let rounds = verdicts(&[&[A, F], &[A, F]], &[]);
        assert_eq!(rounds, [true, false]);
        // Alone, it has no answer at all.
        assert_eq!(verdicts(&[&[F], &[F]], &[0]), [false]);
    }

    #[test]
    fn not_asked_says_nothing() {
        let n = Outcome::NotAsked;
        assert_eq!(verdicts(&[&[A, n]], &[]), [true, false]);
        let mut tallies = [Tally::default()];
        count_record(&mut tallies, &[n]);
        assert_eq!(tallies[0], Tally::default());
    }
}
