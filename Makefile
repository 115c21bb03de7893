# ward build and test entry points. Tests run real containers: `make test` needs root.
PREFIX ?= /usr/local
CARGO ?= cargo

.PHONY: build test test-v2 conformance demo integration bench install clean

build:
	$(CARGO) build --release

test:
	@test "$$(id -u)" -eq 0 || { echo "make test runs containers and must run as root" >&2; exit 1; }
	$(CARGO) test

# cgroup v2 resource limits, proven in a throwaway qemu VM (pure v2, no network); see integration/vm/README.md.
# RUNTIME=runc checks the test scripts against runc; WARD=path uses a prebuilt ward.
test-v2:
	integration/vm/run.sh

conformance:
	$(CARGO) test --test conformance

demo: build
	integration/demo.sh

integration:
	@if [ -x integration/run.sh ]; then integration/run.sh; \
	else echo "integration: no integration/run.sh yet (planned: containerd/docker end-to-end runs with ward as the runtime); nothing run"; fi

bench: build
	integration/bench.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 target/release/ward $(DESTDIR)$(PREFIX)/bin/ward

clean:
	$(CARGO) clean
	rm -rf .work
