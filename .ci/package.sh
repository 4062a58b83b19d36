#!/usr/bin/env bash
# Build the .deb as a release would, install it on this machine, check what
# an operator relies on, and remove it. Needs root and a Debian system
# (dpkg); .ci/run calls it, and it runs alone: sudo .ci/package.sh
#
#   1. a static snapdiag (CGO_ENABLED=0) with the version in -ldflags
#   2. deploy/stage.sh: units, examples, licence, completions, man pages
#      (from a snapdiag it builds with -tags mangen), all in the .deb
#   3. the .deb from deploy/nfpm.yaml with nfpm (pinned, from the Go module
#      proxy; no goreleaser needed)
#   4. dpkg -i; /usr/bin/snapdiag version and --version print the version;
#      systemd-analyze verify passes on the installed units and on the
#      example drop-ins; /var/lib/snapdiag is 0700; the bash completion loads
#   5. dpkg -r; on a failed check the package is removed all the same
#
#   VERSION  the package version (default 0.0.0-ci)
#
# With --build-only it stops after step 3 and prints the .deb's path
# (.ci/systemd.sh installs that .deb in a booted systemd container instead).
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=v2.48.0
version=${VERSION:-0.0.0-ci}
start=$EPOCHREALTIME
step() { awk -v t="$EPOCHREALTIME" -v s="$start" -v m="$*" 'BEGIN { printf "package: %5.1fs  %s\n", t - s, m }'; }
fail() { echo "package: FAIL: $*" >&2; exit 1; }

build_only=no
[ "${1:-}" = --build-only ] && build_only=yes

if [ "$build_only" = no ]; then
  [ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
  command -v dpkg >/dev/null || fail "needs dpkg (a Debian system)"
  # It removes what it installs: never an operator's own snapdiag package.
  if [[ "$(dpkg-query -W -f='${Status}' snapdiag 2>/dev/null)" == *"ok installed" ]]; then
    fail "a snapdiag package is installed here; remove it first (dpkg -r snapdiag)"
  fi
  need=()
  command -v systemd-analyze >/dev/null || need+=(systemd)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

step "build static snapdiag $version"
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
  -o build/snapdiag ./cmd/snapdiag
grep -q 'CGO_ENABLED=0' <<<"$(go version -m build/snapdiag)" || fail "build/snapdiag is not a static (CGO_ENABLED=0) build"

step "stage units, completions, man pages"
deploy/stage.sh build/snapdiag
man=yes

step "nfpm $NFPM_VERSION: .deb"
rm -f build/*.deb
SNAPDIAG_BIN=build/snapdiag VERSION=$version GOARCH=$(go env GOARCH) \
  go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" \
  pkg --config deploy/nfpm.yaml --packager deb --target build/
deb=$(ls build/snapdiag_*.deb)
# snapdiag selftest creates its namespaces with iproute2's ip.
[[ "$(dpkg-deb -f "$deb" Recommends)" == *iproute2* ]] || fail "$deb does not recommend iproute2 (snapdiag selftest runs ip)"
# The shipped alert rules, where a Prometheus config's rule_files can name
# them.
rules=/usr/share/snapdiag/prometheus/snapdiag.rules.yml
# The listing goes through a variable: grep -q exits at its first match, and
# under pipefail dpkg-deb's SIGPIPE would fail the check that just passed.
listing=$(dpkg-deb -c "$deb")
grep -q " \.$rules\$" <<<"$listing" || fail "$deb does not install $rules"
# The man pages, which deploy/stage.sh generates with a snapdiag built with
# -tags mangen (build/snapdiag has no generator).
for page in snapdiag snapdiag-capture snapdiag-watch snapdiag-push; do
  grep -q " \./usr/share/man/man1/$page\.1\.gz\$" <<<"$listing" || fail "$deb does not install the $page(1) man page"
done
if [ "$build_only" = yes ]; then
  echo "$deb"
  exit 0
fi

step "dpkg -i $deb"
dpkg -i "$deb" >/dev/null
trap 'dpkg --purge snapdiag >/dev/null || true' EXIT

step "installed: version"
out=$(/usr/bin/snapdiag version)
flag=$(/usr/bin/snapdiag --version)
echo "$out"
[ "$out" = "$flag" ] || fail "snapdiag --version printed \"$flag\", snapdiag version \"$out\""
[ "$(head -1 <<<"$out")" = "snapdiag $version" ] || fail "snapdiag version does not print $version"

step "installed: systemd-analyze verify (man pages checked: $man)"
units=(/usr/lib/systemd/system/snapdiag-watch@.service /usr/lib/systemd/system/snapdiag-capture@.service
  /usr/lib/systemd/system/snapdiag-push@.service /usr/lib/systemd/system/snapdiag-push@.timer)
if [ "$man" = yes ] && ! command -v man >/dev/null; then
  man=no
  echo "package: man is not installed: Documentation= not checked"
fi
# verify() fails on anything systemd-analyze verify says: it exits 0 on an
# unknown key or a value it cannot parse, and only prints a warning.
verify() {
  local said
  said=$(systemd-analyze verify "$@" 2>&1) || { echo "$said"; fail "systemd-analyze verify $*"; }
  [ -z "$said" ] || { echo "$said"; fail "systemd-analyze verify $* warned"; }
}
verify --man="$man" "${units[@]}"
# The example drop-ins, on a unit of their own found through a unit path
# that holds the installed units too.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dpkg --purge snapdiag >/dev/null || true' EXIT
mkdir "$tmp/demo.service.d"
printf '[Service]\nExecStart=/bin/true\n' >"$tmp/demo.service"
cp /usr/share/doc/snapdiag/examples/*.conf "$tmp/demo.service.d/"
SYSTEMD_UNIT_PATH="$tmp:/usr/lib/systemd/system:" verify --man=no "$tmp/demo.service"

step "installed: state directory, completions, man pages, alert rules"
if command -v promtool >/dev/null; then
  promtool check rules "$rules" >/dev/null || fail "promtool check rules $rules"
fi
[ "$(stat -c '%a %U' /var/lib/snapdiag)" = "700 root" ] ||
  fail "/var/lib/snapdiag is $(stat -c '%a %U' /var/lib/snapdiag), want 700 root"
bash -c 'source /usr/share/bash-completion/completions/snapdiag && complete -p snapdiag' >/dev/null ||
  fail "the bash completion does not register for snapdiag"
if [ "$man" = yes ]; then
  for page in snapdiag snapdiag-capture snapdiag-watch snapdiag-push; do
    man -w "$page" >/dev/null || fail "man $page: no page installed"
  done
else
  echo "package: man is not installed: man -w not checked"
fi

step "dpkg -r snapdiag"
# An operator's enabled watch (systemctl enable works without a running
# systemd: it only makes the .wants symlink) must not be left pointing at a
# unit file the purge removed.
wants=/etc/systemd/system/multi-user.target.wants/snapdiag-watch@ci-package.service
trap 'rm -rf "$tmp"; rm -f "$wants"; dpkg --purge snapdiag >/dev/null || true' EXIT
systemctl enable snapdiag-watch@ci-package.service 2>/dev/null
[ -L "$wants" ] || fail "systemctl enable snapdiag-watch@ci-package made no $wants"
trap 'rm -rf "$tmp"; rm -f "$wants"' EXIT
dpkg -r snapdiag >/dev/null
[ ! -e /usr/bin/snapdiag ] || fail "/usr/bin/snapdiag is still there after dpkg -r"
# The maintainer scripts keep dpkg's record ("rc") until a purge.
dpkg --purge snapdiag >/dev/null
[ ! -L "$wants" ] || fail "dpkg --purge left $wants pointing at the removed unit"
step "ok"
