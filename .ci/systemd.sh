#!/usr/bin/env bash
# The README's systemd instructions, followed on a real systemd: the .deb a
# release builds is installed in a Debian container booted with
# systemd-nspawn (systemd as its PID 1, its own network namespace with only
# loopback), and inside it, as root, exactly as the README says:
#
#   cp /usr/share/doc/snapdiag/examples/watch-sshd.env /etc/snapdiag/
#   systemctl enable --now snapdiag-watch@sshd
#
# then checks that the watch is active, that its hardening holds in the
# running process, that its log shows it watching, that stopping sshd makes
# it capture a bundle into /var/lib/snapdiag/sshd and restart sshd, that the
# hardened capture collected what a plain root capture does, and that
# `systemctl disable --now` and a purge leave no unit behind. Also: `man
# snapdiag-capture`, `snapdiag --version`, and a real <TAB> after
# `snapdiag analyze --format ` in an interactive login shell (tmux).
#
# Needs root and a Debian host (debootstrap, systemd-nspawn, tmux and jq are
# installed when missing); no systemd on the host. Usage:
#
#   sudo .ci/systemd.sh [LOG]
#
# LOG (default build/systemd-check.txt) records every command and its output.
# SNAPDIAG_DEB names a .deb already built by .ci/package.sh (.ci/run sets
# it); without it the .deb is built first (.ci/package.sh --build-only).
# The container's root file system is debootstrapped once (about 3 minutes)
# from the host's own apt source into SNAPDIAG_ROOTFS_CACHE (default
# /var/cache/snapdiag-ci), then used read-only under an overlay per run. The
# container, its overlay and every process this script starts are removed on
# exit; each wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${SNAPDIAG_ROOTFS_CACHE:-/var/cache/snapdiag-ci}
log=${1:-build/systemd-check.txt}
start=$EPOCHREALTIME
step() { awk -v t="$EPOCHREALTIME" -v s="$start" -v m="$*" 'BEGIN { printf "systemd: %5.1fs  %s\n", t - s, m }' | tee -a "$log"; }
# On a failure the record's last lines go to stderr too (CI shows them).
fail() {
  if [ -f "$log" ]; then
    echo "systemd: FAIL: $*" >>"$log"
    echo "systemd: the last lines of $log:" >&2
    tail -40 "$log" >&2
  fi
  echo "systemd: FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, systemd-nspawn)"
mkdir -p "$(dirname "$log")"
: >"$log"

export DEBIAN_FRONTEND=noninteractive
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v nsenter >/dev/null || need+=(util-linux)
command -v tmux >/dev/null || need+=(tmux)
command -v jq >/dev/null || need+=(jq)
command -v zstd >/dev/null || need+=(zstd)
command -v capsh >/dev/null || need+=(libcap2-bin)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -n "${SNAPDIAG_DEB:-}" ]; then
  deb=$SNAPDIAG_DEB
  step "the .deb: $deb"
else
  step "build the release .deb (.ci/package.sh --build-only)"
  deb=$(.ci/package.sh --build-only | tail -1)
fi
[ -f "$deb" ] || fail "no .deb at $deb"
echo "$deb" | tee -a "$log"

# The root file system: Debian minbase with systemd as init, sshd (the
# watched service), man-db and bash-completion, from the suite and mirror
# the host's apt already uses (so CI reaches the same archive .ci/run does).
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
mirror=$(apt-get indextargets --format '$(SITE) $(CODENAME) $(IDENTIFIER)' |
  awk -v s="$suite" '$2 == s && $3 == "Packages" { print $1; exit }')
[ -n "$mirror" ] || fail "no apt source for $suite on this host"
include=systemd,systemd-sysv,dbus,openssh-server,man-db,bash-completion
rootfs=$cache/rootfs-$suite-$(printf '%s' "$include" | sha256sum | cut -c1-12)
if [ ! -x "$rootfs/usr/lib/systemd/systemd" ]; then
  step "debootstrap $suite (minbase + $include) into $rootfs"
  mkdir -p "$cache"
  # Into a directory of its own, renamed when complete: a run killed
  # mid-way, or one beside it, never leaves a half-made cache.
  part=$(mktemp -d "$rootfs.part.XXXXXX")
  debootstrap --variant=minbase --include="$include" "$suite" "$part" "$mirror" \
    >"$part.log" 2>&1 || { tail -20 "$part.log"; rm -rf "$part" "$part.log"; fail "debootstrap"; }
  rm -f "$part.log"
  mv -T "$part" "$rootfs" 2>/dev/null || rm -rf "$part"
fi

tmp=$(mktemp -d /var/tmp/snapdiag-systemd.XXXXXX)
nspawn=""
leader=""
mounted=no
tsock=snapdiag-systemd-$$
cleanup() {
  tmux -L "$tsock" kill-server 2>/dev/null || true
  if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
    # SIGTERM asks nspawn to power the container off; its PID 1 is killed
    # (and with it the whole PID namespace) if that takes over 10 s.
    kill -TERM "$nspawn" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.5; done
    [ -z "$leader" ] || kill -KILL "$leader" 2>/dev/null || true
    kill -KILL "$nspawn" 2>/dev/null || true
    wait "$nspawn" 2>/dev/null || true
  fi
  [ "$mounted" = no ] || umount "$tmp/root" || umount -l "$tmp/root" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

step "the container's root: an overlay on the cached file system"
# The cache stays as debootstrap left it: the run writes to an upper
# directory in $tmp, removed on exit.
mkdir "$tmp/upper" "$tmp/work" "$tmp/root"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$tmp/upper,workdir=$tmp/work" "$tmp/root"
mounted=yes
cp "$deb" "$tmp/root/root/"
debname=$(basename "$deb")
machine=snapdiag-ci-$$

step "boot systemd in $machine (systemd-nspawn -b --private-network)"
# --register=no --keep-unit: no machined or system bus on the host.
# CAP_SYSLOG and a read-only /dev/kmsg, which nspawn withholds by default,
# make the container's PID 1 hold what a host's does for the unit's kernel
# log collector (CAP_SYSLOG under kernel.dmesg_restrict).
systemd-nspawn -q -D "$tmp/root" -M "$machine" -b --private-network \
  --capability=CAP_SYSLOG --bind-ro=/dev/kmsg \
  --register=no --keep-unit --console=passive >"$tmp/boot.log" 2>&1 &
nspawn=$!
for _ in $(seq 100); do
  # ps exits 1 while nspawn has no child yet: under set -e and pipefail
  # that would end the script silently, so it counts as not yet.
  leader=$(ps -o pid=,comm= --ppid "$nspawn" | awk '$2 == "systemd" { print $1; exit }') || leader=""
  [ -n "$leader" ] && break
  sleep 0.2
done
[ -n "$leader" ] || { cat "$tmp/boot.log"; fail "systemd-nspawn started no container"; }

# inside CMD: run the shell command CMD inside the container as root, as an
# operator's root shell would (the container's PATH, its root and working
# directory). ct CMD does the same, recording the command and its output.
inside() {
  nsenter -t "$leader" -m -u -i -n -p -r -w \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
    bash -c "cd /root && $1"
}
ct() {
  echo "# $1" >>"$log"
  local out rc=0
  out=$(inside "$1" 2>&1) || rc=$?
  printf '%s\n' "$out" >>"$log"
  [ "$rc" = 0 ] || echo "(exit $rc)" >>"$log"
  printf '%s\n' "$out"
  return "$rc"
}
# wait_ct SECONDS WHAT CMD: poll CMD inside the container until it succeeds.
wait_ct() {
  local n=$(($1 * 5))
  for _ in $(seq "$n"); do
    inside "$3" >/dev/null 2>&1 && { echo "# wait: $3 (ok)" >>"$log"; return 0; }
    sleep 0.2
  done
  fail "$2: not within $1 s ($3)"
}

wait_ct 60 "boot" '[ "$(systemctl is-system-running 2>/dev/null)" = running ] || [ "$(systemctl is-system-running 2>/dev/null)" = degraded ]'
ct 'systemctl is-system-running; systemctl --failed --no-legend; systemd --version | head -1' >/dev/null
ct 'systemctl is-active ssh.service; readlink /etc/systemd/system/sshd.service' >/dev/null ||
  fail "sshd is not running in the container"

step "install the .deb with dpkg, under a running systemd"
ct "dpkg -i /root/$debname" >/dev/null || fail "dpkg -i $debname"

step "snapdiag --version, man snapdiag-capture"
v=$(ct 'snapdiag --version') || fail "snapdiag --version"
[[ "$(head -1 <<<"$v")" == "snapdiag "* ]] || fail "snapdiag --version printed $v"
page=$(ct 'MANPAGER=cat MANWIDTH=80 man snapdiag-capture 2>&1 | head -12') || fail "man snapdiag-capture"
grep -q '^NAME' <<<"$page" && grep -q 'snapdiag-capture' <<<"$page" ||
  fail "man snapdiag-capture did not open the page"

step "bash completion: a real <TAB> after 'snapdiag analyze --format '"
# An interactive login shell, as an operator's: Debian loads bash-completion
# from /etc/profile.d, which finds snapdiag's completion on first use.
tmux -L "$tsock" new-session -d -x 160 -y 40 \
  "nsenter -t $leader -m -u -i -n -p -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=screen LANG=C.UTF-8 bash -il"
shown=""
for _ in $(seq 50); do
  shown=$(tmux -L "$tsock" capture-pane -p)
  grep -q '# *$' <<<"$shown" && break
  sleep 0.2
done
tmux -L "$tsock" send-keys 'snapdiag analyze --format ' Tab Tab
for _ in $(seq 50); do
  shown=$(tmux -L "$tsock" capture-pane -p)
  grep -q markdown <<<"$shown" && break
  sleep 0.2
done
{ echo "# tmux: snapdiag analyze --format <TAB><TAB>"; sed '/^$/d' <<<"$shown"; } >>"$log"
for w in json markdown text; do
  grep -qw "$w" <<<"$shown" || fail "<TAB> after --format did not offer $w"
done
tmux -L "$tsock" kill-server

step "the README: env file, systemctl enable --now snapdiag-watch@sshd"
ct 'cp /usr/share/doc/snapdiag/examples/watch-sshd.env /etc/snapdiag/ && grep -v "^#" /etc/snapdiag/watch-sshd.env' >/dev/null
ct 'systemctl enable --now snapdiag-watch@sshd' >/dev/null || fail "systemctl enable --now snapdiag-watch@sshd"
wait_ct 10 "the watch's first log line" 'journalctl -u snapdiag-watch@sshd -o cat | grep -q "msg=watching"'
ct 'systemctl is-active snapdiag-watch@sshd; systemctl is-enabled snapdiag-watch@sshd' >/dev/null ||
  fail "snapdiag-watch@sshd is not active"

step "hardening: configured and in effect"
ct 'systemctl show snapdiag-watch@sshd -p MainPID -p ExecStart -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp -p ProtectKernelTunables -p ProtectKernelModules -p ProtectControlGroups -p ProtectHostname -p RestrictNamespaces -p RestrictRealtime -p RestrictSUIDSGID -p LockPersonality -p RestrictAddressFamilies -p SystemCallArchitectures -p CapabilityBoundingSet -p UMask -p StateDirectory' >/dev/null
pid=$(inside 'systemctl show -p MainPID --value snapdiag-watch@sshd')
status=$(ct "grep -E '^(NoNewPrivs|Seccomp|CapBnd|CapEff):' /proc/$pid/status")
grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$status" || fail "NoNewPrivileges= did not take effect"
grep -q '^Seccomp:[[:space:]]*2' <<<"$status" || fail "no seccomp filter (SystemCallArchitectures=, RestrictAddressFamilies=)"
want=$(inside 'systemctl show -p CapabilityBoundingSet --value snapdiag-watch@sshd' | tr ' ' '\n' |
  tr '[:lower:]' '[:upper:]' | sort | tr '\n' ' ')
have=$(capsh --decode="$(awk '/^CapBnd:/ { print $2 }' <<<"$status")" | sed 's/.*=//' | tr ',' '\n' |
  tr '[:lower:]' '[:upper:]' | sort | tr '\n' ' ')
echo "# CapBnd decoded: $have" >>"$log"
[ "$want" = "$have" ] || fail "the watch's bounding set is $have, the unit's $want"
# What the watch's mount namespace lets a root process write (nsenter -m
# into it from the container): only the state directory. The container's
# own root writes each of them (nspawn --private-network leaves
# /proc/sys/net writable), so the probes can fail.
ns="nsenter -t $pid -m"
for d in /usr /etc /root; do
  ct "touch $d/.snapdiag-probe && rm $d/.snapdiag-probe" >/dev/null || fail "the container's root cannot write $d"
  ct "$ns touch $d/.snapdiag-probe" >/dev/null && fail "$d is writable for the watch"
done
tunable='cat /proc/sys/net/core/somaxconn > /proc/sys/net/core/somaxconn'
ct "sh -c '$tunable'" >/dev/null || fail "the container's root cannot write /proc/sys/net"
ct "$ns sh -c '$tunable'" >/dev/null && fail "/proc/sys is writable for the watch (ProtectKernelTunables=)"
# A cgroup the container's root may make (its systemd's delegated tree:
# under the unified hierarchy, hybrid or not) but the watch may not.
cg=/sys/fs/cgroup/system.slice
inside "test -d /sys/fs/cgroup/unified/system.slice" && cg=/sys/fs/cgroup/unified/system.slice
ct "mkdir $cg/snapdiag-probe && rmdir $cg/snapdiag-probe" >/dev/null || fail "the container's root cannot make a cgroup in $cg"
ct "$ns mkdir $cg/snapdiag-probe" >/dev/null && fail "$cg is writable for the watch (ProtectControlGroups=)"
ct "touch /tmp/.snapdiag-probe && $ns sh -c '! test -e /tmp/.snapdiag-probe'; rm /tmp/.snapdiag-probe" >/dev/null ||
  fail "the watch shares the container's /tmp (PrivateTmp=)"
[ "$(inside "readlink /proc/$pid/ns/uts")" != "$(inside 'readlink /proc/1/ns/uts')" ] ||
  fail "the watch shares PID 1's UTS namespace (ProtectHostname=)"
# What systemd said of the unit's sandbox, if anything (a directive it
# could not apply is logged at warning or above).
ct 'journalctl -b -p warning -o cat -u "snapdiag-watch@sshd" | grep -v "check failed\|triggered" || echo "(no warnings from systemd about the unit)"' >/dev/null
ct "$ns sh -c 'touch /var/lib/snapdiag/sshd/.snapdiag-probe && rm /var/lib/snapdiag/sshd/.snapdiag-probe && cat /proc/sys/net/core/somaxconn'" >/dev/null ||
  fail "the watch cannot write /var/lib/snapdiag/sshd or read /proc/sys"

step "stop sshd: three failed checks, a bundle, then the restart"
ct 'systemctl stop ssh.service; systemctl is-active ssh.service' >/dev/null || true
wait_ct 60 "a bundle in /var/lib/snapdiag/sshd" 'ls /var/lib/snapdiag/sshd/snapdiag-*.tar.zst'
wait_ct 30 "the restart command" 'journalctl -u snapdiag-watch@sshd -o cat | grep -q "msg=\"restart command finished\""'
wait_ct 30 "sshd back" 'systemctl is-active ssh.service'
wait_ct 30 "checks passing again" 'journalctl -u snapdiag-watch@sshd -o cat | grep -q "msg=\"checks pass again\""'
ct 'journalctl -u snapdiag-watch@sshd -o short-monotonic --no-hostname' >/dev/null
ct 'journalctl -u ssh.service -o cat | tail -4' >/dev/null
ct 'ls -l /var/lib/snapdiag /var/lib/snapdiag/sshd; stat -c "%a %U %n" /var/lib/snapdiag /var/lib/snapdiag/sshd /var/lib/snapdiag/sshd/*.tar.zst' >/dev/null
b=$(inside 'ls /var/lib/snapdiag/sshd/snapdiag-*.tar.zst | head -1')
[ "$(inside "stat -c %a $b")" = 600 ] || fail "$b is not mode 0600"

step "the hardened capture against a plain root capture in the same container"
ct "snapdiag analyze --format json $b > /root/watch.json; echo exit \$?" >/dev/null
ct 'mkdir -p /root/plain && snapdiag capture --quiet --out /root/plain --port 22' >/dev/null || fail "plain capture"
p=$(inside 'ls /root/plain/snapdiag-*.tar.zst | head -1')
ct "snapdiag analyze --format json $p > /root/plain.json; echo exit \$?" >/dev/null
for f in watch plain; do
  echo "# $f: collectors" >>"$log"
  jq -r '.collectors[] | "\(.name) \(.status) \(.error // "")"' "$tmp/root/root/$f.json" | tee -a "$log" >"$tmp/$f.collectors"
done
echo "# trigger of the watch's bundle" >>"$log"
tar --zstd -xOf "$tmp/root$b" manifest.json | jq -c '.trigger' >>"$log"
# The watch's bundle has what a plain one has, and more (its history):
# every collector of the plain capture ok in the watch's too, no member
# missing.
missing=$(comm -23 <(sort "$tmp/plain.collectors") <(sort "$tmp/watch.collectors"))
[ -z "$missing" ] || fail "the watch's capture lacks what a plain root capture has: $missing"
tar --zstd -tf "$tmp/root$b" | sed 's#^samples/[0-9]*/#samples/N/#' | sort -u >"$tmp/watch.members"
tar --zstd -tf "$tmp/root$p" | sed 's#^samples/[0-9]*/#samples/N/#' | sort -u >"$tmp/plain.members"
missing=$(comm -23 "$tmp/plain.members" "$tmp/watch.members")
echo "# members: watch $(wc -l <"$tmp/watch.members"), plain $(wc -l <"$tmp/plain.members"), missing from the watch's: ${missing:-none}" >>"$log"
[ -z "$missing" ] || fail "the watch's bundle lacks members a plain capture has: $missing"
jq -e '[.collectors[] | select(.name == "listeners" and .status == "ok")] | length == 1' "$tmp/root/root/watch.json" >/dev/null ||
  fail "the watch's capture has no listeners (sock_diag)"

step "a watch without its env file does not start (the README)"
ct 'systemctl start snapdiag-watch@nothere' >/dev/null && fail "snapdiag-watch@nothere started without /etc/snapdiag/watch-nothere.env"
# Failed once, and not queued for a restart (Restart=on-failure would retry
# a missing file every RestartSec= for ever: ActiveState=activating).
state=$(ct 'journalctl -u snapdiag-watch@nothere -o cat; systemctl show -p ActiveState -p SubState -p NRestarts snapdiag-watch@nothere')
grep -Eqx 'ActiveState=(failed|inactive)' <<<"$state" || fail "snapdiag-watch@nothere without its env file is not failed: $(tr '\n' ' ' <<<"$state")"
# A usage error (exit 2: here --every below its 100ms floor) is not retried
# either.
ct 'echo "ARGS=\"--check tcp://127.0.0.1:22 --every 1ms\"" >/etc/snapdiag/watch-badargs.env && systemctl start snapdiag-watch@badargs' >/dev/null || true
wait_ct 10 "snapdiag-watch@badargs to exit" '[ "$(systemctl show -p ExecMainStatus --value snapdiag-watch@badargs)" = 2 ]'
state=$(ct 'journalctl -u snapdiag-watch@badargs -o cat | tail -3; systemctl show -p ActiveState -p SubState -p NRestarts -p ExecMainStatus snapdiag-watch@badargs')
grep -qx 'ActiveState=failed' <<<"$state" || fail "snapdiag-watch@badargs (exit 2) is not failed: $(tr '\n' ' ' <<<"$state")"
ct 'rm /etc/snapdiag/watch-badargs.env; systemctl reset-failed snapdiag-watch@badargs' >/dev/null
ct 'systemctl reset-failed snapdiag-watch@nothere' >/dev/null || true

step "OnFailure=: the example drop-in starts snapdiag-capture@ when a unit fails"
ct 'printf "[Service]\nType=oneshot\nExecStart=/bin/false\n" >/etc/systemd/system/demo-fail.service &&
  mkdir -p /etc/systemd/system/demo-fail.service.d &&
  cp /usr/share/doc/snapdiag/examples/snapdiag-onfailure.conf /etc/systemd/system/demo-fail.service.d/ &&
  systemctl daemon-reload && systemctl start demo-fail.service' >/dev/null && fail "demo-fail.service did not fail"
wait_ct 60 "snapdiag-capture@demo-fail.service.service" 'systemctl show -p Result --value snapdiag-capture@demo-fail.service.service | grep -qx success && ls /var/lib/snapdiag/snapdiag-*.tar.zst'
ct 'journalctl -u snapdiag-capture@demo-fail.service.service -o cat; ls -l /var/lib/snapdiag' >/dev/null
c=$(inside 'ls /var/lib/snapdiag/snapdiag-*.tar.zst | head -1')
echo "# trigger of the OnFailure= bundle" >>"$log"
trigger=$(tar --zstd -xOf "$tmp/root$c" manifest.json | jq -c '.trigger')
echo "$trigger" >>"$log"
grep -q demo-fail.service <<<"$trigger" ||
  fail "the OnFailure= bundle does not name demo-fail.service in its trigger"

ct 'rm -r /etc/systemd/system/demo-fail.service /etc/systemd/system/demo-fail.service.d && systemctl daemon-reload && systemctl reset-failed' >/dev/null

step "systemctl disable --now, then purge the package"
ct 'systemctl disable --now snapdiag-watch@sshd; systemctl is-active snapdiag-watch@sshd' >/dev/null || true
[ "$(inside 'systemctl show -p Result --value snapdiag-watch@sshd')" = success ] || fail "the watch did not stop cleanly"
ct 'apt-get purge -y snapdiag 2>&1 | tail -2' >/dev/null || fail "purge"
ct 'ls /usr/lib/systemd/system/snapdiag* /usr/bin/snapdiag /etc/systemd/system/multi-user.target.wants/snapdiag* 2>&1; systemctl list-units --all --no-legend "snapdiag*"; ls -ld /var/lib/snapdiag' >/dev/null || true
inside '[ ! -e /usr/bin/snapdiag ] && [ ! -e /usr/lib/systemd/system/snapdiag-watch@.service ]' || fail "the purge left snapdiag behind"
inside '! ls /etc/systemd/system/*.wants/snapdiag* >/dev/null 2>&1' || fail "a .wants symlink is left"
[ -z "$(inside 'systemctl list-units --all --no-legend "snapdiag*"')" ] || fail "systemd still knows a snapdiag unit"

step "ok"
