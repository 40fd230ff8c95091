//! The mixed workload of the fault tests, and the checks that prove
//! nothing was lost and no edit was applied twice.

use std::collections::BTreeSet;

use mqttapp::protocol::{CalcRequest, EditAction, EditRequest, OkValue, Reply, Request};

use super::resend::Outcome;

/// Request `i` of client `c`: even ones append the line `c<c>-<i>` to the
/// default file, odd ones compute `c*1000+i`.
pub fn mixed(c: usize, i: usize) -> Request {
    if i.is_multiple_of(2) {
        Request::Edit(EditRequest {
            action: EditAction::Append,
            line: None,
            text: Some(format!("c{c}-{i}")),
            file: None,
            expect_rev: None,
        })
    } else {
        Request::Calc(CalcRequest {
            expr: format!("{c}*1000+{i}"),
        })
    }
}

/// Checks a run of [`mixed`]: every request answered exactly once and
/// correctly, every edit reported a distinct revision 1..=edits, and the
/// file holds each appended line exactly once and nothing else (a torn or
/// doubled write would show here).
pub fn check_mixed(outcome: &Outcome, clients: usize, per_client: usize, file: &str) {
    assert!(
        outcome.failures.is_empty(),
        "unanswered: {:?}",
        outcome.failures
    );
    assert_eq!(outcome.replies.len(), clients * per_client, "{outcome:?}");
    let mut revs = BTreeSet::new();
    for (c, i, reply) in &outcome.replies {
        match (i % 2, reply) {
            (0, Reply::Ok(OkValue::Edit(e))) => {
                assert!(revs.insert(e.rev), "revision {} reported twice", e.rev);
            }
            (1, Reply::Ok(OkValue::Int(n))) => {
                assert_eq!(*n, (c * 1000 + i) as i64, "calc of client {c} request {i}");
            }
            _ => panic!("client {c} request {i}: unexpected reply {reply:?}"),
        }
    }
    let edits = clients * per_client.div_ceil(2);
    let expected_revs: BTreeSet<u64> = (1..=edits as u64).collect();
    assert_eq!(
        revs, expected_revs,
        "edit revisions must be exactly 1..={edits}"
    );
    let lines: Vec<&str> = file.lines().collect();
    let unique: BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(
        lines.len(),
        unique.len(),
        "a line was applied twice:\n{file}"
    );
    let expected: BTreeSet<String> = (0..clients)
        .flat_map(|c| (0..per_client).step_by(2).map(move |i| format!("c{c}-{i}")))
        .collect();
    let got: BTreeSet<String> = unique.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, expected, "the file must hold each appended line once");
    assert!(
        file.is_empty() || file.ends_with('\n'),
        "torn file: {file:?}"
    );
}
