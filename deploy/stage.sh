#!/bin/sh
# Usage: deploy/stage.sh [SNAPDIAG]
#
# Lays out under build/root (relative to the repository) every file the
# snapdiag packages install except the binary itself: the systemd units, the
# examples, the licence, the alert rules, the man pages and the shell
# completions. Both
# deploy/nfpm.yaml and .goreleaser.yaml package that tree as it is, so this
# script is the one list of what goes where.
#
# SNAPDIAG is a snapdiag binary that runs on this machine; the completions
# are generated from its command tree. Without it, one is built (static)
# into build/host/snapdiag. The man pages come from a snapdiag built here
# from the same tree with -tags mangen (build/host/snapdiag-mangen), with
# SNAPDIAG's version: the shipped binary leaves the generator out, whose
# dependencies would slow every start of snapdiag. No page written is an
# error.
set -eu
# The tree's modes are the packaged modes: directories 0755, files 0644.
umask 022

repo=$(cd "$(dirname "$0")/.." && pwd)
root=$repo/build/root
# --require-man is what releases passed when man pages were optional; they
# are always required now.
if [ "${1:-}" = --require-man ]; then
	shift
fi
bin=${1:-}
if [ -z "$bin" ]; then
	bin=$repo/build/host/snapdiag
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/snapdiag)
fi

rm -rf "$root"
put() { # put MODE SRC DST: install SRC as ROOT/DST
	install -D -m "$1" "$2" "$root/$3"
}

put 0644 "$repo/deploy/systemd/snapdiag-watch@.service" usr/lib/systemd/system/snapdiag-watch@.service
put 0644 "$repo/deploy/systemd/snapdiag-capture@.service" usr/lib/systemd/system/snapdiag-capture@.service
put 0644 "$repo/deploy/systemd/snapdiag-push@.service" usr/lib/systemd/system/snapdiag-push@.service
put 0644 "$repo/deploy/systemd/snapdiag-push@.timer" usr/lib/systemd/system/snapdiag-push@.timer
doc=usr/share/doc/snapdiag
for f in "$repo"/deploy/systemd/examples/*; do
	put 0644 "$f" "$doc/examples/$(basename "$f")"
done
put 0644 "$repo/LICENSE" "$doc/LICENSE"
# The alert rules, for a Prometheus config's rule_files.
put 0644 "$repo/deploy/prometheus/snapdiag.rules.yml" usr/share/snapdiag/prometheus/snapdiag.rules.yml
put 0644 "$repo/README.md" "$doc/README.md"

# Completions from cobra's completion command, where each shell looks for
# them: bash-completion's directory, zsh's vendor directories (Debian's
# vendor-completions, Fedora's site-functions) and fish's.
comp=$(mktemp -d)
trap 'rm -rf "$comp"' EXIT
"$bin" completion bash >"$comp/snapdiag"
"$bin" completion zsh >"$comp/_snapdiag"
"$bin" completion fish >"$comp/snapdiag.fish"
put 0644 "$comp/snapdiag" usr/share/bash-completion/completions/snapdiag
put 0644 "$comp/_snapdiag" usr/share/zsh/vendor-completions/_snapdiag
put 0644 "$comp/_snapdiag" usr/share/zsh/site-functions/_snapdiag
put 0644 "$comp/snapdiag.fish" usr/share/fish/vendor_completions.d/snapdiag.fish

# Man pages from `snapdiag gen man DIR` (one page per command, from the
# cobra command tree), gzipped as distributions ship them. Their header
# names SNAPDIAG's version ("dev" builds fall back to what the go command
# stamps, as SNAPDIAG's own version does).
mangen=$repo/build/host/snapdiag-mangen
version=$("$bin" version | sed -n '1s/^snapdiag //p')
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -tags mangen -ldflags "-X main.version=${version:-dev}" -o "$mangen" ./cmd/snapdiag)
man=$root/usr/share/man/man1
mkdir -p "$man"
"$mangen" gen man "$man"
set -- "$man"/*.1
if [ ! -e "$1" ]; then
	echo "stage: snapdiag gen man wrote no page into $man" >&2
	exit 1
fi
gzip -9n "$@"
echo "staged $root"
