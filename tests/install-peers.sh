#!/bin/sh
# Install the interop peers that nobody on this team wrote: avahi-daemon and avahi-utils
# from Debian, and iproute2 (ip for the lab, tc for the ENOBUFS tests) if it is missing.
# --no-install-recommends keeps libnss-mdns (and its nsswitch.conf edit) out, and a temporary
# policy-rc.d stops the package from starting a daemon on the real network.
set -eu
if command -v avahi-daemon >/dev/null 2>&1 && command -v avahi-browse >/dev/null 2>&1 \
        && command -v dbus-daemon >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 \
        && command -v tc >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-peers: not root; Avahi interop tests will be skipped (run 'sudo make peers')" >&2
    exit 0
fi
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
fi
trap '[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    avahi-daemon avahi-utils dbus-daemon iproute2 >/dev/null
