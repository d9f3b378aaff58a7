use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

/// Matches `subject` and returns (plain values, per-queue sorted member values) normalised.
fn matched(sl: &mut Sublist<u32>, subject: &str) -> (Vec<u32>, Vec<(String, Vec<u32>)>) {
    let r = sl.matches(&b(subject));
    let mut queues: Vec<(String, Vec<u32>)> = r
        .queues
        .iter()
        .map(|(q, m)| (String::from_utf8_lossy(q).into_owned(), sorted(m.clone())))
        .collect();
    queues.sort();
    (sorted(r.plain.clone()), queues)
}

#[test]
fn literal_and_wildcards() {
    let mut sl = Sublist::new();
    sl.insert(b"foo", None, 1).unwrap();
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"foo.>", None, 3).unwrap();
    sl.insert(b">", None, 4).unwrap();
    sl.insert(b"*.bar", None, 5).unwrap();
    sl.insert(b"foo.bar", None, 6).unwrap();
    assert_eq!(matched(&mut sl, "foo").0, vec![1, 4]);
    assert_eq!(matched(&mut sl, "foo.bar").0, vec![2, 3, 4, 5, 6]);
    assert_eq!(matched(&mut sl, "foo.bar.baz").0, vec![3, 4]);
    // Wildcards in a publish subject are literal tokens.
    assert_eq!(matched(&mut sl, "foo.*").0, vec![2, 3, 4]);
    assert_eq!(matched(&mut sl, "foo.>").0, vec![2, 3, 4]);
    // Empty tokens match nothing.
    assert_eq!(matched(&mut sl, "foo..bar").0, Vec::<u32>::new());
    assert_eq!(matched(&mut sl, "").0, Vec::<u32>::new());
}

#[test]
fn invalid_inserts() {
    let mut sl: Sublist<u32> = Sublist::new();
    for s in ["", "a..b", ".a", "a.", "a.>.b", ">.a"] {
        assert_eq!(
            sl.insert(s.as_bytes(), None, 1),
            Err(InsertError::InvalidSubject),
            "{s}"
        );
    }
    assert!(sl.is_empty());
    sl.insert(b"foo*.b>r", None, 1).unwrap();
    assert_eq!(matched(&mut sl, "foo*.b>r").0, vec![1]);
    assert_eq!(matched(&mut sl, "foo.bar").0, Vec::<u32>::new());
}

#[test]
fn queue_groups() {
    let mut sl = Sublist::new();
    let q1 = b("q1");
    sl.insert(b"foo.*", Some(&q1[..]), 1).unwrap();
    sl.insert(b"foo.bar", Some(&q1[..]), 2).unwrap();
    sl.insert(b"foo.bar", Some(&b("q2")[..]), 3).unwrap();
    sl.insert(b"foo.bar", None, 4).unwrap();
    let (plain, queues) = matched(&mut sl, "foo.bar");
    assert_eq!(plain, vec![4]);
    assert_eq!(
        queues,
        vec![("q1".to_owned(), vec![1, 2]), ("q2".to_owned(), vec![3])]
    );
    assert!(sl.remove(b"foo.bar", Some(&q1[..]), 2));
    assert!(!sl.remove(b"foo.bar", Some(&q1[..]), 2));
    assert_eq!(matched(&mut sl, "foo.bar").1[0], ("q1".to_owned(), vec![1]));
}

#[test]
fn cache_invalidation() {
    let mut sl = Sublist::new();
    sl.insert(b"foo.*", None, 1).unwrap();
    assert_eq!(matched(&mut sl, "foo.bar").0, vec![1]);
    assert_eq!(matched(&mut sl, "foo.bar").0, vec![1]);
    assert_eq!(sl.stats().num_cache, 1);
    sl.insert(b"foo.bar", None, 2).unwrap();
    assert_eq!(matched(&mut sl, "foo.bar").0, vec![1, 2]);
    sl.insert(b"other", None, 3).unwrap();
    sl.remove(b"foo.*", None, 1);
    assert_eq!(matched(&mut sl, "foo.bar").0, vec![2]);
    let stats = sl.stats();
    assert_eq!(stats.num_subscriptions, 2);
    assert_eq!((stats.num_inserts, stats.num_removes), (3, 1));
    assert!(stats.cache_hit_rate > 0.0);
}

#[test]
fn removal_prunes_nodes() {
    let mut sl = Sublist::new();
    sl.insert(b"a.b.c", None, 1).unwrap();
    sl.insert(b"a.*.>", None, 2).unwrap();
    assert!(sl.remove(b"a.b.c", None, 1));
    assert!(sl.remove(b"a.*.>", None, 2));
    assert!(sl.root.is_empty());
    assert!(!sl.remove(b"a.b.c", None, 1));
}

fn subject_strategy(wild: bool) -> impl Strategy<Value = String> {
    let token = if wild {
        prop_oneof![4 => "[abc]", 1 => Just("*".to_owned()), 1 => Just(">".to_owned())].boxed()
    } else {
        prop_oneof![4 => "[abc]", 1 => Just("*".to_owned()), 1 => Just("".to_owned())].boxed()
    };
    prop::collection::vec(token, 1..4).prop_map(|t| t.join("."))
}

#[derive(Debug, Clone)]
enum Action {
    Insert(String, Option<u8>),
    Remove(usize),
    Match(String),
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (subject_strategy(true), proptest::option::of(0..2u8)).prop_map(|(s, q)| Action::Insert(s, q)),
        1 => any::<usize>().prop_map(Action::Remove),
        3 => subject_strategy(false).prop_map(Action::Match),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The trie plus cache agree with a naive matcher over any sequence of inserts, removes
    /// and matches (a differential test).
    #[test]
    fn agrees_with_naive(actions in prop::collection::vec(action_strategy(), 1..60)) {
        let mut sl: Sublist<u32> = Sublist::new();
        let mut naive: Vec<(String, Option<Bytes>, u32)> = Vec::new();
        let mut next = 0u32;
        for action in actions {
            match action {
                Action::Insert(s, q) => {
                    let queue = q.map(|n| b(&format!("q{n}")));
                    let res = sl.insert(s.as_bytes(), queue.as_deref(), next);
                    prop_assert_eq!(res.is_ok(), subject::is_valid_subscription(s.as_bytes()));
                    if res.is_ok() {
                        naive.push((s, queue, next));
                    }
                    next += 1;
                }
                Action::Remove(i) => {
                    if !naive.is_empty() {
                        let (s, q, v) = naive.remove(i % naive.len());
                        prop_assert!(sl.remove(s.as_bytes(), q.as_deref(), v));
                    }
                }
                Action::Match(subj) => {
                    let (plain, queues) = matched(&mut sl, &subj);
                    let expect_plain = sorted(naive.iter().filter(|(s, q, _)| q.is_none() && subject::matches(s.as_bytes(), subj.as_bytes())).map(|e| e.2).collect());
                    prop_assert_eq!(plain, expect_plain);
                    let mut expect_queues: Vec<(String, Vec<u32>)> = Vec::new();
                    for (s, q, v) in &naive {
                        if let Some(q) = q
                            && subject::matches(s.as_bytes(), subj.as_bytes())
                        {
                            let name = String::from_utf8_lossy(q).into_owned();
                            match expect_queues.iter_mut().find(|(n, _)| *n == name) {
                                Some((_, m)) => m.push(*v),
                                None => expect_queues.push((name, vec![*v])),
                            }
                        }
                    }
                    for (_, m) in &mut expect_queues { m.sort_unstable(); }
                    expect_queues.sort();
                    prop_assert_eq!(queues, expect_queues);
                }
            }
            prop_assert_eq!(sl.len(), naive.len());
        }
    }
}

/// Cached results never hold more than `MAX_CACHE_HANDLES` handles in all, and a result too
/// large to cache is still correct (a wildcard with many subscribers, published to on many
/// subjects, must not multiply its subscriber list in memory).
#[test]
fn cache_is_bounded_by_handles() {
    let mut sl: Sublist<u32> = Sublist::new();
    for v in 0..1000u32 {
        sl.insert(b"big.>", None, v).unwrap();
    }
    for i in 0..500 {
        assert_eq!(sl.matches(format!("big.{i}").as_bytes()).plain.len(), 1000);
        assert!(
            sl.cached_handles <= MAX_CACHE_HANDLES,
            "{}",
            sl.cached_handles
        );
        assert_eq!(
            sl.cached_handles,
            sl.cache.values().map(|r| r.n_handles()).sum::<usize>()
        );
    }
    assert!(sl.stats().num_cache as usize <= MAX_CACHE_HANDLES / 1000);
    // Too large to cache at all, but matched every time.
    for v in 1000..(u32::try_from(MAX_CACHE_HANDLES / 16).unwrap() + 1000) {
        sl.insert(b"big.>", Some(&b("q")[..]), v).unwrap();
    }
    let r = sl.matches(b"big.x");
    assert_eq!(r.n_handles(), 1000 + MAX_CACHE_HANDLES / 16);
    assert!(!sl.cache.contains_key(&b"big.x"[..]));
    // Removing a subscription drops the cached results it matched, and their handle count.
    sl.matches(b"other");
    let before = sl.cached_handles;
    assert!(sl.remove(b"big.>", None, 0));
    assert!(sl.cached_handles <= before);
    assert_eq!(
        sl.cached_handles,
        sl.cache.values().map(|r| r.n_handles()).sum::<usize>()
    );
}

/// Many plain subscribers of one subject can all be removed in any order (removal uses the
/// position index, which must stay right after every swap).
#[test]
fn plain_position_index_survives_swaps() {
    let mut sl: Sublist<u32> = Sublist::new();
    for v in 0..200u32 {
        sl.insert(b"foo", None, v).unwrap();
    }
    let mut left: Vec<u32> = (0..200).collect();
    for v in (0..200u32)
        .filter(|v| v % 3 == 1)
        .chain((0..200).filter(|v| v % 3 != 1).rev())
    {
        assert!(sl.remove(b"foo", None, v), "{v}");
        assert!(!sl.remove(b"foo", None, v), "{v} twice");
        left.retain(|x| *x != v);
        let (plain, _) = matched(&mut sl, "foo");
        assert_eq!(plain, left);
    }
    assert!(sl.is_empty());
}

/// The trie's depth is bounded: a subscription subject with more than `MAX_SUBJECT_TOKENS`
/// tokens is refused, one at the limit works end to end.
#[test]
fn subject_depth_is_bounded() {
    let mut sl: Sublist<u32> = Sublist::new();
    let deep = vec!["a"; MAX_SUBJECT_TOKENS].join(".");
    let too_deep = vec!["a"; MAX_SUBJECT_TOKENS + 1].join(".");
    assert_eq!(
        sl.insert(too_deep.as_bytes(), None, 1),
        Err(InsertError::InvalidSubject)
    );
    sl.insert(deep.as_bytes(), None, 2).unwrap();
    assert_eq!(matched(&mut sl, &deep).0, vec![2]);
    assert_eq!(matched(&mut sl, &too_deep).0, Vec::<u32>::new());
    assert!(sl.remove(deep.as_bytes(), None, 2));
    assert!(sl.is_empty());
}

/// The queue-group indexes stay right while members and whole groups are removed in any order.
#[test]
fn queue_indexes_survive_swaps() {
    let mut sl: Sublist<u32> = Sublist::new();
    let group = |v: u32| b(&format!("g{}", v % 7));
    for v in 0..300u32 {
        sl.insert(b"foo", Some(&group(v)[..]), v).unwrap();
    }
    let mut left: Vec<u32> = (0..300).collect();
    for v in (0..300u32)
        .filter(|v| v % 5 == 2)
        .chain((0..300).filter(|v| v % 5 != 2).rev())
    {
        // The wrong group never removes it.
        assert!(
            !sl.remove(b"foo", Some(&group(v + 1)[..]), v),
            "{v} wrong group"
        );
        assert!(sl.remove(b"foo", Some(&group(v)[..]), v), "{v}");
        assert!(!sl.remove(b"foo", Some(&group(v)[..]), v), "{v} twice");
        left.retain(|x| *x != v);
        let (_, queues) = matched(&mut sl, "foo");
        let mut expect: Vec<(String, Vec<u32>)> = Vec::new();
        for g in 0..7 {
            let members: Vec<u32> = left.iter().copied().filter(|x| x % 7 == g).collect();
            if !members.is_empty() {
                expect.push((format!("g{g}"), members));
            }
        }
        assert_eq!(queues, expect);
    }
    assert!(sl.is_empty());
}

/// The node a literal subject ends at.
fn node_at<'a>(sl: &'a Sublist<u32>, subject: &str) -> Option<&'a Node<u32>> {
    let mut node = &sl.root;
    for token in subject.split('.') {
        node = node.children.as_ref()?.literal.get(token.as_bytes())?;
    }
    Some(node)
}

/// A plain list gets its position index only past `INDEX_MIN_LEN` entries and loses it below
/// half that, and matching and removal are right on both sides of the threshold.
#[test]
fn position_index_built_past_threshold_and_dropped_below() {
    let mut sl: Sublist<u32> = Sublist::new();
    let n = u32::try_from(INDEX_MIN_LEN).unwrap();
    for v in 0..n {
        sl.insert(b"foo.bar", None, v).unwrap();
    }
    assert!(node_at(&sl, "foo.bar").unwrap().plain.pos.is_none());
    sl.insert(b"foo.bar", None, n).unwrap();
    assert!(node_at(&sl, "foo.bar").unwrap().plain.pos.is_some());
    let mut left: Vec<u32> = (0..=n).collect();
    // Remove from the middle so that every removal moves another value.
    while let Some(v) = left.get(left.len() / 2).copied() {
        assert!(sl.remove(b"foo.bar", None, v), "{v}");
        assert!(!sl.remove(b"foo.bar", None, v), "{v} twice");
        left.retain(|x| *x != v);
        assert_eq!(matched(&mut sl, "foo.bar").0, sorted(left.clone()));
        if let Some(node) = node_at(&sl, "foo.bar") {
            assert_eq!(
                node.plain.pos.is_some(),
                left.len() >= INDEX_MIN_LEN / 2,
                "{} left",
                left.len()
            );
        }
    }
    assert!(sl.root.is_empty());
}

/// A queue group past the index threshold keeps every member exactly once through removals,
/// so the broker's random start still spreads messages over all of them.
#[test]
fn large_queue_group_keeps_each_member_once() {
    let mut sl: Sublist<u32> = Sublist::new();
    for v in 0..100u32 {
        sl.insert(b"work", Some(b"q"), v).unwrap();
    }
    for v in (0..100u32).filter(|v| v % 10 != 0) {
        assert!(sl.remove(b"work", Some(b"q"), v), "{v}");
    }
    let (_, queues) = matched(&mut sl, "work");
    assert_eq!(
        queues,
        vec![("q".to_owned(), (0..100).step_by(10).collect::<Vec<u32>>())]
    );
    let node = node_at(&sl, "work").unwrap();
    let groups = node.queues.as_ref().unwrap();
    let members = &groups.list.first().unwrap().1;
    assert!(members.pos.is_some());
    assert!(members.list.capacity() <= 4 * members.list.len());
}

/// After a spike of subscriptions is removed, the tables that held them are given back: the
/// wide level's child table and the long plain list shrink, and empty nodes disappear.
#[test]
fn shrinks_after_mass_removal() {
    let mut sl: Sublist<u32> = Sublist::new();
    for v in 0..10_000u32 {
        sl.insert(format!("foo.bar.{v}").as_bytes(), None, v)
            .unwrap();
        sl.insert(b"many", None, v).unwrap();
    }
    for v in 10..10_000u32 {
        assert!(sl.remove(format!("foo.bar.{v}").as_bytes(), None, v));
        assert!(sl.remove(b"many", None, v));
    }
    let wide = &node_at(&sl, "foo.bar")
        .unwrap()
        .children
        .as_ref()
        .unwrap()
        .literal;
    assert_eq!(wide.len(), 10);
    assert!(
        wide.capacity() <= 4 * SHRINK_MIN_CAPACITY,
        "{}",
        wide.capacity()
    );
    let many = &node_at(&sl, "many").unwrap().plain;
    assert!(many.list.capacity() <= 4 * SHRINK_MIN_CAPACITY);
    // Ten is above half the threshold, so the index stays until fewer remain.
    assert!(many.pos.is_some());
    assert_eq!(matched(&mut sl, "foo.bar.3").0, vec![3]);
    assert_eq!(matched(&mut sl, "many").0, (0..10).collect::<Vec<u32>>());
    for v in 0..10u32 {
        assert!(sl.remove(format!("foo.bar.{v}").as_bytes(), None, v));
        assert!(sl.remove(b"many", None, v));
    }
    assert!(sl.root.is_empty());
    assert!(sl.root.children.is_none());
}
