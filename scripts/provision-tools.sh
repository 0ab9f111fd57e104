#!/usr/bin/env bash
# Fetches the real programs the tests run (cosign 2.x and 3.x, the CNCF
# distribution registry, crane) as Debian packages into .tools/, without root
# and without touching the system: apt-get with private lists and cache under
# .tools/apt, then dpkg -x. The mirror is the one this machine's apt already
# uses (scripts/apt-mirror.js), or CGG_DEBIAN_MIRROR. Reuses the cache when it
# is complete. Why these packages and versions: docs/TEST-TOOLS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/.tools
bin=$root/bin
want=("$bin/cosign3" "$bin/cosign2" "$bin/crane" "$bin/registry")
have=1; for f in "${want[@]}"; do [ -x "$f" ] || have=0; done
if [ "$have" = 1 ]; then echo "provision: test tools cached in .tools/bin"; exit 0; fi

d=$root/apt
mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/debs" "$bin"
mirror=$(node scripts/apt-mirror.js) || exit 1
echo "provision: Debian mirror $mirror (from this machine's apt sources; CGG_DEBIAN_MIRROR overrides)"
printf 'deb %s trixie main\ndeb %s sid main\ndeb %s bookworm main\n' "$mirror" "$mirror" "$mirror" > "$d/sources.list"
O=(-o "Dir::Etc::sourcelist=$d/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o "APT::Sandbox::User=root")
echo "provision: apt-get update (private lists under .tools/apt)"
apt-get "${O[@]}" update -qq
rm -f "$d/debs"/*.deb
(cd "$d/debs" && apt-get "${O[@]}" download -qq cosign crane docker-registry && apt-get "${O[@]}" download -qq cosign=2.5.0-2+b5)
for f in "$d/debs"/*.deb; do
  echo "provision: $(dpkg-deb -f "$f" Package) $(dpkg-deb -f "$f" Version)"
  dest=$root/root-$(basename "$f" .deb)
  rm -rf "$dest"; dpkg -x "$f" "$dest"
done
c2=$(ls -d "$root"/root-cosign_2.* | head -1)
c3=$(ls -d "$root"/root-cosign_3.* | head -1)
cr=$(ls -d "$root"/root-crane_* | head -1)
rg=$(ls -d "$root"/root-docker-registry_* | head -1)
ln -sf "$c2/usr/bin/cosign" "$bin/cosign2"
ln -sf "$c3/usr/bin/cosign" "$bin/cosign3"
ln -sf "$cr/usr/bin/crane" "$bin/crane"
ln -sf "$rg/usr/bin/docker-registry" "$bin/registry"
for f in "${want[@]}"; do [ -x "$f" ] || { echo "provision: missing $f" >&2; exit 1; }; done
echo "provision: done"
