//! A small subject trie for permission lists, with nats-server's `Sublist` matching semantics.
//!
//! Entries are subjects with wildcards (`*` one token, `>` one or more trailing tokens) and an
//! optional queue name. A *checked* subject is always treated as a string of literal tokens: a
//! `*` or `>` token in it is matched by a `*`/`>` entry but never by a literal entry, which is how
//! the reference lets `allow: "foo.*"` accept `SUB foo.>`.
//!
//! Behaviour copied from `sublist.go` (`Insert`, `match`, `matchLevel`):
//! - an entry with an empty token or a token after `>` is refused at insertion (the reference
//!   ignores the error, so such an entry never matches anything);
//! - a checked subject with an empty token (`foo..bar`, `.foo`, `foo.`, ``) matches nothing;
//! - only tokens of exactly one byte are wildcards (`foo*` is a literal token).

use std::collections::HashMap;

/// One trie level: literal children and the two wildcard children.
#[derive(Debug, Default)]
struct Level {
    literals: HashMap<Box<[u8]>, Node>,
    single: Option<Box<Node>>,
    full: Option<Box<Node>>,
}

/// One trie node: whether a plain entry ends here, the queue names of queue entries ending here,
/// and the next level.
#[derive(Debug, Default)]
struct Node {
    plain: bool,
    queues: Vec<Box<[u8]>>,
    next: Option<Box<Level>>,
}

/// What a check found: whether a plain entry matched and the queue names of matching queue
/// entries (the reference's `psubs` and `qsubs`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MatchResult<'a> {
    pub(crate) plain: bool,
    pub(crate) queues: Vec<&'a [u8]>,
}

/// A compiled permission list.
#[derive(Debug, Default)]
pub(crate) struct SubjectList {
    root: Level,
}

/// Number of tokens split onto the stack before falling back to a heap vector.
const INLINE_TOKENS: usize = 16;

/// Splits a subject into tokens and calls `f` with them; `None` when any token is empty (the
/// reference's `match` returns the empty result for such subjects). Subjects of up to
/// [`INLINE_TOKENS`] tokens need no allocation.
fn with_tokens<R>(subject: &[u8], f: impl FnOnce(&[&[u8]]) -> R) -> Option<R> {
    if subject.is_empty() {
        return None;
    }
    let mut inline: [&[u8]; INLINE_TOKENS] = [&[]; INLINE_TOKENS];
    let mut n_tokens = 0;
    for token in subject.split(|b| *b == b'.') {
        if token.is_empty() {
            return None;
        }
        let Some(slot) = inline.get_mut(n_tokens) else {
            let tokens: Vec<&[u8]> = subject.split(|b| *b == b'.').collect();
            if tokens.iter().any(|t| t.is_empty()) {
                return None;
            }
            return Some(f(&tokens));
        };
        *slot = token;
        n_tokens += 1;
    }
    inline.get(..n_tokens).map(f)
}

impl SubjectList {
    /// Adds an entry. Returns false (and adds nothing) when the entry is not a valid subject
    /// pattern: an empty token, or any token after `>`.
    pub(crate) fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let tokens: Vec<&[u8]> = subject.split(|b| *b == b'.').collect();
        let mut seen_full = false;
        for token in &tokens {
            if token.is_empty() || seen_full {
                return false;
            }
            seen_full = *token == b">";
        }
        let Some((last, init)) = tokens.split_last() else {
            return false;
        };
        let mut level = &mut self.root;
        for token in init {
            level = child(level, token).next.get_or_insert_with(Box::default);
        }
        let node = child(level, last);
        match queue {
            Some(queue) => node.queues.push(queue.into()),
            None => node.plain = true,
        }
        true
    }

    /// True when a plain entry matches `subject` (publish checks, delivery filter).
    pub(crate) fn matches_plain(&self, subject: &[u8]) -> bool {
        with_tokens(subject, |tokens| {
            let mut res = MatchResult::default();
            match_level(&self.root, tokens, &mut res, true);
            res.plain
        })
        .unwrap_or(false)
    }

    /// Plain and queue entries matching `subject` (subscribe checks).
    pub(crate) fn matches(&self, subject: &[u8]) -> MatchResult<'_> {
        with_tokens(subject, |tokens| {
            let mut res = MatchResult::default();
            match_level(&self.root, tokens, &mut res, false);
            res
        })
        .unwrap_or_default()
    }
}

/// The child of `level` for one entry token, created when missing.
fn child<'l>(level: &'l mut Level, token: &[u8]) -> &'l mut Node {
    match token {
        b"*" => level.single.get_or_insert_with(Box::default),
        b">" => level.full.get_or_insert_with(Box::default),
        literal => level.literals.entry(literal.into()).or_default(),
    }
}

fn add_node<'a>(node: &'a Node, res: &mut MatchResult<'a>, plain_only: bool) {
    res.plain |= node.plain;
    if !plain_only {
        res.queues.extend(node.queues.iter().map(|q| &q[..]));
    }
}

/// The reference's `matchLevel`, line for line: `>` children match one or more remaining tokens,
/// `*` children recurse on the rest, literal children descend.
fn match_level<'a>(
    level: &'a Level,
    tokens: &[&[u8]],
    res: &mut MatchResult<'a>,
    plain_only: bool,
) {
    let mut current = Some(level);
    let mut single: Option<&'a Node> = None;
    let mut literal: Option<&'a Node> = None;
    for (token_idx, token) in tokens.iter().enumerate() {
        let Some(lvl) = current else {
            return;
        };
        if let Some(full) = lvl.full.as_deref() {
            add_node(full, res, plain_only);
        }
        single = lvl.single.as_deref();
        if let Some(next) = single.and_then(|node| node.next.as_deref()) {
            let rest = tokens.get(token_idx + 1..).unwrap_or(&[]);
            match_level(next, rest, res, plain_only);
        }
        literal = lvl.literals.get(*token);
        current = literal.and_then(|node| node.next.as_deref());
    }
    if let Some(node) = literal {
        add_node(node, res, plain_only);
    }
    if let Some(node) = single {
        add_node(node, res, plain_only);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> SubjectList {
        let mut list = SubjectList::default();
        for entry in entries {
            let mut parts = entry.split(' ');
            let subject = parts.next().unwrap_or_default();
            list.insert(subject.as_bytes(), parts.next().map(str::as_bytes));
        }
        list
    }

    fn check(entries: &[&str], subject: &str, plain: bool, queues: &[&str]) {
        let list = list(entries);
        let res = list.matches(subject.as_bytes());
        let mut got: Vec<&[u8]> = res.queues.clone();
        got.sort();
        let mut want: Vec<&[u8]> = queues.iter().map(|q| q.as_bytes()).collect();
        want.sort();
        assert_eq!(
            (res.plain, got),
            (plain, want),
            "{entries:?} vs {subject:?}"
        );
        assert_eq!(list.matches_plain(subject.as_bytes()), plain);
    }

    #[test]
    fn literal_and_wildcard_matching() {
        check(&["foo"], "foo", true, &[]);
        check(&["foo"], "foo.bar", false, &[]);
        check(&["foo.*"], "foo.bar", true, &[]);
        check(&["foo.*"], "foo", false, &[]);
        check(&["foo.*"], "foo.bar.baz", false, &[]);
        check(&["foo.>"], "foo.bar.baz", true, &[]);
        check(&["foo.>"], "foo", false, &[]);
        check(&[">"], "a", true, &[]);
        check(&["*.*"], "a.b", true, &[]);
        check(&["*.b.>"], "a.b.c.d", true, &[]);
        check(&["*.b.>"], "a.c.c.d", false, &[]);
        check(&["foo*"], "foox", false, &[]);
        check(&["foo*"], "foo*", true, &[]);
    }

    #[test]
    fn checked_subjects_are_literal_token_strings() {
        // `*` and `>` in the checked subject are literal tokens.
        check(&["foo.*"], "foo.>", true, &[]);
        check(&["foo.*"], "foo.*", true, &[]);
        check(&["foo.bar"], "foo.*", false, &[]);
        check(&["foo.>"], "foo.>", true, &[]);
        check(&["foo.*"], "foo.bar.>", false, &[]);
    }

    #[test]
    fn invalid_subjects_and_entries_match_nothing() {
        check(&[">"], "foo..bar", false, &[]);
        check(&[">"], ".foo", false, &[]);
        check(&[">"], "foo.", false, &[]);
        check(&[">"], "", false, &[]);
        check(&["foo..bar"], "foo..bar", false, &[]);
        check(&["foo.>.bar"], "foo.x.bar", false, &[]);
        check(&["foo.>.bar", "foo.x.>"], "foo.x.bar", true, &[]);
    }

    #[test]
    fn long_subjects_fall_back_to_the_heap() {
        let long = vec!["t"; INLINE_TOKENS + 3].join(".");
        check(&[">"], &long, true, &[]);
        check(&[&long], &long, true, &[]);
        check(&["t.>"], &format!("{long}..t"), false, &[]);
        let mut pattern = vec!["t"; INLINE_TOKENS + 2];
        pattern.push("*");
        check(&[&pattern.join(".")], &long, true, &[]);
        check(&[&pattern.join(".")], &format!("{long}.t"), false, &[]);
    }

    #[test]
    fn queue_entries() {
        check(&["foo q1"], "foo", false, &["q1"]);
        check(&["foo q1", "foo.* q2", "foo"], "foo", true, &["q1"]);
        check(&["foo q1", "* q2", ">"], "foo", true, &["q1", "q2"]);
    }
}
