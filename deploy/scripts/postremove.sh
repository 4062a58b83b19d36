#!/bin/sh
# After the snapdiag package is removed: systemd forgets the units. On a
# purge (deb: "purge"; rpm: $1 of 0, an erase rather than an upgrade) the
# instances an operator enabled (systemctl enable snapdiag-watch@NAME) are
# disabled too: their .wants symlinks would point at a unit file that is
# gone. A plain dpkg -r keeps them, as Debian keeps a removed package's
# configuration, so that reinstalling brings the watches back.
set -e
case "${1:-}" in
purge | 0)
	rm -f /etc/systemd/system/*.wants/snapdiag-watch@*.service \
		/etc/systemd/system/*.wants/snapdiag-capture@*.service
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
