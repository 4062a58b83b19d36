#!/bin/sh
# Before the snapdiag package is removed for good (deb: "remove"; rpm: $1 of
# 0), the watches stop; on an upgrade they keep running until postinstall
# restarts them. Bundles in /var/lib/snapdiag are kept.
set -e
case "${1:-}" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop 'snapdiag-watch@*.service' 'snapdiag-capture@*.service' || true
	fi
	;;
esac
exit 0
