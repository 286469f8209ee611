#!/usr/bin/env bash
# The system tools the tests use beside the toolchain: xz and gzip (compressed
# recordings) and trace-cmd (the .dat path). Installs what is missing with apt-get
# (Debian), and mounts tracefs; prints what it could not do and carries on: the tests that need a
# missing tool say so and skip.
set -u
# The live-recording tests need tracefs at /sys/kernel/tracing (they skip, saying so,
# without it). Mount it when root and it is not mounted (it is not automounted on every
# boot of these VMs: one CI run here skipped those tests for that alone).
if [ "$(id -u)" = 0 ] && [ -d /sys/kernel/tracing ] && ! [ -e /sys/kernel/tracing/instances ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null \
    || echo "could not mount tracefs at /sys/kernel/tracing: the live-recording tests will skip" >&2
fi
missing=()
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
command -v trace-cmd >/dev/null 2>&1 || missing+=(trace-cmd)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || echo "could not install ${missing[*]}: the tests that need them will skip" >&2
else
  echo "not installed (and no root apt-get here): ${missing[*]}; the tests that need them will skip" >&2
fi
exit 0
