//! The runner (a case count or a time budget from the environment) and the input generators
//! shared by every target: hostile JSON values, real payload shapes with edits, and bytes.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{Map, Number, Value};

/// Cases per target in a normal test run unless `FUZZ_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `test` on inputs drawn from `strategy`. With `FUZZ_SECONDS` set, batches of
/// `FUZZ_CASES` (fresh random seeds each) run until that budget is spent; otherwise one batch.
/// Prints `fuzz <name>: <cases> cases, <failures> failures` and fails with the shrunk input
/// when a case fails or panics.
pub fn run<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let batch = env_number("FUZZ_CASES").map_or(DEFAULT_CASES, |n| n.clamp(1, u64::from(u32::MAX)) as u32);
    let budget = env_number("FUZZ_SECONDS").map(Duration::from_secs);
    let config = Config { cases: batch, failure_persistence: None, max_shrink_iters: 2048, ..Config::default() };
    let started = Instant::now();
    let mut cases = 0u64;
    let outcome = loop {
        let mut runner = TestRunner::new(config.clone());
        let result = runner.run(&strategy, &test);
        match result {
            Ok(()) => cases += u64::from(batch),
            Err(e) => break Some(e),
        }
        if budget.is_none_or(|b| started.elapsed() >= b) {
            break None;
        }
    };
    let failures = u32::from(outcome.is_some());
    println!("fuzz {name}: {cases} cases in {:.1}s, {failures} failures", started.elapsed().as_secs_f64());
    match outcome {
        None => {}
        Some(TestError::Fail(reason, input)) => panic!("fuzz {name} failed: {reason}\nminimal input: {input:#?}"),
        Some(TestError::Abort(reason)) => panic!("fuzz {name} aborted: {reason}"),
    }
}

/// Fails the case unless `f` gives the same answer twice.
pub fn deterministic<T: Debug>(f: impl Fn() -> T) -> Result<T, TestCaseError> {
    let (a, b) = (f(), f());
    let (da, db) = (format!("{a:?}"), format!("{b:?}"));
    prop_assert_eq!(da, db, "the same input gave two answers");
    Ok(a)
}

/// Every string (keys and values) of the seeds, plus `extra`: the words a parser looks for.
pub fn vocabulary(seeds: &[Value], extra: &[&str]) -> Vec<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => {
                out.insert(s.clone());
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => {
                for (k, v) in map {
                    out.insert(k.clone());
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    seeds.iter().for_each(|s| walk(s, &mut out));
    out.extend(extra.iter().map(|s| s.to_string()));
    out.into_iter().collect()
}

/// Strings that break careless code: empty, blank, control characters and NUL, long, numbers as
/// text, odd Unicode, and the words the parser looks for.
pub fn hostile_string(vocab: Vec<String>) -> BoxedStrategy<String> {
    let words = prop::sample::select(vocab);
    prop_oneof![
        3 => words.clone(),
        1 => Just(String::new()),
        1 => prop::sample::select(vec![" ", "\t\n", "\u{a0}", "\u{200b}", "\u{feff}", "\0", "\u{7f}", "\r\n\r\n"])
            .prop_map(String::from),
        1 => "[\\x00-\\x1f\\x7f]{1,8}",
        1 => "-?[0-9]{1,30}(\\.[0-9]{0,6})?([eE][+-]?[0-9]{1,4})?",
        1 => prop::sample::select(vec!["NaN", "inf", "-0", "1e400", "0x10", "+7", "99999999999999999999999"])
            .prop_map(String::from),
        2 => any::<String>(),
        1 => "\\PC{0,40}",
        1 => (words, 1..4000usize).prop_map(|(w, n)| w.repeat(n.min(200_000 / w.len().max(1)))),
        1 => (any::<char>(), 10_000..70_000usize).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
        1 => prop::collection::vec(any::<String>(), 1..4).prop_map(|parts| parts.join("\0")),
    ]
    .boxed()
}

/// A JSON value of a wrong or odd kind: nulls, booleans, extreme numbers, hostile strings,
/// arrays and objects of such, and nesting deep enough to reach the JSON reader's limit.
pub fn hostile_value(vocab: Vec<String>) -> BoxedStrategy<Value> {
    let number = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            Value::from(0),
            Value::from(-1),
            Value::from(i64::MIN),
            Value::from(i64::MAX),
            Value::from(u64::MAX),
            Value::from(1e308),
            Value::from(-1e308),
            Value::from(5e-324),
            Value::from(9_007_199_254_740_993u64),
            Value::from(253_402_300_800i64),
            Value::from(-62_135_596_801i64),
        ]),
    ];
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => number,
        4 => hostile_string(vocab.clone()).prop_map(Value::String),
        1 => (1..140usize, any::<bool>()).prop_map(|(depth, arrays)| nested(depth, arrays)),
    ];
    let keys = prop_oneof![3 => prop::sample::select(vocab), 1 => any::<String>()];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// `depth` levels of arrays (or objects under the key `"a"`) around a string.
fn nested(depth: usize, arrays: bool) -> Value {
    (0..depth).fold(Value::String("x".into()), |v, _| {
        if arrays { Value::Array(vec![v]) } else { Value::Object(Map::from_iter([("a".to_string(), v)])) }
    })
}

/// One change to a payload, at the node a path of child choices leads to.
#[derive(Debug, Clone)]
pub enum Edit {
    /// The node is removed from its object or array.
    Remove,
    /// The node becomes another value.
    Replace(Value),
    /// A key (or an array item) is added to the node.
    Insert(String, Value),
    /// The node's key in its object is renamed.
    Rename(String),
    /// The node is put inside an array.
    Wrap,
}

#[derive(Debug, Clone)]
pub struct Mutation {
    path: Vec<u16>,
    edit: Edit,
}

fn apply(v: &mut Value, path: &[u16], edit: &Edit) {
    let len = match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    if let (Some((&step, rest)), true) = (path.split_first(), len > 0) {
        let i = usize::from(step) % len;
        let last = rest.is_empty();
        match (v, edit) {
            (Value::Object(m), Edit::Remove) if last => {
                let key = m.keys().nth(i).cloned().unwrap_or_default();
                m.remove(&key);
            }
            (Value::Object(m), Edit::Rename(to)) if last => {
                let key = m.keys().nth(i).cloned().unwrap_or_default();
                if let Some(child) = m.remove(&key) {
                    m.insert(to.clone(), child);
                }
            }
            (Value::Array(a), Edit::Remove) if last => {
                a.remove(i);
            }
            (Value::Object(m), _) => {
                if let Some(child) = m.values_mut().nth(i) {
                    apply(child, rest, edit);
                }
            }
            (Value::Array(a), _) => apply(&mut a[i], rest, edit),
            _ => {}
        }
        return;
    }
    match edit {
        Edit::Replace(new) => *v = new.clone(),
        Edit::Insert(key, new) => match v {
            Value::Object(m) => {
                m.insert(key.clone(), new.clone());
            }
            Value::Array(a) => a.push(new.clone()),
            other => *other = new.clone(),
        },
        Edit::Wrap => *v = Value::Array(vec![v.take()]),
        Edit::Remove => *v = Value::Null,
        Edit::Rename(to) => *v = Value::String(to.clone()),
    }
}

/// A real payload shape (one of `seeds`) with up to eight edits: fields removed, renamed,
/// replaced by hostile values of any kind, or added.
pub fn mutated(seeds: Vec<Value>, extra_words: &[&str]) -> BoxedStrategy<Value> {
    let vocab = vocabulary(&seeds, extra_words);
    let value = hostile_value(vocab.clone());
    let key = prop::sample::select(vocab);
    let edit = prop_oneof![
        2 => Just(Edit::Remove),
        5 => value.clone().prop_map(Edit::Replace),
        2 => (key.clone(), value).prop_map(|(k, v)| Edit::Insert(k, v)),
        1 => key.prop_map(Edit::Rename),
        1 => Just(Edit::Wrap),
    ];
    let mutation = (prop::collection::vec(any::<u16>(), 0..7), edit).prop_map(|(path, edit)| Mutation { path, edit });
    (prop::sample::select(seeds), prop::collection::vec(mutation, 0..8))
        .prop_map(|(mut seed, mutations)| {
            for m in &mutations {
                apply(&mut seed, &m.path, &m.edit);
            }
            seed
        })
        .boxed()
}

/// Bytes: random, or a serialized payload shape cut short, with bytes flipped or inserted.
pub fn body_bytes(seeds: Vec<Value>, extra_words: &[&str]) -> BoxedStrategy<Vec<u8>> {
    let structured = mutated(seeds, extra_words).prop_map(|v| v.to_string().into_bytes());
    let damaged = (
        structured.clone(),
        prop::collection::vec((any::<u16>(), any::<u8>(), 0..3u8), 1..6),
        prop::option::of(any::<u16>()),
    )
        .prop_map(|(mut bytes, changes, cut)| {
            for (at, byte, how) in changes {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let at = usize::from(at) % bytes.len();
                match how {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(usize::from(cut) % (bytes.len() + 1));
            }
            bytes
        });
    prop_oneof![
        6 => structured,
        2 => damaged,
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => Just(b"[]".to_vec()),
    ]
    .boxed()
}
