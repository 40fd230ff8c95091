//! The flags' `[env: ...] [default: ...]` suffixes and typed value
//! parsers, both from the settings' declarations (`config::declared`), so
//! a flag's text never repeats what the declaration says.

use clap::Arg;

use crate::config::declared::{self, Typed};

/// Appends the declared setting's sources and default to `arg`'s help
/// (idempotent: clap may hand the same argument over more than once).
/// Arguments that are no declared setting, and those whose default clap
/// already shows, are left alone.
pub(super) fn with_source_and_default(arg: Arg) -> Arg {
    let Some(setting) = declared::named(arg.get_id().as_str()) else {
        return arg;
    };
    let shows_default = !arg.get_default_values().is_empty() && !arg.is_hide_default_value_set();
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    if shows_default || help.contains("[env:") {
        return arg;
    }
    let suffix = setting.help_suffix();
    let long = arg.get_long_help().map(|long| format!("{long} {suffix}"));
    let arg = arg.help(format!("{help} {suffix}"));
    match long {
        Some(long) => arg.long_help(long),
        None => arg,
    }
}

/// A clap value parser from a setting's typed parser: a refused flag says
/// what the value should look like and where else the setting is set,
/// with the same words as a refused variable or config file value.
pub(super) fn typed<T: 'static>(
    setting: &'static Typed<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |text| (setting.parse)(text).map_err(|reason| format!("{reason} - {}", setting.fix_hint()))
}
