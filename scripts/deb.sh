#!/usr/bin/env bash
# Builds the Debian package into target/debian/ with cargo-deb
# ([package.metadata.deb] in Cargo.toml): the binary, its man pages and
# shell completions (generated here, into <profile dir>/deb-assets), the
# systemd unit config/mqttapp.service and config/mqttapp.toml as
# /etc/mqttapp/mqttapp.toml.
#
#   scripts/deb.sh          release build, then the package (`make deb`)
#   scripts/deb.sh --dev    packages the debug binary `cargo test` already
#                           built, stripped: no release build (tests/service.rs)
#
# Needs cargo-deb (`make deb-tools`). Honours CARGO and CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-target}
case "${1:-}" in
"") profile=release dir=$target/release cargo_profile=(--release) deb_flags=() ;;
--dev) profile=dev dir=$target/debug cargo_profile=() deb_flags=(--strip --fast) ;;
*) echo "usage: $0 [--dev]" >&2; exit 2 ;;
esac

command -v cargo-deb >/dev/null || {
	echo "cargo-deb not found: run \`make deb-tools\`" >&2
	exit 1
}
if [ "$profile" = release ]; then
	"$CARGO" build --locked --release
fi
[ -x "$dir/mqttapp" ] || { echo "$dir/mqttapp not built: run \`$CARGO build\` first" >&2; exit 1; }

assets=$dir/deb-assets
rm -rf "$assets"
mkdir -p "$assets/completions"
"$CARGO" run --locked --quiet "${cargo_profile[@]}" --example gen_man -- "$assets/man" >/dev/null
"$dir/mqttapp" completions bash >"$assets/completions/mqttapp.bash"
"$dir/mqttapp" completions zsh >"$assets/completions/_mqttapp"
"$dir/mqttapp" completions fish >"$assets/completions/mqttapp.fish"

# cargo-deb warns that the dev profile is for debugging, not releases:
# --dev packages are for the test only.
cargo deb --locked --no-build --profile "$profile" "${deb_flags[@]}" --quiet
