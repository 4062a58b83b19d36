#!/bin/sh
# After install or upgrade of the snapdiag package (deb: configure; rpm: $1 of
# 1 or 2).
set -e
# Bundles hold the host's socket table and kernel log: root only. dpkg and
# rpm leave the mode of a directory that existed before the package (made by
# hand, or by an earlier capture) as it was, so set it here.
chown root:root /var/lib/snapdiag
chmod 0700 /var/lib/snapdiag
# systemd rereads the units, and watches already running restart on the new
# binary (a capture in flight finishes first, within its deadline).
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	systemctl try-restart 'snapdiag-watch@*.service' || true
fi
exit 0
