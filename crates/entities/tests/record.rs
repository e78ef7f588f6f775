//! The registry record: design (config_text XOR config_dict), archive as a system tag, metadata.

use std::collections::BTreeMap;

use kiln_entities::{
    ARCHIVED_TAG, Design, DesignError, MetadataEntry, MetadataType, MetadataValue, ModelRecord,
    PACKAGE_TAG,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::strategies::json_map;

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn design_is_text_xor_dict() {
    let dict = map(json!({"lr": 0.1}));
    assert_eq!(Design::from_options(None, None), Ok(None));
    assert_eq!(
        Design::from_options(Some("a = 1".into()), None),
        Ok(Some(Design::Text("a = 1".into())))
    );
    assert_eq!(
        Design::from_options(None, Some(dict.clone())),
        Ok(Some(Design::Dict(dict.clone())))
    );
    let both = Design::from_options(Some("a = 1".into()), Some(dict.clone()));
    assert_eq!(
        both,
        Err(DesignError::TextAndDict {
            config_text: "a = 1".into(),
            config_dict: dict.clone()
        })
    );
    assert_eq!(
        both.expect_err("both").to_string(),
        "specify config_text or config_dict, not both (config_text: \"a = 1\", config_dict keys: lr)"
    );

    let mut record = ModelRecord::new("resnet");
    record
        .update_design(None, Some(dict.clone()))
        .expect("one is fine");
    assert_eq!(
        record
            .update_design(Some("x: 1".into()), Some(dict.clone()))
            .map_err(|_| ()),
        Err(())
    );
    assert_eq!(
        record.design,
        Some(Design::Dict(dict.clone())),
        "a failed update changes nothing"
    );
    assert_eq!(
        record.config_dict().ok().flatten().map(|d| d.into_owned()),
        Some(dict)
    );
    record
        .update_design(Some("x: 1".into()), None)
        .expect("text");
    assert_eq!(record.config_text().as_deref(), Some("x: 1"));
    assert_eq!(
        record.config_dict().ok().flatten().map(|d| d.into_owned()),
        Some(map(json!({"x": 1})))
    );
    record.update_design(None, None).expect("clears");
    assert_eq!(record.config_text(), None);
    assert_eq!(record.config_dict(), Ok(None));
}

/// Parses `text` as a design; `expect` is the dict or the error.
fn check(text: &str, expect: Result<Value, DesignError>) {
    let got = Design::Text(text.to_owned())
        .config_dict()
        .map(|d| Value::Object(d.into_owned()));
    assert_eq!(got, expect, "{text:?}");
}

#[test]
fn config_dict_parses_text() {
    check("", Ok(json!({})));
    check("  \n ", Ok(json!({})));
    check(
        r#"{"a": 1, "b": {"c": [1, 2]}}"#,
        Ok(json!({"a": 1, "b": {"c": [1, 2]}})),
    );
    check(
        "[1, 2]",
        Err(DesignError::NotAnObject { found: "an array" }),
    );
    check("42", Err(DesignError::NotAnObject { found: "a number" }));
    check(
        "# a comment\n; another\nlr = 0.01\nepochs: 10\nname = resnet 50\nflag: True\nlayers = [1, 2]\nquoted = 'x y'\nurl = http://host:80/x\nempty =\n",
        Ok(json!({
            "lr": 0.01, "epochs": 10, "name": "resnet 50", "flag": true, "layers": [1, 2],
            "quoted": "x y", "url": "http://host:80/x", "empty": ""
        })),
    );
    check(
        "top = 1\n[train]\nbatch = 24\n[ eval ]\nbatch: 1\n[train]\nepochs = 3\n",
        Ok(json!({"top": 1, "train": {"batch": 24, "epochs": 3}, "eval": {"batch": 1}})),
    );
    check("a = 1\na = 2", Ok(json!({"a": 2})));
    check(
        "a = 1\njust words\n",
        Err(DesignError::UnparsableLine {
            line: 2,
            text: "just words".into(),
        }),
    );
    check(
        "= 1",
        Err(DesignError::UnparsableLine {
            line: 1,
            text: "= 1".into(),
        }),
    );
    check("[]\n", Err(DesignError::NotAnObject { found: "an array" }));
    check(
        "[ ]\na = 1",
        Err(DesignError::UnparsableLine {
            line: 1,
            text: "[ ]".into(),
        }),
    );
    check(
        "{",
        Err(DesignError::UnparsableLine {
            line: 1,
            text: "{".into(),
        }),
    );
}

#[test]
fn config_text_renders_the_dict() {
    let dict = map(json!({"b": [1, 2], "a": {"c": "d"}}));
    let design = Design::Dict(dict.clone());
    let text = design.config_text().into_owned();
    assert_eq!(
        text,
        "{\n  \"a\": {\n    \"c\": \"d\"\n  },\n  \"b\": [\n    1,\n    2\n  ]\n}"
    );
    assert_eq!(
        Design::Text(text).config_dict().map(|d| d.into_owned()),
        Ok(dict)
    );
    assert_eq!(Design::Text("raw text".into()).config_text(), "raw text");
}

proptest! {
    #[test]
    fn dict_to_text_to_dict(dict in json_map()) {
        let text = Design::Dict(dict.clone()).config_text().into_owned();
        prop_assert_eq!(Design::Text(text).config_dict().map(|d| d.into_owned()), Ok(dict));
    }

    /// Parsing config text never panics.
    #[test]
    fn config_dict_is_total(text in "[\\PC\n]{0,64}") {
        let _ = Design::Text(text).config_dict();
    }
}

#[test]
fn archive_is_a_system_tag() {
    let mut record = ModelRecord::new("m");
    assert!(!record.archived());
    record.archive();
    record.archive();
    assert!(record.archived());
    assert_eq!(record.system_tags, [ARCHIVED_TAG]);
    record.unarchive();
    record.unarchive();
    assert!(!record.archived());
    assert!(record.system_tags.is_empty());

    record.system_tags = vec![PACKAGE_TAG.into(), "archived".into()];
    assert!(record.archived(), "archived() reads the system tags");
    assert!(record.is_package());
    record.unarchive();
    assert_eq!(record.system_tags, [PACKAGE_TAG]);
    let json = serde_json::to_value(&record).expect("serializes");
    assert!(
        json.get("archived").is_none(),
        "no duplicated state on the wire"
    );
}

#[test]
fn new_record_and_publish() {
    let mut record = ModelRecord::new("yolo");
    assert_eq!(record.name, "yolo");
    assert_eq!(record.comment, "");
    assert!(!record.published && record.framework.is_none() && record.uri.is_none());
    assert!(record.labels.is_empty() && record.tags.is_empty() && record.metadata.is_empty());
    record.publish();
    record.publish();
    assert!(record.published);
    let labels = BTreeMap::from([("background".to_owned(), 0), ("person".to_owned(), 1)]);
    record.update_labels(labels.clone());
    assert_eq!(record.labels, labels);
}

#[test]
fn record_metadata() {
    let mut record = ModelRecord::new("m");
    record.set_metadata("epochs", "12", MetadataType::Int);
    record.set_all_metadata(
        [MetadataEntry::new("acc", "0.9", MetadataType::Float)],
        false,
    );
    assert_eq!(record.get_metadata("epochs"), Some("12"));
    assert_eq!(
        record.get_metadata_casted("acc"),
        Some(MetadataValue::Float(0.9))
    );
    assert_eq!(
        record.try_get_metadata_casted("epochs"),
        Ok(MetadataValue::Int(12))
    );
    assert_eq!(record.get_all_metadata().len(), 2);
    assert_eq!(
        record.get_all_metadata_casted().get("epochs"),
        Some(&MetadataValue::Int(12))
    );
    record.set_all_metadata([], true);
    assert!(record.get_all_metadata().is_empty());
}

#[test]
fn record_reads_with_optional_fields_missing() {
    let id = kiln_entities::ModelId::new();
    let record: ModelRecord =
        serde_json::from_value(json!({"id": id.to_string(), "name": "m"})).expect("reads");
    let mut expect = ModelRecord::new("m");
    expect.id = id;
    assert_eq!(record, expect);
}
