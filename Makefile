# mqttapp: `make run` and `make test` work on a fresh Debian machine.
# Everything the project needs is installed by `make setup`.

SHELL := /bin/bash
CARGO ?= cargo
BIN := target/release/mqttapp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
MOSQUITTO = $(shell command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)
DATA_DIR ?= run/data

.PHONY: help setup build broker broker-stop run test check demo bench install clean man examples fuzz \
	cluster-install cluster cluster-stop bench-cluster deb deb-tools

help:
	@echo "make run     install what is missing, build, start a local broker, run the server"
	@echo "make test    install what is missing and run all tests (real Mosquitto, real binary)"
	@echo "make demo    broker + server in the background, four example requests, stop both"
	@echo "make check   cargo fmt --check, clippy -D warnings, all tests"
	@echo "make broker / broker-stop   the local Mosquitto (config/mosquitto.conf, state in run/)"
	@echo "make cluster / cluster-stop   a 2-node rmqtt cluster on loopback (config/rmqtt, NODES=3 for three; RMQTTD=path)"
	@echo "make cluster-install   rmqttd into .tools/rmqtt unless found (cargo install, about 20 min)"
	@echo "make bench-cluster   requests/s, lost and duplicated for 1/2/4 group members on Mosquitto and the cluster"
	@echo "make bench   speed figures as ratios against references measured in the same run (docs/BENCHMARKS.md)"
	@echo "make install put mqttapp on PATH (cargo install --path .)"
	@echo "make deb     Debian package with the systemd unit into target/debian (cargo-deb, installed when missing)"
	@echo "make man     man pages into target/man (man -l target/man/mqttapp.1)"
	@echo "make examples run every script in examples/ against a real broker and server"
	@echo "make fuzz    fuzz the request decoder and the calc parser, FUZZ_SECONDS each (nightly + cargo-fuzz; not in CI)"

# Debian packages: cmake builds the bundled Paho C; perl and make build the
# OpenSSL compiled into the binary (openssl-src: no libssl to load at each
# start); mosquitto is the broker, mosquitto-clients has mosquitto_rr for
# interop tests, openssl makes the test certificates; protobuf-compiler
# builds rmqttd (the cluster tests, when MQTTAPP_REQUIRE_CLUSTER is set).
setup:
	@missing=""; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v make >/dev/null || missing="$$missing make"; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	perl -MIPC::Cmd -MFindBin -MFile::Compare -e1 2>/dev/null || missing="$$missing perl"; \
	[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing="$$missing mosquitto"; \
	command -v mosquitto_rr >/dev/null || missing="$$missing mosquitto-clients"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v xz >/dev/null || missing="$$missing xz-utils"; \
	command -v strip >/dev/null || missing="$$missing binutils"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	[ -z "$$MQTTAPP_REQUIRE_CLUSTER" ] || command -v protoc >/dev/null || missing="$$missing protobuf-compiler"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs"; exit 1; }
	@# examples/python_client.py: paho-mqtt and cbor2 from PyPI (Debian's
	@# python marks itself externally managed: then --break-system-packages).
	@python3 -c 'import paho.mqtt.client, cbor2' 2>/dev/null || { \
		echo "installing python packages: paho-mqtt cbor2"; \
		export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore; \
		python3 -m pip install -q paho-mqtt cbor2 2>/dev/null \
		|| python3 -m pip install -q --break-system-packages paho-mqtt cbor2; }

build: setup
	$(CARGO) build --release --locked

broker: setup
	@mkdir -p run
	@if [ -f run/mosquitto.pid ] && kill -0 "$$(cat run/mosquitto.pid)" 2>/dev/null; then \
		echo "broker already running (pid $$(cat run/mosquitto.pid)) on mqtt://127.0.0.1:1883"; \
	else \
		$(MOSQUITTO) -c config/mosquitto.conf -d || { tail -5 run/mosquitto.log; exit 1; }; \
		for i in $$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done; \
		echo "broker running on mqtt://127.0.0.1:1883 (pid $$(cat run/mosquitto.pid), log run/mosquitto.log)"; \
	fi

broker-stop:
	@if [ -f run/mosquitto.pid ] && kill "$$(cat run/mosquitto.pid)" 2>/dev/null; then echo "broker stopped"; fi
	@rm -f run/mosquitto.pid

run: build broker
	$(BIN) serve --data-dir $(DATA_DIR)

# With MQTTAPP_REQUIRE_CLUSTER set (CI), rmqttd is installed first and the
# cluster tests (tests/cluster.rs) fail instead of skipping without it.
test: setup deb-tools
	@if [ -n "$$MQTTAPP_REQUIRE_CLUSTER" ]; then scripts/cluster.sh install; fi
	$(CARGO) test --locked

check: setup deb-tools
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) test --locked --test layers
	$(CARGO) test --locked

demo: build broker
	@mkdir -p run; \
	$(BIN) serve --data-dir run/demo-data --server-id demo >run/demo-serve.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; $(MAKE) -s broker-stop' EXIT; \
	for i in $$(seq 100); do grep -q serving run/demo-serve.log && break; sleep 0.1; done; \
	set -x; \
	$(BIN) ask calc "2+3*4"; \
	$(BIN) ask echo hello; \
	$(BIN) ask edit --line 3 "text"; \
	$(BIN) ask edit --show

# Man pages from the clap definitions (examples/gen_man.rs), never committed.
man:
	$(CARGO) run --locked --quiet --example gen_man -- target/man

# examples/*.sh and examples/python_client.py against a real broker and
# server, each with its own Mosquitto on a free port (tests/examples.rs).
examples: setup
	$(CARGO) test --locked --test examples

# Starts its own broker on a free port; about 2-3 minutes.
bench: setup
	$(CARGO) build --release --locked --example bare_echo
	$(CARGO) bench --locked --bench suite

# Fuzzing is not part of `make test` (which runs the targets over their seed
# corpus, tests/fuzz_corpus.rs). libFuzzer needs a nightly toolchain;
# finds go to fuzz/run-corpus/ (ignored), crashes to fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := decode_request calc_parser
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/run-corpus/$$t; \
		echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
		$(CARGO) +nightly fuzz run $$t fuzz/run-corpus/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

# rmqttd (an MQTT 5 broker that clusters) from crates.io into .tools/rmqtt,
# unless $$RMQTTD, PATH or .tools has one; its build needs protoc.
cluster-install: setup
	@scripts/cluster.sh install

# NODES nodes (default 2): MQTT on 127.0.0.1:1884N, state in run/cluster.
cluster: cluster-install
	@scripts/cluster.sh start

cluster-stop:
	@scripts/cluster.sh stop

# Release build; its own Mosquitto and cluster on free ports; a few minutes.
bench-cluster: cluster-install
	$(CARGO) build --release --locked
	scripts/bench-groups.sh

# The Debian package (scripts/deb.sh, [package.metadata.deb] in Cargo.toml):
# release build, man pages, completions, the systemd unit, the config.
deb: setup deb-tools
	scripts/deb.sh

# cargo-deb, pinned; tests/service.rs packages with it. Built without its
# own xz (it then runs xz-utils' xz) and unoptimised (--debug): half the
# CPU time of a default install (54 s against 134 s) and it packages as
# fast, since its work is strip and xz.
CARGO_DEB_VERSION := 3.8.0
deb-tools:
	@cargo-deb --version 2>/dev/null | grep -qF ' $(CARGO_DEB_VERSION)' || { \
		echo "installing cargo-deb $(CARGO_DEB_VERSION)"; \
		$(CARGO) install --locked --quiet --debug --no-default-features \
			--version $(CARGO_DEB_VERSION) cargo-deb; }

install: build
	$(CARGO) install --locked --path .

clean: broker-stop cluster-stop
	$(CARGO) clean
	rm -rf run
