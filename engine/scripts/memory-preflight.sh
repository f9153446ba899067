#!/bin/sh
# irf memory preflight
set -u
proc=/proc; sys=/sys
kernel="$(cat "$proc/sys/kernel/osrelease" 2>/dev/null || uname -r)"
arch="$(uname -m)"
kcore=false; [ -r "$proc/kcore" ] && kcore=true
lockdown="$(sed -n 's/.*\[\([a-z]*\)\].*/\1/p' "$sys/kernel/security/lockdown" 2>/dev/null)"
mem_kib="$(awk '/^MemTotal:/ {print $2}' "$proc/meminfo" 2>/dev/null)"
ram_bytes=0; ranges=0
while IFS= read -r line; do
  case "$line" in
    " "*) ;;
    *" : System RAM")
      # POSIX sh has no base#number arithmetic (dash, Ubuntu's sh, refuses it): printf reads
      # the hex as a C constant.
      r="${line%% : *}"; s=$(printf '%d' "0x${r%-*}"); e=$(printf '%d' "0x${r#*-}")
      ram_bytes=$((ram_bytes + e - s + 1)); ranges=$((ranges + 1)) ;;
  esac
done < "$proc/iomem"
curl_ok=false; command -v curl >/dev/null 2>&1 && curl_ok=true
printf '{"kernel":"%s","arch":"%s","kcore_readable":%s,"lockdown":"%s","mem_total_kib":%s,"ram_bytes":%s,"ram_ranges":%s,"curl":%s}\n' \
  "$kernel" "$arch" "$kcore" "${lockdown:-none}" "${mem_kib:-0}" "$ram_bytes" "$ranges" "$curl_ok"
