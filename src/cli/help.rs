//! The long texts of `--help`: examples and exit codes for each command.
//! Kept apart so that `cli.rs` reads as the list of flags.

pub(super) const TOP_HELP: &str = "Examples:
  mqttapp serve                          answer requests (broker on localhost:1883)
  mqttapp ask calc \"2+3*4\"               prints 14
  mqttapp ask echo hello                 prints hello
  mqttapp ask edit --line 3 \"text\"       line 3 of the server's file becomes \"text\"
  mqttapp ask edit --show                prints the file
  mqttapp shell                          a prompt: calc 1+1, echo hi, show, help, quit
  mqttapp describe calc                  what calc takes, its limits, examples, error codes
  mqttapp completions bash > ~/.local/share/bash-completion/completions/mqttapp

Run `mqttapp help <command>` or `mqttapp <command> --help` for each command's flags.";

pub(super) const SERVE_HELP: &str = "Examples:
  mqttapp serve                                  answer on mqtt://localhost:1883
  mqttapp serve --data-dir /var/lib/mqttapp --group workers
  MQTTAPP_BROKER=mqtts://broker.example:8883 mqttapp serve --ca-file ca.pem
  mqttapp serve --exec 'upper=tr a-z A-Z'        also offer a program as operation upper

Several servers with the same --group share the requests (MQTT 5 shared
subscription); give each its own --server-id.";

pub(super) const SHELL_HELP: &str = "Commands at the prompt:
  calc 2+3*4                      evaluate an expression
  echo hello world                send text back
  edit --line 3 new text          the same flags as `mqttapp ask edit`
  show [--file NAME]              print the file (edit --show)
  run NAME INPUT...               a user-defined operation (serve --exec)
  -H KEY=VALUE COMMAND            send a user property with this one request
  help [COMMAND]                  the commands, or one command's flags
  quit, exit, Ctrl-D              leave (Ctrl-C cancels a request awaiting its reply)

Words are split like a shell's: quote to keep spaces (echo \"a  b\").
History is kept in $XDG_STATE_HOME/mqttapp/history (~/.local/state/...);
lines starting with a space and lines that are not valid commands are not
saved.

When stdin is not a terminal, commands are read without prompts, each
result goes to stdout (one line per reply with --json) and errors to
stderr; the exit code is 0 when every command succeeded, else 1.

Examples:
  mqttapp shell
  printf 'calc 1+1\\necho hi\\n' | mqttapp shell --json
  mqttapp shell < commands.txt";

pub(super) const COMPLETIONS_HELP: &str = "Examples:
  mqttapp completions bash > ~/.local/share/bash-completion/completions/mqttapp
  mqttapp completions zsh > ~/.zfunc/_mqttapp          (fpath+=~/.zfunc in .zshrc)
  mqttapp completions fish > ~/.config/fish/completions/mqttapp.fish
  mqttapp completions powershell >> $PROFILE
  mqttapp completions elvish >> ~/.config/elvish/rc.elv";

pub(super) const ASK_HELP: &str = "Examples:
  mqttapp ask calc \"2+3*4\"             prints 14
  mqttapp ask echo hello world         prints hello world
  mqttapp ask edit --line 3 \"text\"     line 3 of the server's file becomes \"text\"
  mqttapp ask edit --append \"last\"     adds a line at the end
  mqttapp ask edit --show              prints the file
  mqttapp ask --json calc 7/2          prints {\"ok\":3.5}
  mqttapp ask -q calc 1/0 || echo bad  no output; the exit code tells
  mqttapp ask upper hello              a user-defined operation a server offers
                                       (serve --exec 'upper=tr a-z A-Z'): HELLO
  mqttapp ask -v calc 1+1              also prints on stderr where the time went
  mqttapp ask -H traceparent=00-...-01 calc 1+1   sends a user property along
  mqttapp ask                          no operation: the interactive shell
  printf 'calc 1+2\\necho hi\\n' | mqttapp ask --batch   pipelined: prints 3 and hi
  mqttapp ask --all calc 1+1           every online server: one \"<server-id> 2\" line each
  mqttapp ask --all --replies 2 echo hi   stops after two servers answered
  echo 'run upper abc' | mqttapp ask --batch     user-defined operations: run NAME INPUT

Exit codes: 0 ok, 1 the server answered with an error, 2 usage or
configuration, 3 cannot connect, 4 authentication or authorization refused,
5 timeout, 6 no server online, 7 TLS failure; with --all: 0 every server
answered (1 if one answered with an error), 9 some did not, 6 none did.";

pub(super) const STATUS_HELP: &str = "Examples:
  mqttapp status
  mqttapp status --json

Exit codes: 0 at least one server is online, 6 none is, 3 cannot connect,
4 refused. A server that crashed shows \"offline\" (its MQTT will).";

pub(super) const DESCRIBE_HELP: &str = "Examples:
  mqttapp describe                      the operations online servers offer, and which servers
  mqttapp describe calc                 calc's fields, limits, examples and error codes
  mqttapp describe edit --json          the same as one JSON object

Only servers whose status is online are described (`mqttapp status`).
Exit codes: 0 described, 2 no online server offers the operation, 6 no
server online, 3 cannot connect, 4 refused.";

pub(super) const PING_HELP: &str = "Examples:
  mqttapp ping                      every online server once: id, instance, version, time
  mqttapp ping --count 3 --json     three rounds as JSON lines, then a summary per server
  mqttapp ping --wait 300ms         wait 300 ms for answers in each round

Exit codes: 0 some server answered, 6 none answered (see `mqttapp status` for
the retained statuses), 3/4/7 connection, authentication, TLS.";

pub(super) const DLQ_HELP: &str =
    "Runs on the server's host: it reads and rewrites the dead-letter store in
the server's data directory (--data-dir, MQTTAPP_DATA_DIR, as for serve).

Examples:
  mqttapp dlq list
  mqttapp dlq --data-dir /var/lib/mqttapp list --json
  mqttapp dlq replay srv1-1714550000000-0
  mqttapp dlq replay --all
  mqttapp dlq purge --all

Exit codes: 0 done, 2 unknown id, 3 cannot connect, 6 no server online
(replay), 10 the store cannot be read or written.";

/// What bare `mqttapp` prints: the commands and where to read more.
pub const SHORT_USAGE: &str = "mqttapp: request/response over MQTT 5 (calc, echo, edit)

Usage: mqttapp <COMMAND> [OPTIONS]

  serve        answer requests (start this first, next to your broker)
  ask          send one request: mqttapp ask calc 2+3
  shell        a prompt over one connection
  status       which servers are online
  describe     what the servers offer: mqttapp describe calc
  ping         a live round trip to every server
  dlq          requests a server could not answer
  bench        measure throughput and latency
  completions  print a shell completion script

Run `mqttapp --help` for the flags, `mqttapp <COMMAND> -h` for a command's.
";

pub(super) const CALC_HELP: &str = "Examples:
  mqttapp ask calc \"2+3*4\"              prints 14
  mqttapp ask calc 2^10 --json          prints {\"ok\":1024}
  mqttapp ask calc \"sqrt(2) * pi\" --timeout 2s

Powers are written ^ (2^3), not **. Errors name the 1-based character:
`mqttapp ask calc 2+)` says \"unexpected ')' (at character 3)\", exit 1.";

pub(super) const ECHO_HELP: &str = "Examples:
  mqttapp ask echo hello world          prints hello world
  mqttapp ask echo hi --json            prints {\"ok\":\"hi\"}
  mqttapp ask echo -- --json            prints --json (text after --)";

pub(super) const EDIT_HELP: &str = "Examples:
  mqttapp ask edit --line 3 new text    line 3 becomes \"new text\"
  mqttapp ask edit --append last line   adds a line at the end
  mqttapp ask edit --show --file todo.txt
  mqttapp ask edit --line 2 --expect-rev 4 fixed   refused (conflict) if the file changed";
