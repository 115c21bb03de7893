# ward build and test entry points. Tests run real containers: `make test` needs root.
PREFIX ?= /usr/local
CARGO ?= cargo

.PHONY: build cri-test-path lint test test-release test-v2 test-systemd conformance demo integration integration-engines integration-cri integration-churn bench flamegraph bench-egress install clean check-platforms egress-lab egress-e2e test-sandbox fuzz

# The release binary links glibc statically (static-pie, as runc's releases are static): ward
# starts four times per container cycle (create, its CVE-2019-5736 re-exec, start, delete), and
# a dynamic start maps three shared libraries and binds every imported symbol (BIND_NOW) before
# main; static, `ward state` runs 32% fewer instructions (callgrind). Still position-independent
# (ASLR) with full RELRO. rustc takes crt-static only with an explicit --target (proc macros
# must stay dynamic), so cargo writes target/<triple>/release/ward and `build` copies it to
# target/release/ward, the path every script uses. Elsewhere than *-linux-gnu: cargo's default.
# A weak symbol of std's (std falls back to a syscall when glibc lacks it) stays unresolved in a
# static link unless something pulls it in, so ward's own calls to one would jump to 0: the
# check after the build names any such call. dlsym finds nothing in a static binary, and the
# getrandom crate (hickory's rand) looks glibc's getrandom up with it, then falls back to
# /dev/urandom, which the egress proxy's Landlock refuses: the cfg makes it call getrandom.
# `make test-release` runs the conformance suite against this binary.
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
ifneq ($(filter %-linux-gnu,$(HOST_TRIPLE)),)
RELEASE_ENV := RUSTFLAGS="$(RUSTFLAGS) -C target-feature=+crt-static -C link-arg=-Wl,--undefined=statx --cfg getrandom_backend=\"linux_getrandom\""
RELEASE_ARGS := --release --target $(HOST_TRIPLE)
RELEASE_DIR := target/$(HOST_TRIPLE)/release
else
RELEASE_ENV :=
RELEASE_ARGS := --release
RELEASE_DIR := target/release
endif

build:
	$(RELEASE_ENV) $(CARGO) build $(RELEASE_ARGS)
	@if [ "$(RELEASE_DIR)" != target/release ]; then \
		mkdir -p target/release && cp -f $(RELEASE_DIR)/ward target/release/.ward.new && \
		mv -f target/release/.ward.new target/release/ward; \
		for s in $$(nm target/release/ward | awk '$$1 == "w" && $$2 !~ /^_/ {print $$2}'); do \
			if grep -rqE "libc::$$s\(" src; then \
				echo "build: ward calls $$s, which the static link leaves unresolved (add -Wl,--undefined=$$s)" >&2; exit 1; \
			fi; \
		done; \
	fi

# The CRI test client, built as `integration-cri` builds it (with ward beside it); prints the
# test executable's path (integration/systemd-vm runs it in the VM).
cri-test-path:
	@$(RELEASE_ENV) $(CARGO) test $(RELEASE_ARGS) --features cri --test cri --no-run --message-format=json | \
		sed -n 's/.*"target":{[^}]*"name":"cri".*"executable":"\([^"]*\)".*/\1/p' | tail -n1

# Formatting and clippy (warnings are errors), the CRI test client included; then the layers:
# tests/layers.rs reads the crate::/super:: paths of src/ and fails on an import a layer may
# not make and on any import cycle between modules (top level and within every folder).
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --features cri -- -D warnings
	$(CARGO) test --test layers

# The cgroup tests share an empty parent, /ward-test, in every hierarchy; it goes when the suite
# ends (a test cannot remove it: another may be creating a cgroup in it at that moment).
test:
	@test "$$(id -u)" -eq 0 || { echo "make test runs containers and must run as root" >&2; exit 1; }
	$(CARGO) test; status=$$?; \
	for d in /sys/fs/cgroup/*/ward-test /sys/fs/cgroup/ward-test; do [ -d "$$d" ] && rmdir "$$d" 2>/dev/null; done; \
	exit $$status

# The conformance suite again, against the release binary (`make build`'s static PIE) instead of
# cargo's debug one: a static link changes what glibc finds at run time (dlsym, NSS), which only
# running that binary shows. (Hooks some tests install are still cargo's ward.)
test-release: build
	@test "$$(id -u)" -eq 0 || { echo "make test-release runs containers and must run as root" >&2; exit 1; }
	WARD_RUNTIME=$(CURDIR)/target/release/ward $(CARGO) test --test conformance; status=$$?; \
	for d in /sys/fs/cgroup/*/ward-test /sys/fs/cgroup/ward-test; do [ -d "$$d" ] && rmdir "$$d" 2>/dev/null; done; \
	exit $$status

# cgroup v2 resource limits, proven in a throwaway qemu VM (pure v2, no network); see integration/vm/README.md.
# RUNTIME=runc checks the test scripts against runc; WARD=path uses a prebuilt ward.
test-v2:
	integration/vm/run.sh

# Issue 21: every fuzz target (the `fuzz_*` tests, src/fuzzkit.rs: config.json, seccomp,
# Landlock, egress and http rules, credentials, srt settings and globs, the proxy's HTTP, TLS
# SNI, DNS, SOCKS5 and path parsers) with FUZZ_CASES cases each, in a release build of the
# library's tests; no root, no containers. One line per target (cases, seconds, failures), the
# whole log in target/fuzz.log; non-zero on any failure. `cargo test` runs the same targets
# with WARD_FUZZ_CASES' default. FUZZ_SEED=n varies the run; FUZZ_THREADS=2 halves the time
# (the per-target seconds then include sharing the cores). The test binary wants speed, not
# size: no LTO, parallel codegen (the release binary's settings would link for minutes).
FUZZ_CASES ?= 1000000
FUZZ_THREADS ?= 1
fuzz:
	@log=$(CURDIR)/target/fuzz.log; mkdir -p $(CURDIR)/target; \
	echo "make fuzz: $(FUZZ_CASES) cases per target; log in $$log"; \
	CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	WARD_FUZZ_CASES=$(FUZZ_CASES) $(if $(FUZZ_SEED),WARD_FUZZ_SEED=$(FUZZ_SEED)) \
	$(CARGO) test --release --lib fuzz_ -- --nocapture --test-threads=$(FUZZ_THREADS) >$$log 2>&1; \
	status=$$?; \
	printf '%-22s %10s %9s %9s  %s\n' target cases seconds failures "slowest call"; \
	sed -n 's/.*fuzz \([^:]*\): \([0-9]*\) cases, \([0-9.]*\) s, \([0-9]*\) failures, slowest call \([^,]*\),.*/\1 \2 \3 \4 \5/p' $$log | \
		while read -r t n sec f slow; do printf '%-22s %10s %9s %9s  %s\n' "$$t" "$$n" "$$sec" "$$f" "$$slow"; done; \
	grep -a '^test result' $$log; \
	if [ $$status -ne 0 ]; then grep -a -E 'panicked|failed \(replay|did not return' $$log | head -40; \
		echo "make fuzz: FAILED (exit $$status); see $$log" >&2; exit $$status; fi

# The systemd cgroup driver (--systemd-cgroup), proven in a qemu VM that boots systemd as PID 1 on
# pure cgroup v2; see integration/systemd-vm/README.md. RUNTIME=runc|ward (default ward, built
# --release, with the CRI test client); WARD=path CRI_TEST=path use prebuilt ones. In .ci/run.
RUNTIME ?= ward
test-systemd:
	RUNTIME=$(RUNTIME) integration/systemd-vm/run.sh

conformance:
	$(CARGO) test --test conformance

demo: build
	integration/demo.sh

# containerd (ctr) and Docker, then Kubernetes RuntimeClass through containerd's CRI plugin.
integration: integration-engines integration-cri integration-churn

integration-engines:
	integration/run.sh

# Issue 21's churn: 1,000 containers (8 at a time; every 10th with an egress policy) created,
# started, exec'd into and deleted by ward's CLI, with what could leak counted before and after
# (mounts, cgroups, state dirs, BPF programs and links, netns, processes, listening sockets):
# zero growth. (200 `docker run --rm` with the same counts: integration/run.sh, docker-churn.)
integration-churn:
	@test "$$(id -u)" -eq 0 || { echo "make integration-churn runs containers and must run as root" >&2; exit 1; }
	@if [ -z "$(WARD)" ]; then $(MAKE) --no-print-directory build; fi
	WARD=$(if $(WARD),$(WARD),$(CURDIR)/target/release/ward) integration/churn.sh

# Kubernetes RuntimeClass end to end: our own containerd (CRI plugin) with handlers ward and runc,
# driven over the CRI gRPC API; see integration/cri/README.md. Needs root, containerd, ctr, runc, protoc.
integration-cri:
	@test "$$(id -u)" -eq 0 || { echo "make integration-cri runs containers and must run as root" >&2; exit 1; }
	WARD_CRI_REQUIRE=1 $(RELEASE_ENV) $(CARGO) test $(RELEASE_ARGS) --features cri --test cri -- --test-threads=1

# The local lab issue 16's egress tests run in (origins + test CA, their DNS, a client namespace),
# brought up, proven and torn down by its self-test; not part of `make test` or CI yet.
# See integration/egress/README.md. Needs root, iproute2, openssl, dnsmasq-base, curl, python3.
egress-lab:
	@test "$$(id -u)" -eq 0 || { echo "make egress-lab builds network namespaces and must run as root" >&2; exit 1; }
	integration/egress/selftest.sh

# Issue 16's end-to-end proof: containers in the lab (its own suffix), curl/urllib/raw clients
# inside, ward's proxy and wall between them and the origins; columns: no policy (baseline),
# ward, runc with the hook. Then e2e_creds.sh (issue 17: path rules over TLS, credentials). Always
# tears down; non-zero on any failure of either. WARD=path skips the build.
egress-e2e:
	@test "$$(id -u)" -eq 0 || { echo "make egress-e2e runs containers in network namespaces and must run as root" >&2; exit 1; }
	@if [ -z "$(WARD)" ]; then $(MAKE) --no-print-directory build; fi
	@w=$(if $(WARD),$(WARD),$(CURDIR)/target/release/ward); \
	WARD=$$w integration/egress/e2e.sh; a=$$?; \
	WARD=$$w integration/egress/e2e_creds.sh; b=$$?; \
	echo "egress-e2e: e2e.sh exit $$a, e2e_creds.sh exit $$b"; [ $$a -eq 0 ] && [ $$b -eq 0 ]

# Issue 18's proof of `ward sandbox`, as the unprivileged user ward-sb: setup.sh (bubblewrap,
# socat, tmux, srt from the npm registry, the user; idempotent), then ward.sh (ward alone: a
# terminal through tmux, signals, exit statuses, walls inherited, flags, violations, nothing left
# behind) and sidebyside.sh (srt and ward on one settings file). Each brings up its own egress
# lab. Non-zero on any failure of either; WARD=path skips the build. See integration/sandbox/README.md.
test-sandbox:
	@test "$$(id -u)" -eq 0 || { echo "make test-sandbox runs cases as another user and an egress lab: run as root" >&2; exit 1; }
	integration/sandbox/setup.sh
	@if [ -z "$(WARD)" ]; then $(MAKE) --no-print-directory build; fi
	@w=$(if $(WARD),$(WARD),$(CURDIR)/target/release/ward); \
	WARD=$$w integration/sandbox/ward.sh; a=$$?; \
	WARD=$$w integration/sandbox/sidebyside.sh; b=$$?; \
	echo "test-sandbox: ward.sh exit $$a, sidebyside.sh exit $$b"; [ $$a -eq 0 ] && [ $$b -eq 0 ]

# macOS and Windows: cargo check of the library, the binary and the tests (nothing is linked, so
# no macOS SDK or MinGW is needed). A target whose rust-std is missing is skipped with a message,
# or fails the check when CI=true.
PLATFORM_TARGETS ?= x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu

check-platforms:
	@installed="$$(rustup target list --installed 2>/dev/null)"; \
	for t in $(PLATFORM_TARGETS); do \
		if ! printf '%s\n' "$$installed" | grep -qx "$$t"; then \
			echo "check-platforms: rust-std for $$t is not installed (rustup target add $$t)" >&2; \
			if [ "$$CI" = true ]; then exit 1; fi; \
			echo "check-platforms: skipping $$t" >&2; continue; \
		fi; \
		echo "check-platforms: $$t"; \
		$(CARGO) check --target $$t --all-targets || exit 1; \
	done

bench: build
	integration/bench.sh
	WARD=$(CURDIR)/target/release/ward integration/vm/bench.sh
	integration/egress/bench.sh
	integration/sandbox/bench.sh

# Egress by domain name alone (issue 16): ward's proxy vs direct vs tinyproxy in the egress lab.
# Root; waits for another lab on this machine to go down (up to 10 minutes).
# Where a container cycle spends its time: bench/cycle-flamegraph.svg (needs perf and inferno:
# cargo install inferno).
flamegraph: build
	integration/flamegraph.sh

bench-egress: build
	integration/egress/bench.sh

# The binary, its man pages (section 8, as runc's) and shell completions, all generated from
# the clap definitions by the installed binary itself.
WARD_BIN ?= target/release/ward
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(WARD_BIN) $(DESTDIR)$(PREFIX)/bin/ward
	$(WARD_BIN) man $(DESTDIR)$(PREFIX)/share/man/man8
	$(WARD_BIN) completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/ward
	$(WARD_BIN) completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_ward
	$(WARD_BIN) completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/ward.fish

clean:
	$(CARGO) clean
	rm -rf .work
