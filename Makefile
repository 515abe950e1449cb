# Two entry points for a fresh clone: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Debian packages the test tiers use: keepalived (real VRRP peer, sample configs, bench anchor),
# ipvsadm (listing reference), iproute2 (namespaces), tmux (TUI end-to-end), tcpdump + tshark (the wire
# decode of our adverts), gcc + libnl-genl-3-dev
# (the netlink stand-in that lets the real ipvsadm list our tables in tests/unit/test_ipvs_listing.py).
# The kernel tier boots Debian's kernel (which has ip_vs) in QEMU: qemu-system-x86, linux-image-amd64,
# busybox-static, kmod (see tests/kernel/guest.sh).
DEB_PACKAGES := keepalived ipvsadm iproute2 tmux tcpdump tshark gcc libc6-dev libnl-genl-3-dev \
	qemu-system-x86 linux-image-amd64 busybox-static kmod

# The kernel tier: tests/kernel, plus host-tier tests that also need modules this host lacks (marked kernel).
KERNEL_TESTS := tests/kernel tests/netns/test_realserver.py

.PHONY: demo test venv deps-system lint unit fuzz kernel bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# As root, install the Debian packages the tiers need (only those missing, so a warm machine pays nothing).
deps-system:
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else echo "not root: skipping Debian packages ($(DEB_PACKAGES)); tiers needing them will skip"; fi

lint: venv
	$(VENV)/bin/ruff check lvsconsole tests bench
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest tests/unit -q

# The slowest property tests with their full example counts (`make test` runs a share of them: tests/unit/_fuzz.py).
fuzz: venv
	LVSCONSOLE_FUZZ=1 $(PY) -m pytest tests/unit/test_config_roundtrip.py tests/unit/test_config_fuzz.py \
		tests/unit/test_lexer.py tests/unit/test_config_incremental.py -q -p no:cacheprovider --durations=10

# Host tiers first (unit, netns, tui), then one QEMU boot for the kernel tier. Locally, a kernel tier
# that cannot boot (guest.sh exit 3: prerequisites missing) is reported and skipped; under CI it fails.
test: deps-system venv lint
	$(PY) -m pytest -q -m "not kernel" --durations=15
	@status=0; bash tests/kernel/guest.sh $(PY) -m pytest -q -m kernel $(KERNEL_TESTS) -p no:cacheprovider --durations=15 || status=$$?; \
	if [ $$status = 3 ] && [ "$$CI" != "true" ]; then echo "kernel tier SKIPPED: guest prerequisites missing (see above)"; \
	elif [ $$status != 0 ]; then echo "kernel tier FAILED (exit $$status)"; exit $$status; fi

kernel: venv
	bash tests/kernel/guest.sh $(PY) -m pytest -q -m kernel $(KERNEL_TESTS) -p no:cacheprovider

demo: venv
	$(VENV)/bin/lvsconsole demo

bench: venv
	$(PY) bench/config_parse.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
