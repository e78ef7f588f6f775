//! Typed metadata: casts (JSON and Python literal forms), the text fallback, bulk updates.

use std::collections::BTreeMap;

use kiln_entities::{Metadata, MetadataEntry, MetadataError, MetadataType, MetadataValue};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::strategies::metadata_value;

fn list(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("not a list: {other}"),
    }
}

fn dict(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not a dict: {other}"),
    }
}

/// Casts `raw` as `ty`; `None` expects the text fallback.
fn check(ty: MetadataType, raw: &str, expect: Option<MetadataValue>) {
    let entry = MetadataEntry::new("k", raw, ty);
    match expect {
        Some(value) => {
            assert_eq!(entry.try_cast(), Ok(value.clone()), "{ty} {raw:?}");
            assert_eq!(entry.cast(), value, "{ty} {raw:?}");
        }
        None => {
            match entry.try_cast() {
                Err(MetadataError::Cast {
                    key, value, ty: t, ..
                }) => {
                    assert_eq!((key.as_str(), value.as_str(), t), ("k", raw, ty));
                }
                other => panic!("{ty} {raw:?} cast to {other:?}"),
            }
            assert_eq!(entry.cast(), MetadataValue::Str(raw.to_owned()), "fallback");
        }
    }
}

#[test]
fn casts() {
    use MetadataType as T;
    use MetadataValue as V;
    check(T::Float, "0.5", Some(V::Float(0.5)));
    check(T::Float, " 1e-3 ", Some(V::Float(0.001)));
    check(T::Float, "3", Some(V::Float(3.0)));
    check(T::Float, "-inf", Some(V::Float(f64::NEG_INFINITY)));
    check(T::Float, "abc", None);
    check(T::Float, "", None);
    check(T::Int, "42", Some(V::Int(42)));
    check(T::Int, " -7 ", Some(V::Int(-7)));
    check(T::Int, "9223372036854775807", Some(V::Int(i64::MAX)));
    check(T::Int, "9223372036854775808", None);
    check(T::Int, "1.5", None);
    check(T::Int, "ten", None);
    check(T::Bool, "True", Some(V::Bool(true)));
    check(T::Bool, " true ", Some(V::Bool(true)));
    check(T::Bool, "FALSE", Some(V::Bool(false)));
    check(T::Bool, "", Some(V::Bool(false)));
    check(T::Bool, "yes", None);
    check(T::Bool, "1", None);
    check(T::Str, " as is ", Some(V::Str(" as is ".into())));
    check(T::List, "[1, 2]", Some(V::List(list(json!([1, 2])))));
    check(T::List, "(1, 2)", Some(V::List(list(json!([1, 2])))));
    check(T::List, "1, 2", Some(V::List(list(json!([1, 2])))));
    check(
        T::List,
        "['a', True, None, 0.5]",
        Some(V::List(list(json!(["a", true, null, 0.5])))),
    );
    check(
        T::List,
        "[\"a\", [1, {\"b\": false}]]",
        Some(V::List(list(json!(["a", [1, {"b": false}]])))),
    );
    check(T::List, "", Some(V::List(vec![])));
    check(T::List, "[]", Some(V::List(vec![])));
    check(T::List, "(7)", Some(V::List(vec![json!(7)])));
    check(T::List, "[1, 2", None);
    check(T::List, "{'a': 1}", Some(V::List(list(json!([{"a": 1}])))));
    check(T::List, "a b", None);
    check(T::Tuple, "(1, 'x')", Some(V::Tuple(list(json!([1, "x"])))));
    check(T::Tuple, "(1,)", Some(V::Tuple(vec![json!(1)])));
    check(T::Tuple, "()", Some(V::Tuple(vec![])));
    check(T::Tuple, "[1, 2]", Some(V::Tuple(list(json!([1, 2])))));
    check(
        T::Tuple,
        "(1, (2, 3))",
        Some(V::Tuple(list(json!([1, [2, 3]])))),
    );
    check(
        T::Dict,
        "{'a': 1, 'b': [True, False]}",
        Some(V::Dict(dict(json!({"a": 1, "b": [true, false]})))),
    );
    check(
        T::Dict,
        "{\"a\": {\"b\": null}}",
        Some(V::Dict(dict(json!({"a": {"b": null}})))),
    );
    check(
        T::Dict,
        "{1: 'one', None: 0}",
        Some(V::Dict(dict(json!({"1": "one", "None": 0})))),
    );
    check(T::Dict, "{}", Some(V::Dict(dict(json!({})))));
    check(T::Dict, "[1]", None);
    check(T::Dict, "not a dict", None);
    check(T::Dict, "{'a': }", None);
}

#[test]
fn renders() {
    use MetadataValue as V;
    let cases = [
        (V::Float(1.0), "1.0"),
        (V::Float(0.25), "0.25"),
        (V::Int(-3), "-3"),
        (V::Bool(true), "True"),
        (V::Bool(false), "False"),
        (V::Str("x y".into()), "x y"),
        (V::List(list(json!([1, "a"]))), "[1,\"a\"]"),
        (V::Tuple(list(json!([1, "a"]))), "(1, \"a\")"),
        (V::Tuple(vec![json!(1)]), "(1,)"),
        (V::Tuple(vec![]), "()"),
        (V::Dict(dict(json!({"a": [1]}))), "{\"a\":[1]}"),
    ];
    for (value, text) in cases {
        assert_eq!(value.render(), text);
        let entry = MetadataEntry::from_value("k", &value);
        assert_eq!((entry.value.as_str(), entry.ty), (text, value.ty()));
        assert_eq!(entry.cast(), value);
    }
}

proptest! {
    /// Rendering a value and casting it back gives the value.
    #[test]
    fn render_then_cast_is_identity(value in metadata_value()) {
        let entry = MetadataEntry::from_value("k", &value);
        prop_assert_eq!(entry.try_cast(), Ok(value));
    }

    /// Casting never panics, whatever the text and type.
    #[test]
    fn cast_is_total(raw in "\\PC{0,24}", ty in crate::strategies::member(MetadataType::ALL)) {
        let entry = MetadataEntry::new("k", raw.clone(), ty);
        let cast = entry.cast();
        prop_assert!(cast.ty() == ty || cast == MetadataValue::Str(raw));
    }
}

#[test]
fn set_get_and_bulk_updates() {
    let mut metadata = Metadata::new();
    assert!(metadata.is_empty());
    assert_eq!(
        metadata.set_metadata("epochs", "10", MetadataType::Int),
        None
    );
    metadata.set_metadata("lr", "0.001", MetadataType::Float);
    metadata.set_value(
        "classes",
        &MetadataValue::Tuple(vec![json!("cat"), json!("dog")]),
    );
    metadata.set_metadata("broken", "ten", MetadataType::Int);
    assert_eq!(metadata.len(), 4);
    assert_eq!(metadata.get_metadata("epochs"), Some("10"));
    assert_eq!(metadata.get_metadata("missing"), None);
    assert_eq!(
        metadata.get_metadata_casted("epochs"),
        Some(MetadataValue::Int(10))
    );
    assert_eq!(
        metadata.get_metadata_casted("broken"),
        Some(MetadataValue::Str("ten".into()))
    );
    assert_eq!(metadata.get_metadata_casted("missing"), None);
    assert_eq!(
        metadata.try_get_casted("missing"),
        Err(MetadataError::NotFound {
            key: "missing".into()
        })
    );
    assert!(matches!(
        metadata.try_get_casted("broken"),
        Err(MetadataError::Cast { .. })
    ));
    assert_eq!(
        metadata.get_all_metadata_casted(),
        BTreeMap::from([
            ("broken".to_owned(), MetadataValue::Str("ten".into())),
            (
                "classes".to_owned(),
                MetadataValue::Tuple(vec![json!("cat"), json!("dog")])
            ),
            ("epochs".to_owned(), MetadataValue::Int(10)),
            ("lr".to_owned(), MetadataValue::Float(0.001)),
        ])
    );
    let old = metadata.set_metadata("epochs", "20", MetadataType::Int);
    assert_eq!(
        old,
        Some(MetadataEntry::new("epochs", "10", MetadataType::Int))
    );

    // Update: old entries stay, given ones are added or changed.
    metadata.set_all_metadata(
        [
            MetadataEntry::new("lr", "0.01", MetadataType::Float),
            MetadataEntry::new("opt", "sgd", MetadataType::Str),
        ],
        false,
    );
    assert_eq!(
        metadata.get_all_metadata().keys().collect::<Vec<_>>(),
        ["broken", "classes", "epochs", "lr", "opt"]
    );
    assert_eq!(metadata.get_metadata("lr"), Some("0.01"));

    // Replace: only the given entries remain.
    metadata.set_all_metadata([MetadataEntry::new("only", "1", MetadataType::Int)], true);
    assert_eq!(
        metadata.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["only"]
    );
    assert_eq!(
        metadata.remove("only").map(|e| e.value),
        Some("1".to_owned())
    );
    assert!(metadata.is_empty());
}

#[test]
fn wire_forms() {
    let metadata: Metadata = [
        MetadataEntry::new("b", "2", MetadataType::Int),
        MetadataEntry::new("a", "x", MetadataType::Str),
        MetadataEntry::new("b", "3", MetadataType::Int),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        serde_json::to_value(&metadata).ok(),
        Some(
            json!([{"key": "a", "value": "x", "type": "str"}, {"key": "b", "value": "3", "type": "int"}])
        )
    );
    let read: Metadata = serde_json::from_value(json!([
        {"key": "k", "value": "1", "type": "int"},
        {"key": "k", "value": "2", "type": "int"},
    ]))
    .expect("reads");
    assert_eq!(read.get_metadata("k"), Some("2"), "a later duplicate wins");
    assert!(
        serde_json::from_value::<Metadata>(json!([{"key": "k", "value": "1", "type": "complex"}]))
            .is_err()
    );
    assert_eq!(
        serde_json::to_value(MetadataValue::Tuple(vec![json!(1)])).ok(),
        Some(json!({"type": "tuple", "value": [1]}))
    );
}
