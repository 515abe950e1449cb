#!/usr/bin/env bash
# Run a command inside a QEMU guest booting the Debian kernel (which has ip_vs) over this machine's own
# root filesystem, with virtme-ng; exit with the command's exit status.
#
#   tests/kernel/guest.sh .venv/bin/python -m pytest -m kernel tests/kernel -p no:cacheprovider
#
# The guest sees the host's / read-only over 9p (cwd = the repo), with writable throw-away overlays on
# /etc /lib /home /opt /srv /usr /var /tmp; nothing written there reaches the host. It runs as root,
# without a TTY, with stdin at /dev/null. It installs nothing: a missing prerequisite exits 3 naming it.
#
# Exit status: the command's; 3 missing prerequisite; 124 timeout (GUEST_TIMEOUT); 255 guest died
# without reporting a status (kernel panic, OOM in the guest, ...).
#
# Environment: GUEST_TIMEOUT (s, default 2400), GUEST_MEMORY (default 1G), GUEST_CPUS (default 2),
# GUEST_VERBOSE=1 (show the kernel console), GUEST_VNG_OPTS (extra vng options, word-split).
# CI, PYTEST_ADDOPTS and LVSCONSOLE_* are passed into the guest.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo" || exit 2

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]   (run COMMAND inside the ip_vs kernel guest, from $repo)" >&2
  exit 2
fi

export PATH="$repo/.venv/bin:$PATH:/usr/sbin:/sbin"   # vng runs virtme-run from PATH

have() { local p; p=$(type -P "$1") && [ -f "$p" ] && [ -x "$p" ]; }
missing=()
have vng && have virtme-run || missing+=("pip package virtme-ng (in $repo/.venv: .venv/bin/pip install virtme-ng)")
have qemu-system-x86_64 || missing+=("apt package qemu-system-x86")
# the guest's initramfs (9p + virtio modules) is built around busybox, which must be static
have busybox && ! ldd "$(type -P busybox)" >/dev/null 2>&1 || missing+=("apt package busybox-static")
have modprobe && have depmod || missing+=("apt package kmod")

# The newest Debian kernel image whose modules include ip_vs.
kernel=""
while read -r img; do
  v=${img#/boot/vmlinuz-}
  if [ -r "$img" ] && compgen -G "/lib/modules/$v/kernel/net/netfilter/ipvs/ip_vs.ko*" >/dev/null; then
    kernel=$img
    break
  fi
done < <(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -rV)
[ -n "$kernel" ] || missing+=("apt package linux-image-amd64 (no /boot/vmlinuz-<ver> with /lib/modules/<ver>/.../ip_vs.ko)")

if [ ${#missing[@]} -gt 0 ]; then
  echo "guest.sh: cannot boot the kernel-test guest; missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "  (as root: apt-get install --no-install-recommends qemu-system-x86 linux-image-amd64 busybox-static kmod)" >&2
  exit 3
fi

# The guest cannot write bytecode (the repo is read-only there) and compiles every lvsconsole module it imports,
# in every Python process, under software emulation: ~30 s of an engine's ~75 s start. Compiled here in a few
# seconds, the guest reads the .pyc files instead (same interpreter; a source edited later is recompiled as usual).
host_python="$repo/.venv/bin/python"
[ -x "$host_python" ] || host_python=python3
"$host_python" -m compileall -q -j 0 "$repo/lvsconsole" >/dev/null 2>&1 \
  || echo "guest.sh: could not precompile lvsconsole (the guest compiles it instead, slower)" >&2

# The script run inside the guest: env, modules, then the command (quoted for bash with %q).
guest_script="export PYTHONDONTWRITEBYTECODE=1 HYPOTHESIS_STORAGE_DIRECTORY=/tmp/hypothesis"
for var in CI PYTEST_ADDOPTS ${!LVSCONSOLE_*}; do
  [ -n "${!var+x}" ] && guest_script+="; export $var=$(printf '%q' "${!var}")"
done
guest_script+="
echo \"guest.sh: kernel \$(uname -r) up, command starts at guest uptime \$(cut -d' ' -f1 /proc/uptime) s\" >&2
modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh || { echo 'guest.sh: modprobe ip_vs failed' >&2; exit 3; }
[ -e /proc/net/ip_vs ] || { echo 'guest.sh: /proc/net/ip_vs missing after modprobe' >&2; exit 3; }
$(printf '%q ' "$@")
exit \$?  # not exec: a command killed by a signal then exits 128+N instead of leaving no status"
# base64 keeps the kernel command line and the guest's /bin/sh away from any quoting.
b64=$(printf '%s' "$guest_script" | base64 -w0)

vng_opts=(--run "$kernel" --user root --disable-kvm --force-9p
          --memory "${GUEST_MEMORY:-1G}" --cpus "${GUEST_CPUS:-2}" --cwd "$repo")
[ "${GUEST_VERBOSE:-0}" = 1 ] && vng_opts+=(--verbose)
# shellcheck disable=SC2206
[ -n "${GUEST_VNG_OPTS:-}" ] && vng_opts+=(${GUEST_VNG_OPTS})

limit=${GUEST_TIMEOUT:-2400}
echo "guest.sh: booting $kernel (virtme-ng, TCG, ${GUEST_MEMORY:-1G}, timeout ${limit}s): $*" >&2
start=$(date +%s.%N)
# timeout signals its whole process group, so QEMU (vng's child) goes too; stdin never reaches QEMU.
# QEMU reopens /proc/self/fd/1 and /fd/2 for the guest's output: onto a regular file that truncates and
# overwrites (mangled logs under `> log 2>&1`), so its output always goes through a pipe (stderr merged).
timeout --kill-after=20 "$limit" vng "${vng_opts[@]}" \
  --exec "exec bash -c \"\$(echo $b64 | base64 -d)\" guest" </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
elapsed=$(awk "BEGIN{print $(date +%s.%N) - $start}")
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && awk "BEGIN{exit !($elapsed >= $limit)}"; then
  echo "guest.sh: TIMEOUT after ${limit}s (GUEST_TIMEOUT); guest killed" >&2
  rc=124
elif [ "$rc" -eq 255 ]; then
  echo "guest.sh: the guest ended without an exit status (kernel panic or guest OOM? rerun with GUEST_VERBOSE=1)" >&2
fi
printf 'guest.sh: exit %d after %.1f s in total\n' "$rc" "$elapsed" >&2
exit "$rc"
