//! The help is part of the interface: these tests keep it teaching.

use clap::CommandFactory;

use super::Cli;

/// Flags that are fields of one request rather than settings: they have
/// no environment variable and default to "not given".
const REQUEST_FIELDS: &[&str] = &["line", "insert", "append", "delete", "show", "expect_rev"];

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
