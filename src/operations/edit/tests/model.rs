//! Property test: random action sequences agree with a `Vec<String>` model.

use proptest::prelude::*;

use super::*;

/// Small limits so that limit errors are exercised too.
const LIMITS: EditLimits = EditLimits {
    max_file_bytes: 200,
    max_lines: 12,
    max_line_bytes: 10,
    max_files: 10,
};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z ]{0,12}",
        1 => Just("bad\nline".to_string()),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let line = 0u64..16;
    prop_oneof![
        (line.clone(), text()).prop_map(|(line, text)| Action::Replace { line, text }),
        (line.clone(), text()).prop_map(|(line, text)| Action::Insert { line, text }),
        text().prop_map(|text| Action::Append { text }),
        line.prop_map(|line| Action::Delete { line }),
        Just(Action::Show),
    ]
}

/// Stateless checks, in the order the spec lists them.
fn model_check(action: &Action) -> Result<(), &'static str> {
    let (line, text) = match action {
        Action::Replace { line, text } | Action::Insert { line, text } => {
            (Some(*line), text.as_str())
        }
        Action::Append { text } => (None, text.as_str()),
        Action::Delete { line } => (Some(*line), ""),
        Action::Show => (None, ""),
    };
    match line {
        Some(0) => return Err("bad_request"),
        Some(n) if n > LIMITS.max_lines => return Err("limit"),
        _ => {}
    }
    if text.contains('\n') {
        return Err("bad_request");
    }
    if text.len() > LIMITS.max_line_bytes {
        return Err("limit");
    }
    Ok(())
}

/// The spec, written as directly as possible. `Err(code)` when it fails.
fn model(lines: &mut Vec<String>, action: &Action) -> Result<(), &'static str> {
    model_check(action)?;
    let mut next = lines.clone();
    match action {
        Action::Show => return Ok(()),
        Action::Append { text } => next.push(text.clone()),
        Action::Delete { line } => {
            if *line as usize > next.len() {
                return Err("not_found");
            }
            next.remove(*line as usize - 1);
        }
        Action::Replace { line, text } => {
            let i = *line as usize - 1;
            while next.len() <= i {
                next.push(String::new());
            }
            next[i] = text.clone();
        }
        Action::Insert { line, text } => {
            let i = *line as usize - 1;
            while next.len() < i {
                next.push(String::new());
            }
            next.insert(i, text.clone());
        }
    }
    let bytes: usize = next.iter().map(|l| l.len() + 1).sum();
    if next.len() as u64 > LIMITS.max_lines || bytes as u64 > LIMITS.max_file_bytes {
        return Err("limit");
    }
    *lines = next;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn store_agrees_with_vec_model(actions in proptest::collection::vec(action(), 1..16)) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), LIMITS);
        let mut lines: Vec<String> = Vec::new();
        let mut rev = 0u64;
        for a in &actions {
            let want = model(&mut lines, a);
            let got = store.apply(&req(a.clone()));
            match (&want, &got) {
                (Ok(()), Ok(o)) => {
                    if a.is_change() {
                        rev += 1;
                    }
                    prop_assert_eq!(o.rev, rev);
                    prop_assert_eq!(o.lines, lines.len() as u64);
                }
                (Err(code), Err(e)) => prop_assert_eq!(*code, e.code(), "{:?}: {}", a, e),
                _ => prop_assert!(false, "{:?}: model {:?}, store {:?}", a, want, got),
            }
            let shown = super::super::text::render(&lines);
            prop_assert_eq!(content(dir.path(), DEFAULT), shown);
        }
    }
}
