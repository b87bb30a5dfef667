#!/bin/sh
# meson install script: installs the example configuration as CONFDIR/sensorgw.conf unless a
# configuration is already there (install_data would overwrite the administrator's edits).
# Honours DESTDIR. Owner and group are set later by systemd-tmpfiles (tmpfiles.d/sensorgw.conf),
# once the sensorgw group exists. Usage: install-config.sh EXAMPLE CONFDIR
set -eu
src=$1
dir=${DESTDIR:-}$2
if [ -e "$dir/sensorgw.conf" ]; then
	echo "Keeping existing $dir/sensorgw.conf"
	exit 0
fi
install -d -m 0750 "$dir"
install -m 0640 "$src" "$dir/sensorgw.conf"
echo "Installing example configuration to $dir/sensorgw.conf"
