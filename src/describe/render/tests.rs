use std::collections::BTreeMap;

use super::*;
use crate::describe::builder::{Builder, ExtraOp};
use crate::limits::Limits;
use crate::protocol::{Op, Status};

fn catalog(servers: &[(&str, &[Op], Option<ExtraOp>)]) -> Catalog {
    let mut statuses = BTreeMap::new();
    let mut descriptions = BTreeMap::new();
    for (id, ops, extra) in servers {
        let mut names: Vec<String> = ops.iter().map(|o| o.as_str().to_string()).collect();
        let mut builder = Builder::new(Some(format!("i-{id}"))).builtins(ops, &Limits::default());
        if let Some(extra) = extra {
            names.push(extra.name.clone());
            builder = builder.extra(extra.clone());
        }
        let status = Status {
            state: Status::ONLINE.into(),
            ops: names,
            version: "1".into(),
            since: 1,
            group: None,
            instance: Some(format!("i-{id}")),
            data_dir: None,
        };
        statuses.insert(id.to_string(), status.encode());
        descriptions.insert(id.to_string(), builder.build().encode());
    }
    Catalog::merge(&statuses, &descriptions)
}

#[test]
fn the_listing_names_each_operation_once_with_its_servers() {
    let c = catalog(&[("a", &Op::ALL, None), ("b", &[Op::Calc, Op::Echo], None)]);
    assert_eq!(
        list(&c),
        "OP    SUMMARY                                                    SERVERS\n\
         calc  evaluate an arithmetic expression exactly                  a, b\n\
         echo  return the text unchanged                                  a, b\n\
         edit  change or show a text file in the server's data directory  a\n"
    );
    let json = list_json(&c);
    assert_eq!(json[0]["servers"], json!(["a", "b"]));
    assert_eq!(json[2]["name"], "edit");
}

#[test]
fn one_operation_shows_fields_limits_examples_and_codes() {
    let c = catalog(&[("a", &Op::ALL, None)]);
    let text = one(c.offer("edit").unwrap());
    for needle in [
        "edit: change or show a text file",
        "offered by: a",
        "action      string, optional   what to do (default replace); one of: replace, insert, append, delete, show",
        "  max_line_bytes     65536 bytes",
        "  {\"action\":\"append\",\"text\":\"hello\"}  ->  {\"ok\":{\"file\":\"notes.txt\",\"rev\":1,\"lines\":1}}",
        "error codes: bad_request, limit, not_found, conflict, io, busy, internal",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    let json = one_json(c.offer("calc").unwrap());
    for key in ["fields", "limits", "examples", "codes", "reply", "summary"] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    assert_eq!(json["servers"], json!(["a"]));
    assert!(json.get("others").is_none() && json.get("undescribed").is_none());
}

#[test]
fn text_from_the_broker_cannot_reach_the_terminal_as_escape_sequences() {
    let evil = ExtraOp {
        name: "x".into(),
        summary: "\u{1b}[2J\u{1b}]0;pwned\u{7}gone\nsecond line".into(),
        ..ExtraOp::default()
    };
    let c = catalog(&[("a", &[Op::Calc], Some(evil))]);
    for text in [list(&c), one(c.offer("x").unwrap())] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("?[2J?]0;pwned?gone?second line"), "{text}");
    }
}

#[test]
fn servers_without_a_description_are_named_as_such() {
    let mut statuses = BTreeMap::new();
    let status = Status {
        state: Status::ONLINE.into(),
        ops: vec!["calc".into()],
        version: "0.1".into(),
        since: 1,
        group: None,
        instance: None,
        data_dir: None,
    };
    statuses.insert("old".to_string(), status.encode());
    let c = Catalog::merge(&statuses, &BTreeMap::new());
    assert!(list(&c).contains("calc  (no description)  old"));
    assert!(one(c.offer("calc").unwrap()).contains("offered by old, which publish no description"));
    assert_eq!(
        one_json(c.offer("calc").unwrap())["undescribed"],
        json!(["old"])
    );
}
