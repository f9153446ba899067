#!/bin/sh
# irf memory capture: fetches the capture tool and its plan from pre-signed URLs, checks the
# tool's SHA-256, and streams memory to the evidence bucket. Run after the assignments of
# tool_url, tool_sha256 and plan_url (capture_script in memory.rs writes them).
# shellcheck disable=SC2154 # tool_url, tool_sha256 and plan_url are assigned before this
set -eu
umask 077
work="$(mktemp -d -p /dev/shm irf.XXXXXX 2>/dev/null || mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl -fsS --retry 3 -o "$work/irf-memcap" "$tool_url"
echo "$tool_sha256  $work/irf-memcap" | sha256sum -c --quiet -
chmod 0700 "$work/irf-memcap"
curl -fsS --retry 3 -o "$work/plan.json" "$plan_url"
"$work/irf-memcap" memcap --source /proc/kcore --iomem /proc/iomem --plan "$work/plan.json"
