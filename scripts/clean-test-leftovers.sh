#!/usr/bin/env bash
# Removes what an interrupted test or benchmark run can leave behind (a killed test process cannot
# clean up after itself): sandboxes whose runsc root is a temporary state directory made by the
# tests or benches, their network namespaces, and the directories. Touches nothing else.
set -uo pipefail
RUNSC=${FAAS_RUNSC:-${FAAS_CACHE_DIR:-/var/cache/faas}/bin/runsc}
for dir in /tmp/faas-test-* /tmp/faas-crash-* /tmp/faas-bench-* /tmp/faas-bare-*; do
  [ -d "$dir" ] || continue
  root="$dir/runsc"; [ -d "$dir/root" ] && root="$dir/root"
  if [ -x "$RUNSC" ] && [ -d "$root" ]; then
    for id in $("$RUNSC" --root="$root" list -q 2>/dev/null); do "$RUNSC" --root="$root" delete --force "$id" >/dev/null 2>&1; done
  fi
  pkill -9 -f -- "--root=$root" 2>/dev/null
  umount -l "$root/null-netns" 2>/dev/null
  rm -rf "$dir"
done
# Namespaces of test engines (tags t…/k…/b…) and of the bare-runsc floor.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(faas-[tkb][a-z0-9]+-[0-9]+|fbare-[0-9]+-[0-9]+)$'); do
  ip netns del "$ns" 2>/dev/null
done
# Firewall chains of test engines (FAAS-<tag>-*, tags t…/k…/b…): engines run as child processes by
# the crash, kill and abuse tests are killed, not cleaned, so their chains stay behind otherwise.
# The engine's own Firewall.remove() takes them out (IPv4 and IPv6, jumps first).
FIREWALL_JS="$(dirname "$0")/../engine/dist/src/network/firewall.js"
if [ -f "$FIREWALL_JS" ]; then
  tags=$( { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | sed -n 's/^:FAAS-\([tkb][a-z0-9]*\)-[A-Z]* .*/\1/p' | sort -u)
  for tag in $tags; do
    # A real engine's default tag is 4 hex digits of its state dir's hash: never one of those.
    [[ "$tag" =~ ^[0-9a-f]{4}$ ]] && continue
    node --input-type=module -e "const m = await import('$(realpath "$FIREWALL_JS")'); await new m.Firewall({ tag: '$tag', subnet: '10.210.0.0/16' }).remove();" 2>/dev/null
  done
fi
# Parent cgroups of engines that are gone (each engine makes faas-<tag> in every controller); the
# kernel refuses to remove one that still holds a process, so only empty ones go.
# Depth first: sandbox cgroups a killed engine left under them go first.
for d in /sys/fs/cgroup/*/faas-*; do
  [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
done
exit 0
