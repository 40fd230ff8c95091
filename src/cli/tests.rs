//! The help is part of the interface: these tests keep it teaching.

use clap::CommandFactory;

use super::Cli;

/// Flags that are fields of one request rather than settings: they have
/// no environment variable and default to "not given".
const REQUEST_FIELDS: &[&str] = &[
    "line",
    "insert",
    "append",
    "delete",
    "show",
    "expect_rev",
    "header",
];

fn help_of(arg: &clap::Arg) -> String {
    arg.get_long_help()
        .or(arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Subcommands whose value flags are settings (with environment variables).
const SETTINGS_COMMANDS: &[&str] = &["mqttapp serve", "mqttapp ask", "mqttapp shell"];

fn visit(cmd: &clap::Command, path: &str, problems: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let builtin = matches!(id, "help" | "version");
        if builtin || arg.is_positional() || REQUEST_FIELDS.contains(&id) {
            continue;
        }
        let help = help_of(arg);
        let takes_value = arg.get_action().takes_values();
        let setting = arg.is_global_set() || (takes_value && SETTINGS_COMMANDS.contains(&path));
        let shown_default =
            !arg.get_default_values().is_empty() && !arg.is_hide_default_value_set();
        if setting && !help.contains("[env:") {
            problems.push(format!("{path} --{id}: help lacks [env: ...]: {help:?}"));
        }
        if (setting || takes_value) && !help.contains("[default:") && !shown_default {
            problems.push(format!("{path} --{id}: help shows no default: {help:?}"));
        }
    }
    for sub in cmd.get_subcommands() {
        visit(sub, &format!("{path} {}", sub.get_name()), problems);
    }
}

#[test]
fn every_setting_flag_names_its_environment_variable_and_default() {
    let mut problems = Vec::new();
    visit(&Cli::command(), "mqttapp", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_subcommand_has_examples_in_its_help() {
    let cli = Cli::command();
    let mut missing = Vec::new();
    for sub in cli.get_subcommands() {
        let after = sub.get_after_help().map(ToString::to_string);
        let ok = after.is_some_and(|a| a.contains("Examples:"));
        if !ok {
            missing.push(sub.get_name().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "add `after_help` with Examples: to {missing:?}"
    );
}

#[test]
fn the_command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

/// Every argument of the command tree, with its command's path.
fn all_args(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
    for arg in cmd.get_arguments() {
        out.push((path.to_string(), arg.clone()));
    }
    for sub in cmd.get_subcommands() {
        all_args(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

/// Flags that describe output, not settings: they have no declaration.
const OUTPUT_FLAGS: &[&str] = &["verbose", "quiet", "color", "json"];

#[test]
fn every_setting_flag_is_declared_and_every_declared_flag_exists() {
    use crate::config::declared;
    let mut args = Vec::new();
    all_args(&Cli::command(), "mqttapp", &mut args);
    for (path, arg) in &args {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if matches!(id, "help" | "version")
            || OUTPUT_FLAGS.contains(&id)
            || REQUEST_FIELDS.contains(&id)
            || !arg.get_action().takes_values() && !arg.is_global_set()
        {
            continue;
        }
        // Run parameters (bench's --count ...) show their default in clap.
        let parameter = !arg.get_default_values().is_empty();
        let Some(setting) = declared::named(id) else {
            assert!(parameter, "{path} --{long} is not declared");
            continue;
        };
        assert_eq!(setting.flag, Some(long), "{path} --{long}");
    }
    for setting in declared::ALL {
        if let Some(flag) = setting.flag {
            assert!(
                args.iter().any(|(_, a)| a.get_long() == Some(flag)),
                "--{flag} is declared but no command has it"
            );
        }
    }
}
