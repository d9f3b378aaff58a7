//! The subject index: a token trie with `*` and `>` wildcards, queue groups and a match cache
//! (nats-server `server/sublist.go`).
//!
//! Each trie level maps literal tokens to child nodes and has at most one `*` child and one `>`
//! child. A node stores the plain subscriptions and the queue subscriptions (grouped by queue
//! name) whose subject ends there. A match walks the trie once per publish subject; results are
//! cached per subject. Inserting or removing a subscription drops exactly the cached results
//! whose subject it matches, so the cache never serves a stale answer.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;

use crate::subject;

/// Most cached match results; when exceeded, about a quarter of the entries are dropped.
pub const MAX_CACHE_ENTRIES: usize = 1024;

/// Most tokens in a subscription subject. The trie is walked recursively (insert, match, remove
/// and drop recurse once per level), so its depth must be bounded whatever
/// `max_control_line` is configured; nats-server has no such limit, but Go stacks grow.
pub const MAX_SUBJECT_TOKENS: usize = 2048;

/// Most subscription handles held by all cached results together. Without it, 1024 cached
/// subjects that each match a wildcard with many subscribers would hold 1024 copies of that
/// subscriber list. Results larger than a sixteenth of this are not cached at all: building
/// them costs no more than delivering to them.
pub const MAX_CACHE_HANDLES: usize = 1 << 16;

/// The result of a match: every plain subscription, and one member list per queue group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult<T> {
    /// Matching plain subscriptions.
    pub plain: Vec<T>,
    /// Matching queue subscriptions, grouped by queue name (members may have different
    /// subjects).
    pub queues: Vec<(Bytes, Vec<T>)>,
}

impl<T> MatchResult<T> {
    fn empty() -> Self {
        Self {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }

    /// Plain subscriptions plus queue groups: the number of deliveries a publish makes.
    #[must_use]
    pub fn fanout(&self) -> usize {
        self.plain.len() + self.queues.len()
    }
}

/// Why an insert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// The subject is not a valid subscription subject (`-ERR 'Invalid Subject'`).
    InvalidSubject,
}

/// Lists shorter than this are searched linearly on removal; a list that grows past it gets a
/// position index ([`Members`]).
const INDEX_MIN_LEN: usize = 16;

/// A map or list whose capacity exceeds this many entries is shrunk once it is less than a
/// quarter full, so that memory taken by a spike of subscriptions is given back.
const SHRINK_MIN_CAPACITY: usize = 16;

/// The subscriptions that end at one node (or one queue group's members there).
///
/// Most nodes hold one subscription, so the list starts with room for exactly one and the
/// position index is built only once the list is long: below [`INDEX_MIN_LEN`] entries a
/// removal scans. The index keeps removal constant-time when many subscribers of one subject
/// all disconnect, which would otherwise cost quadratic time.
#[derive(Debug)]
struct Members<T> {
    list: Vec<T>,
    /// Where each value sits in `list`; present while the list is long.
    #[expect(
        clippy::box_collection,
        reason = "one pointer in every node instead of a 48-byte empty map"
    )]
    pos: Option<Box<HashMap<T, usize>>>,
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Self {
            list: Vec::new(),
            pos: None,
        }
    }
}

impl<T: Copy + Eq + Hash> Members<T> {
    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn push(&mut self, value: T) {
        if self.list.is_empty() {
            self.list.reserve_exact(1);
        }
        let at = self.list.len();
        self.list.push(value);
        match &mut self.pos {
            Some(pos) => {
                pos.entry(value).or_insert(at);
            }
            None if self.list.len() > INDEX_MIN_LEN => {
                let mut pos = HashMap::with_capacity(self.list.len());
                for (at, v) in self.list.iter().enumerate() {
                    pos.entry(*v).or_insert(at);
                }
                self.pos = Some(Box::new(pos));
            }
            None => {}
        }
    }

    /// Removes `value`; returns whether it was present.
    fn remove(&mut self, value: T) -> bool {
        let at = match &mut self.pos {
            Some(pos) => match pos.remove(&value) {
                Some(at) if self.list.get(at) == Some(&value) => at,
                _ => return false,
            },
            None => match self.list.iter().position(|v| *v == value) {
                Some(at) => at,
                None => return false,
            },
        };
        self.list.swap_remove(at);
        if let (Some(pos), Some(moved)) = (&mut self.pos, self.list.get(at)) {
            pos.insert(*moved, at);
        }
        // Half the threshold, so that a list hovering around it does not rebuild each time.
        if self.list.len() < INDEX_MIN_LEN / 2 {
            self.pos = None;
        } else if let Some(pos) = &mut self.pos {
            shrink_map(pos);
        }
        if self.list.is_empty() {
            self.list = Vec::new();
        } else {
            shrink_vec(&mut self.list);
        }
        true
    }
}

/// Gives back a list's memory once it is less than a quarter full.
pub(crate) fn shrink_vec<E>(list: &mut Vec<E>) {
    let cap = list.capacity();
    if cap > SHRINK_MIN_CAPACITY && list.len() < cap / 4 {
        list.shrink_to(list.len() * 2);
    }
}

/// Gives back a map's table once it is less than a quarter full (rehashing costs one pass,
/// paid for by the removals that emptied it).
pub(crate) fn shrink_map<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    let cap = map.capacity();
    if cap > SHRINK_MIN_CAPACITY && map.len() < cap / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// The queue groups whose subscriptions end at one node. Few nodes have any, so a node holds
/// them behind one pointer.
#[derive(Debug)]
struct Groups<T> {
    /// Each queue name with its members.
    list: Vec<(Bytes, Members<T>)>,
    /// Where each queue group sits in `list`.
    pos: HashMap<Bytes, usize>,
}

/// A node's children: literal tokens, `*` and `>`. Most nodes are leaves, so a node holds its
/// children behind one pointer.
#[derive(Debug)]
struct Children<T> {
    /// Child nodes are boxed so that a wide level's table holds pointers, not nodes.
    literal: HashMap<Box<[u8]>, Box<Node<T>>>,
    star: Option<Box<Node<T>>>,
    full: Option<Box<Node<T>>>,
}

impl<T> Default for Children<T> {
    fn default() -> Self {
        Self {
            literal: HashMap::new(),
            star: None,
            full: None,
        }
    }
}

impl<T> Children<T> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.star.is_none() && self.full.is_none()
    }
}

#[derive(Debug)]
struct Node<T> {
    children: Option<Box<Children<T>>>,
    plain: Members<T>,
    queues: Option<Box<Groups<T>>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            children: None,
            plain: Members::default(),
            queues: None,
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.children.is_none() && self.plain.list.is_empty() && self.queues.is_none()
    }
}

/// Statistics for `/subsz`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SublistStats {
    /// Current subscriptions.
    pub num_subscriptions: u32,
    /// Cached match results.
    pub num_cache: u32,
    /// Inserts since creation.
    pub num_inserts: u64,
    /// Removes since creation.
    pub num_removes: u64,
    /// Matches performed.
    pub num_matches: u64,
    /// Cache hits divided by matches.
    pub cache_hit_rate: f64,
    /// Largest fanout over cached results.
    pub max_fanout: u32,
    /// Average fanout over cached results.
    pub avg_fanout: f64,
}

impl SublistStats {
    /// Adds another index's statistics (`server/sublist.go` `SublistStats.add`): counts are
    /// summed, the hit rate and the average fanout are weighted by matches and cached results.
    pub fn add(&mut self, other: &Self) {
        let hits = self.cache_hit_rate * self.num_matches as f64
            + other.cache_hit_rate * other.num_matches as f64;
        let fanout = self.avg_fanout * f64::from(self.num_cache)
            + other.avg_fanout * f64::from(other.num_cache);
        self.num_subscriptions = self
            .num_subscriptions
            .saturating_add(other.num_subscriptions);
        self.num_cache = self.num_cache.saturating_add(other.num_cache);
        self.num_inserts += other.num_inserts;
        self.num_removes += other.num_removes;
        self.num_matches += other.num_matches;
        self.max_fanout = self.max_fanout.max(other.max_fanout);
        self.cache_hit_rate = if self.num_matches == 0 {
            0.0
        } else {
            hits / self.num_matches as f64
        };
        self.avg_fanout = if self.num_cache == 0 {
            0.0
        } else {
            fanout / f64::from(self.num_cache)
        };
    }
}

/// The match cache's hash: a seeded multiply-xor over 8-byte words with a final avalanche.
///
/// Subjects are short, so SipHash's fixed cost dominated a cached match. The seed is secret
/// (from [`Sublist::with_seed`]) so that a client cannot choose subjects that collide, and the
/// cache is bounded anyway ([`MAX_CACHE_ENTRIES`]), which bounds any probe sequence.
#[derive(Debug, Clone, Copy)]
struct SeededState(u64);

impl BuildHasher for SeededState {
    type Hasher = SubjectHasher;

    fn build_hasher(&self) -> SubjectHasher {
        SubjectHasher(self.0)
    }
}

#[derive(Debug)]
struct SubjectHasher(u64);

const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl SubjectHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(HASH_MUL).rotate_left(29);
    }
}

impl Hasher for SubjectHasher {
    fn write(&mut self, bytes: &[u8]) {
        let (words, rest) = bytes.as_chunks::<8>();
        for word in words {
            self.mix(u64::from_le_bytes(*word));
        }
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            for (dst, src) in last.iter_mut().zip(rest) {
                *dst = *src;
            }
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        // murmur3's fmix64: every input bit affects the top bits hashbrown uses as tags.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The subject index. `T` is the caller's subscription handle.
#[derive(Debug)]
pub struct Sublist<T> {
    root: Node<T>,
    cache: HashMap<Box<[u8]>, Arc<MatchResult<T>>, SeededState>,
    /// Handles held by all cached results ([`MAX_CACHE_HANDLES`]).
    cached_handles: usize,
    count: usize,
    inserts: u64,
    removes: u64,
    matches: u64,
    cache_hits: u64,
}

impl<T: Copy + Eq + Hash> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> MatchResult<T> {
    /// Handles held (plain plus every queue member), the cache's memory measure.
    fn n_handles(&self) -> usize {
        self.plain.len() + self.queues.iter().map(|(_, m)| m.len()).sum::<usize>()
    }
}

impl<T: Copy + Eq + Hash> Sublist<T> {
    /// An empty index with a fixed match-cache hash seed (for tests and benches; a server
    /// should use [`Sublist::with_seed`] with a random seed).
    #[must_use]
    pub fn new() -> Self {
        Self::with_seed(0x243f_6a88_85a3_08d3)
    }

    /// An empty index whose match-cache hash uses `seed`; a random seed keeps clients from
    /// choosing colliding subjects.
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            root: Node::default(),
            cache: HashMap::with_hasher(SeededState(seed)),
            cached_handles: 0,
            count: 0,
            inserts: 0,
            removes: 0,
            matches: 0,
            cache_hits: 0,
        }
    }

    /// Number of subscriptions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no subscriptions.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Inserts `value` for `subject` (and `queue`). The same value may be inserted once per
    /// subject; the caller keeps handles unique.
    pub fn insert(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        value: T,
    ) -> Result<(), InsertError> {
        if !subject::is_valid_subscription(subject)
            || subject::token_count(subject) > MAX_SUBJECT_TOKENS
        {
            return Err(InsertError::InvalidSubject);
        }
        let mut node = &mut self.root;
        for token in subject.split(|b| *b == b'.') {
            let children = node.children.get_or_insert_with(Box::default);
            node = match token {
                b"*" => children.star.get_or_insert_with(Box::default),
                b">" => children.full.get_or_insert_with(Box::default),
                _ => children.literal.entry(token.into()).or_default(),
            };
        }
        match queue {
            None => node.plain.push(value),
            Some(q) => {
                let groups = node.queues.get_or_insert_with(|| {
                    Box::new(Groups {
                        list: Vec::new(),
                        pos: HashMap::new(),
                    })
                });
                match groups.pos.get(q).and_then(|i| groups.list.get_mut(*i)) {
                    Some((_, members)) => members.push(value),
                    None => {
                        let mut members = Members::default();
                        members.push(value);
                        let name = Bytes::copy_from_slice(q);
                        groups.pos.insert(name.clone(), groups.list.len());
                        groups.list.push((name, members));
                    }
                }
            }
        }
        self.count += 1;
        self.inserts += 1;
        self.invalidate(subject);
        Ok(())
    }

    /// Removes `value` from `subject` (and `queue`). Returns whether it was present.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, value: T) -> bool {
        let tokens: Vec<&[u8]> = subject.split(|b| *b == b'.').collect();
        let removed = Self::remove_at(&mut self.root, &tokens, queue, value);
        if removed {
            self.count -= 1;
            self.removes += 1;
            self.invalidate(subject);
        }
        removed
    }

    /// Drops the cached results whose subject `pattern` matches.
    fn invalidate(&mut self, pattern: &[u8]) {
        let mut freed = 0;
        self.cache.retain(|subj, res| {
            let keep = !subject::matches(pattern, subj);
            if !keep {
                freed += res.n_handles();
            }
            keep
        });
        self.cached_handles -= freed.min(self.cached_handles);
    }

    fn remove_at(node: &mut Node<T>, tokens: &[&[u8]], queue: Option<&[u8]>, value: T) -> bool {
        let Some((first, rest)) = tokens.split_first() else {
            return match queue {
                None => node.plain.remove(value),
                Some(q) => Self::remove_member(node, q, value),
            };
        };
        let Some(children) = node.children.as_deref_mut() else {
            return false;
        };
        let removed = match *first {
            b"*" => Self::remove_from_child(&mut children.star, rest, queue, value),
            b">" => Self::remove_from_child(&mut children.full, rest, queue, value),
            token => {
                let Some(child) = children.literal.get_mut(token) else {
                    return false;
                };
                let removed = Self::remove_at(child, rest, queue, value);
                if child.is_empty() {
                    children.literal.remove(token);
                    shrink_map(&mut children.literal);
                }
                removed
            }
        };
        if children.is_empty() {
            node.children = None;
        }
        removed
    }

    fn remove_from_child(
        slot: &mut Option<Box<Node<T>>>,
        tokens: &[&[u8]],
        queue: Option<&[u8]>,
        value: T,
    ) -> bool {
        let Some(child) = slot.as_deref_mut() else {
            return false;
        };
        let removed = Self::remove_at(child, tokens, queue, value);
        if child.is_empty() {
            *slot = None;
        }
        removed
    }

    /// Removes a queue subscriber. Both lookups are indexed and both removals swap, so removing
    /// the many members of a large queue group (a mass disconnect) is linear overall. Member
    /// order does not matter: the broker starts at a random member.
    fn remove_member(node: &mut Node<T>, queue: &[u8], value: T) -> bool {
        let Some(groups) = node.queues.as_deref_mut() else {
            return false;
        };
        let Some(&group_idx) = groups.pos.get(queue) else {
            return false;
        };
        let Some((_, members)) = groups.list.get_mut(group_idx) else {
            return false;
        };
        if !members.remove(value) {
            return false;
        }
        if members.is_empty() {
            groups.pos.remove(queue);
            groups.list.swap_remove(group_idx);
            if let Some((moved, _)) = groups.list.get(group_idx) {
                groups.pos.insert(moved.clone(), group_idx);
            }
            if groups.list.is_empty() {
                node.queues = None;
            } else {
                shrink_map(&mut groups.pos);
                shrink_vec(&mut groups.list);
            }
        }
        true
    }

    /// Every subscription that matches the publish `subject`. Subjects with an empty token match
    /// nothing. The result is shared with the cache; it is a snapshot.
    pub fn matches(&mut self, subject: &[u8]) -> Arc<MatchResult<T>> {
        self.matches += 1;
        if let Some(hit) = self.cache.get(subject) {
            self.cache_hits += 1;
            return Arc::clone(hit);
        }
        let mut result = MatchResult::empty();
        let tokens_ok = !subject.is_empty() && subject.split(|b| *b == b'.').all(|t| !t.is_empty());
        if tokens_ok {
            let tokens: Vec<&[u8]> = subject.split(|b| *b == b'.').collect();
            let mut groups = HashMap::new();
            Self::collect(&self.root, &tokens, &mut result, &mut groups);
        }
        let result = Arc::new(result);
        let n_handles = result.n_handles();
        if n_handles > MAX_CACHE_HANDLES / 16 {
            return result;
        }
        while !self.cache.is_empty()
            && (self.cache.len() >= MAX_CACHE_ENTRIES
                || self.cached_handles + n_handles > MAX_CACHE_HANDLES)
        {
            let mut n_drop = (self.cache.len() / 4).max(1);
            let mut freed = 0;
            self.cache.retain(|_, res| {
                if n_drop > 0 {
                    n_drop -= 1;
                    freed += res.n_handles();
                    false
                } else {
                    true
                }
            });
            self.cached_handles -= freed.min(self.cached_handles);
        }
        // Copy the key: `subject` usually points into a client's read buffer, which a cached
        // slice would pin (bytes#679).
        self.cache.insert(subject.into(), Arc::clone(&result));
        self.cached_handles += n_handles;
        result
    }

    /// Adds a node's subscriptions. `groups` maps queue names already in `result` to their
    /// position, so that many queue groups cost linear, not quadratic, time.
    fn add_node<'n>(
        node: &'n Node<T>,
        result: &mut MatchResult<T>,
        groups: &mut HashMap<&'n [u8], usize>,
    ) {
        result.plain.extend_from_slice(&node.plain.list);
        let Some(node_groups) = &node.queues else {
            return;
        };
        for (name, members) in &node_groups.list {
            match groups
                .get(&name[..])
                .and_then(|pos| result.queues.get_mut(*pos))
            {
                Some((_, all)) => all.extend_from_slice(&members.list),
                None => {
                    groups.insert(&name[..], result.queues.len());
                    result.queues.push((name.clone(), members.list.clone()));
                }
            }
        }
    }

    fn collect<'n>(
        node: &'n Node<T>,
        tokens: &[&[u8]],
        result: &mut MatchResult<T>,
        groups: &mut HashMap<&'n [u8], usize>,
    ) {
        let Some((first, rest)) = tokens.split_first() else {
            Self::add_node(node, result, groups);
            return;
        };
        let Some(children) = &node.children else {
            return;
        };
        if let Some(full) = &children.full {
            Self::add_node(full, result, groups);
        }
        if let Some(star) = &children.star {
            Self::collect(star, rest, result, groups);
        }
        if let Some(child) = children.literal.get(*first) {
            Self::collect(child, rest, result, groups);
        }
    }

    /// Statistics for `/subsz`.
    #[must_use]
    pub fn stats(&self) -> SublistStats {
        let mut max_fanout = 0usize;
        let mut total = 0usize;
        for r in self.cache.values() {
            max_fanout = max_fanout.max(r.fanout());
            total += r.fanout();
        }
        let n_cache = self.cache.len();
        SublistStats {
            num_subscriptions: u32::try_from(self.count).unwrap_or(u32::MAX),
            num_cache: u32::try_from(n_cache).unwrap_or(u32::MAX),
            num_inserts: self.inserts,
            num_removes: self.removes,
            num_matches: self.matches,
            cache_hit_rate: if self.matches == 0 {
                0.0
            } else {
                self.cache_hits as f64 / self.matches as f64
            },
            max_fanout: u32::try_from(max_fanout).unwrap_or(u32::MAX),
            avg_fanout: if n_cache == 0 {
                0.0
            } else {
                total as f64 / n_cache as f64
            },
        }
    }
}

#[cfg(test)]
mod tests;
