#!/bin/sh
# One simulated host: run as `unshare --mount --uts --propagation private host.sh COMMAND...`.
# Gives the new mount namespace copy-on-write views of /etc, /var and /opt, private tmpfs on /run,
# /tmp, /home and /root, shows the host's own directory at /run/fleet-host, sets the hostname,
# makes everything else read-only (so nothing a session does can touch the real machine), then
# execs COMMAND (sshd, or dpkg while a kind's template layer is prepared).
#
# Environment (set by tests/fleet/fleet.py):
#   FLEET_LAYERS   lower layer roots, top first, separated by ':' (each has etc/ var/ opt/)
#   FLEET_UPPER    overlay upper root; FLEET_WORK  overlay work root (same filesystem)
#   FLEET_STAGE    an empty directory where the new /run is prepared before it is moved
#   FLEET_HOSTDIR  the directory shown at /run/fleet-host (optional)
#   FLEET_HOSTNAME the host name
set -eu

for dir in etc var opt; do
    lower=""
    old_ifs=$IFS
    IFS=:
    for layer in $FLEET_LAYERS; do
        lower="$lower${lower:+:}$layer/$dir"
    done
    IFS=$old_ifs
    # /opt shows only what the fleet's layers and the host's packages put there.
    [ "$dir" = opt ] || lower="$lower:/$dir"
    mkdir -p "$FLEET_UPPER/$dir" "$FLEET_WORK/$dir"
    mount -n -t overlay "fleet-$dir" -o "lowerdir=$lower,upperdir=$FLEET_UPPER/$dir,workdir=$FLEET_WORK/$dir" "/$dir"
done

# The new /run is built aside (the host dir may live under /run or /tmp, which get hidden).
mount -n -t tmpfs -o mode=755,size=64m fleet-run "$FLEET_STAGE"
mkdir -p "$FLEET_STAGE/sshd" "$FLEET_STAGE/lock"
if [ -n "${FLEET_HOSTDIR:-}" ]; then
    mkdir "$FLEET_STAGE/fleet-host"
    mount -n --bind "$FLEET_HOSTDIR" "$FLEET_STAGE/fleet-host"
fi
mount -n --move "$FLEET_STAGE" /run
mount -n -t tmpfs -o mode=1777 fleet-tmp /tmp
mount -n -t tmpfs -o mode=755,size=64m fleet-home /home
mount -n -t tmpfs -o mode=700,size=64m fleet-root /root
if id kops >/dev/null 2>&1; then
    mkdir -m 700 /home/kops
    chown kops:kops /home/kops
fi

echo "$FLEET_HOSTNAME" >/proc/sys/kernel/hostname
if [ -n "${FLEET_HOSTDIR:-}" ] && [ -f /run/fleet-host/hosts ]; then
    cat /run/fleet-host/hosts >>/etc/hosts
fi

# Read-only for this namespace only: a bind remount changes this mount, never the filesystem.
mount -n -o remount,bind,ro /

unset FLEET_LAYERS FLEET_UPPER FLEET_WORK FLEET_STAGE FLEET_HOSTDIR FLEET_HOSTNAME
exec "$@"
