use super::*;
use crate::operations::Operations;
use crate::protocol::{decode_request, encode_reply, Encoding};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn every_builtin_example_is_what_the_operation_answers() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    let ops = Operations::open(dir.path(), "notes.txt", limits).unwrap();
    let d = Builder::new(None).builtins(&Op::ALL, &limits).build();
    let mut checked = 0;
    for (op, described) in Op::ALL.into_iter().zip(&d.ops) {
        // Edit's examples run in order on one file, as written.
        for example in &described.examples {
            let request = decode_request(op, Encoding::Json, example.input.as_bytes()).unwrap();
            let reply = encode_reply(&ops.apply(&request, None), Encoding::Json);
            let reply = json(std::str::from_utf8(&reply).unwrap());
            assert_eq!(reply, json(&example.output), "{op}: {}", example.input);
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}

#[test]
fn limits_are_the_servers_own_values() {
    let mut limits = Limits::default();
    limits.calc.max_len = 100;
    limits.max_payload = 2048;
    limits.edit.max_lines = 7;
    let d = Builder::new(None).builtins(&Op::ALL, &limits).build();
    let value = |op: &str, name: &str| {
        let op = d.op(op).unwrap();
        op.limits.iter().find(|l| l.name == name).unwrap().value
    };
    assert_eq!(value("calc", "max_expr_bytes"), 100);
    assert_eq!(value("calc", "max_payload_bytes"), 2048);
    assert_eq!(value("echo", "max_payload_bytes"), 2048);
    assert_eq!(value("edit", "max_lines"), 7);
    assert_eq!(value("calc", "max_depth"), 64);
}

#[test]
fn only_the_offered_operations_are_described_and_edit_lists_its_actions() {
    let limits = Limits::default();
    let d = Builder::new(Some("i".into()))
        .builtins(&[Op::Calc, Op::Echo], &limits)
        .build();
    let names: Vec<&str> = d.ops.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["calc", "echo"]);
    assert_eq!(d.instance.as_deref(), Some("i"));
    assert_eq!(d.version, DESCRIPTION_VERSION);
    let edit = builtin(Op::Edit, &limits);
    let action = edit.fields.iter().find(|f| f.name == "action").unwrap();
    assert_eq!(
        action.allowed,
        ["replace", "insert", "append", "delete", "show"]
    );
    for code in &edit.codes {
        assert!(crate::protocol::ErrorCode::parse(code).is_some(), "{code}");
    }
}

#[test]
fn an_operation_given_by_plain_fields_is_described_as_given() {
    let d = Builder::new(None)
        .builtins(&[Op::Calc], &Limits::default())
        .extra(ExtraOp {
            name: "wc".into(),
            summary: "count words".into(),
            input: "text".into(),
            output: "a number".into(),
            limits: vec![Limit::new("timeout_ms", 5000, "ms")],
            examples: vec![Example::new("a b", "2")],
            codes: vec!["failed".into()],
            ..ExtraOp::default()
        })
        .build();
    let wc = d.op("wc").unwrap();
    assert_eq!(
        (wc.summary.as_str(), wc.reply.as_str()),
        ("count words", "a number")
    );
    assert_eq!(wc.limits[0].value, 5000);
    assert_eq!(wc.examples[0].output, "2");
    assert!(!d.truncated);
}

#[test]
fn a_huge_description_is_capped_under_the_bound_and_says_so() {
    let long = "x".repeat(10_000);
    let big = ExtraOp {
        name: long.clone(),
        summary: long.clone(),
        input: long.clone(),
        output: long.clone(),
        encodings: vec![long.clone(); 100],
        limits: vec![Limit::new(&long, 1, &long); 100],
        examples: vec![Example::new(&long, &long); 100],
        codes: vec![long.clone(); 100],
    };
    let mut builder = Builder::new(None).builtins(&Op::ALL, &Limits::default());
    for _ in 0..200 {
        builder = builder.extra(big.clone());
    }
    let d = builder.build();
    assert!(
        d.encode().len() <= MAX_DESCRIPTION_BYTES,
        "{}",
        d.encode().len()
    );
    assert!(d.truncated);
    assert_eq!(d.ops[0].name, "calc", "the built-ins come first and stay");
    assert!(d
        .ops
        .iter()
        .all(|o| o.name.chars().count() <= MAX_NAME_CHARS));
    assert!(d.ops.len() <= MAX_OPS);
}

#[test]
fn the_builtin_description_is_far_under_the_bound() {
    let d = Builder::new(Some("0123456789abcdef".into()))
        .builtins(&Op::ALL, &Limits::default())
        .build();
    let size = d.encode().len();
    assert!(size < MAX_DESCRIPTION_BYTES / 8, "{size} bytes");
    assert!(!d.truncated);
}
