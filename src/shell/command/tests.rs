//! Lines typed at the prompt: what they become, and what refuses them.

use super::*;
use crate::protocol::{CalcRequest, EchoRequest, EditAction, EditRequest};

fn calc(expr: &str) -> Command {
    Command::Request(Request::Calc(CalcRequest { expr: expr.into() }))
}

fn echo(text: &str) -> Command {
    Command::Request(Request::Echo(EchoRequest { text: text.into() }))
}

fn edit(request: EditRequest) -> Command {
    Command::Request(Request::Edit(request))
}

#[test]
fn lines_become_requests() {
    let replace3 = EditRequest {
        line: Some(3),
        text: Some("new text".into()),
        ..EditRequest::default()
    };
    let show = |file: Option<&str>| EditRequest {
        action: EditAction::Show,
        file: file.map(String::from),
        ..EditRequest::default()
    };
    let cases: Vec<(&str, Command)> = vec![
        ("calc 2+3*4", calc("2+3*4")),
        (
            "run upper 'a  b' c",
            Command::Request(Request::User(crate::protocol::UserRequest {
                op: "upper".into(),
                input: "a  b c".into(),
            })),
        ),
        ("  calc 2 + 3 * 4  ", calc("2 + 3 * 4")),
        ("calc -2^2", calc("-2^2")),
        ("calc (1+2)*3", calc("(1+2)*3")),
        ("echo hi", echo("hi")),
        ("echo \"two  spaces\"", echo("two  spaces")),
        ("echo don\\'t panic", echo("don't panic")),
        ("echo olá ✓", echo("olá ✓")),
        ("edit --line 3 new text", edit(replace3.clone())),
        ("edit --line 3 \"new text\"", edit(replace3)),
        ("show", edit(show(None))),
        ("show --file todo.txt", edit(show(Some("todo.txt")))),
        ("edit --show", edit(show(None))),
        ("quit", Command::Quit),
        ("exit", Command::Quit),
        ("", Command::Nothing),
        ("   ", Command::Nothing),
        ("# a comment", Command::Nothing),
    ];
    for (line, expected) in cases {
        let got = parse(line, None).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(got, expected, "{line:?}");
    }
}

#[test]
fn the_configured_file_is_the_default_for_edit_and_show() {
    let Command::Request(Request::Edit(e)) = parse("show", Some("todo.txt")).unwrap() else {
        panic!("show is an edit request");
    };
    assert_eq!(e.file.as_deref(), Some("todo.txt"));
}

#[test]
fn bad_lines_say_what_to_type_instead() {
    let cases = [
        ("frobnicate 1", "unknown command `frobnicate` - type `help`"),
        ("echo \"unterminated", "unmatched quote"),
        ("edit --line 2", "needs TEXT"),
        ("edit hello", "needs --line N"),
        ("edit --line x hi", "invalid value 'x'"),
        ("calc", "required"),
        ("help frobnicate", "unknown command `frobnicate`"),
    ];
    for (line, expected) in cases {
        match parse(line, None) {
            Err(e) => assert!(e.to_string().contains(expected), "{line:?}: {e}"),
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
        }
    }
}

#[test]
fn help_lists_every_command_and_explains_one() {
    let Ok(Command::Print(list)) = parse("help", None) else {
        panic!("help prints");
    };
    for name in ["calc", "echo", "edit", "show", "help", "quit"] {
        assert!(list.contains(name), "{name} missing from:\n{list}");
    }
    for line in ["help edit", "edit --help", "calc -h"] {
        let Ok(Command::Print(text)) = parse(line, None) else {
            panic!("{line} prints");
        };
        assert!(text.contains("Usage"), "{line}:\n{text}");
    }
}

#[test]
fn every_completion_name_is_a_command() {
    for name in NAMES {
        if let Err(LineError::Unknown(_)) = parse(name, None) {
            panic!("{name} is not a command");
        }
    }
}

#[test]
fn usage_errors_fit_on_one_line() {
    let cases = [
        ("edit --line x hi", "see `help edit`"),
        ("show --frob", "usage: show [OPTIONS]"),
    ];
    for (line, hint) in cases {
        let Err(e) = parse(line, None) else {
            panic!("{line} is refused");
        };
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains(hint), "{text}");
    }
}

#[test]
fn the_plain_fast_path_agrees_with_the_full_parser() {
    let lines = [
        "calc 2+3*4",
        "calc   2 +  3",
        "calc -1-2",
        "calc -(3)",
        "calc -.5*2",
        "echo hello   world",
        "echo ünï ✓",
        "  echo padded  ",
    ];
    for line in lines {
        let fast = super::plain_request(line)
            .unwrap_or_else(|| panic!("{line:?} should take the fast path"));
        let words = shell_words::split(line.trim()).unwrap();
        let Ok(Parsed::Op(op)) = super::parse_words(line) else {
            panic!("{line:?}")
        };
        assert_eq!(
            fast,
            ask::build_request(&op, None).unwrap(),
            "{line:?} ({words:?})"
        );
    }
    for line in [
        "calc",
        "echo 'a  b'",
        "echo a\\ b",
        "calc --help",
        "echo -h",
        "edit --show",
        "echo a#b",
        "show",
    ] {
        assert!(
            super::plain_request(line).is_none(),
            "{line:?} must go through clap"
        );
    }
}

#[test]
fn a_line_may_start_with_user_properties_for_its_request() {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let cases: &[(&str, crate::ask::headers::Headers, &str)] = &[
        ("calc 1+1", vec![], "calc 1+1"),
        ("-H a=1 calc 1+1", vec![pair("a", "1")], "calc 1+1"),
        (
            "-Ha=1 --header b=2 --header=c=3 echo 'x  y'",
            vec![pair("a", "1"), pair("b", "2"), pair("c", "3")],
            "echo 'x  y'",
        ),
        ("-H 'k=a b' echo hi", vec![pair("k", "a b")], "echo hi"),
    ];
    for (line, headers, rest) in cases {
        let (got, left) = take_headers(line).unwrap();
        assert_eq!(&got, headers, "{line}");
        assert_eq!(left, *rest, "{line}");
    }
    assert_eq!(
        parse(&take_headers("-H a=1 echo 'x  y'").unwrap().1, None).unwrap(),
        echo("x  y")
    );
    for (line, needle) in [
        ("-H mqttapp-server-id=x calc 1", "protocol's own"),
        ("-H novalue calc 1", "KEY=VALUE"),
        ("-H a=1", "before a command"),
        ("-H", "before a command"),
        ("-H 'a=1 calc 1", "quote"),
    ] {
        let e = take_headers(line).unwrap_err().to_string();
        assert!(e.contains(needle), "{line}: {e}");
    }
}
