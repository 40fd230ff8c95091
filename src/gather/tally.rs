//! Counting answers from many servers: each server once (by its id, the
//! `mqttapp-server-id` user property), whatever it or a forger sends
//! twice, and the verdict the exit code reports.

use std::collections::{BTreeMap, BTreeSet};

use crate::exit::ExitCode;

/// How many of the servers asked answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every server expected (or `--replies N` of them).
    All,
    /// Some, not all.
    Some,
    /// None.
    None,
}

impl Verdict {
    /// The exit code: 0 for all (1 when an answer was an error), 9 for
    /// some, 6 for none.
    pub fn exit_code(self, any_error: bool) -> ExitCode {
        match self {
            Verdict::All if any_error => ExitCode::OperationError,
            Verdict::All => ExitCode::Ok,
            Verdict::Some => ExitCode::Partial,
            Verdict::None => ExitCode::NoServer,
        }
    }
}

/// The answers gathered so far, one per server id.
#[derive(Debug)]
pub struct Tally<T> {
    expected: BTreeSet<String>,
    limit: Option<usize>,
    answers: BTreeMap<String, T>,
    duplicates: u64,
}

impl<T> Tally<T> {
    /// Waits for the servers `expected` (those online with the
    /// operation), or for `limit` distinct servers when given.
    pub fn new(expected: impl IntoIterator<Item = String>, limit: Option<usize>) -> Tally<T> {
        Tally {
            expected: expected.into_iter().collect(),
            limit: limit.filter(|n| *n > 0),
            answers: BTreeMap::new(),
            duplicates: 0,
        }
    }

    /// Counts `answer` from server `id`. False, and nothing kept, for a
    /// second answer from the same id or one past the limit.
    pub fn add(&mut self, id: &str, answer: T) -> bool {
        if self.answers.contains_key(id) || self.full() {
            self.duplicates += 1;
            return false;
        }
        self.answers.insert(id.to_string(), answer);
        true
    }

    /// True when `--replies N` is reached.
    fn full(&self) -> bool {
        self.limit.is_some_and(|n| self.answers.len() >= n)
    }

    /// True when there is nothing more to wait for: the limit is reached,
    /// or (without one) every expected server answered.
    pub fn complete(&self) -> bool {
        match self.limit {
            Some(_) => self.full(),
            None => !self.expected.is_empty() && self.missing().is_empty(),
        }
    }

    /// Expected servers that have not answered, sorted.
    pub fn missing(&self) -> Vec<&str> {
        self.expected
            .iter()
            .filter(|id| !self.answers.contains_key(*id))
            .map(String::as_str)
            .collect()
    }

    /// The answers, by server id.
    pub fn answers(&self) -> &BTreeMap<String, T> {
        &self.answers
    }

    /// Answers not counted: repeats from one id, or past the limit.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// All, some or none answered (see [`Tally::complete`]).
    pub fn verdict(&self) -> Verdict {
        if self.answers.is_empty() {
            Verdict::None
        } else if self.complete() {
            Verdict::All
        } else {
            Verdict::Some
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_server_answering_twice_is_counted_once() {
        let mut t = Tally::new(ids(&["a", "b"]), None);
        assert!(t.add("a", 1));
        assert!(!t.add("a", 2));
        assert_eq!(t.answers()["a"], 1, "the first answer is kept");
        assert_eq!(t.duplicates(), 1);
        assert!(!t.complete());
        assert_eq!(t.missing(), ["b"]);
        assert_eq!(t.verdict(), Verdict::Some);
        assert!(t.add("b", 3));
        assert!(t.complete());
        assert_eq!(t.verdict(), Verdict::All);
    }

    #[test]
    fn the_limit_stops_at_n_distinct_servers() {
        let mut t = Tally::new(ids(&["a", "b", "c"]), Some(2));
        assert!(t.add("a", ()));
        assert!(!t.add("a", ()));
        assert!(!t.complete());
        assert!(t.add("c", ()));
        assert!(t.complete());
        assert!(!t.add("b", ()), "past the limit");
        assert_eq!(t.answers().len(), 2);
        assert_eq!(t.verdict(), Verdict::All);
    }

    #[test]
    fn servers_not_listed_online_still_count() {
        let mut t = Tally::new(ids(&["a"]), None);
        assert!(t.add("z", ()));
        assert_eq!(t.verdict(), Verdict::Some);
        assert!(t.add("a", ()));
        assert_eq!(t.verdict(), Verdict::All);
    }

    #[test]
    fn verdicts_map_to_exit_codes() {
        let none: Tally<()> = Tally::new(ids(&["a"]), None);
        assert_eq!(none.verdict(), Verdict::None);
        assert_eq!(Verdict::None.exit_code(false), ExitCode::NoServer);
        assert_eq!(Verdict::Some.exit_code(true), ExitCode::Partial);
        assert_eq!(Verdict::All.exit_code(false), ExitCode::Ok);
        assert_eq!(Verdict::All.exit_code(true), ExitCode::OperationError);
        // Nobody expected, nobody answered: none.
        let empty: Tally<()> = Tally::new(Vec::new(), None);
        assert!(!empty.complete());
        assert_eq!(empty.verdict(), Verdict::None);
    }
}
