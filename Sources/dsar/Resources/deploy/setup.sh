#!/bin/sh
# setup.sh — prepare a Debian 12 host for dsar: a system user, the privacy team's SFTP group, the
# spool, an SFTP chroot that shows the team only the inbox and the outbox, sshd, systemd units.
#
# Read it first: every step is one plain command. Run as root to apply it; as any other user it only
# prints the commands. It is idempotent: run it again after changing a variable.
#
#   sudo TEAM_RECIPIENT=age1… ./setup.sh
#
# Variables (environment):
#   TEAM_RECIPIENT  the privacy team's age recipient (age1…, from `age-keygen -y team.key`); export
#                   bundles are encrypted to it. Without it, set `recipients:` in config.yaml later.
#   TEAM_SIGNING_KEY  the team's OpenSSH public key (.pub) for signed requests, written to
#                   SPOOL/keys/request_signers when config.yaml has `require_signed_requests: true`.
#   SPOOL=/srv/dsar/spool  CHROOT=/srv/dsar/chroot  CONNECTORS=/etc/dsar/connectors
#   DSAR=/usr/local/bin/dsar  (installed from the repository's .build/release/dsar when missing)
#
# The result:
#   user  dsar (system, no login shell)  runs dsar; member of dsar-sftp so it can read the uploads
#                                        and give published files to that group
#   group dsar-sftp                      the privacy team's SFTP accounts
#   /srv/dsar/spool        dsar:dsar-sftp 0750  the spool (`dsar init --group dsar-sftp`):
#        inbox/ 2770 and outbox/ 2750 belong to dsar-sftp, everything else is dsar's alone (0700)
#   /srv/dsar/chroot       root:root 0755  the team's SFTP root (ChrootDirectory), holding only
#        inbox/   bind mount of /srv/dsar/spool/inbox   — the team uploads here
#        outbox/  bind mount of /srv/dsar/spool/outbox, read-only — the team downloads from here
#   /etc/dsar/connectors   root:dsar 0750  one YAML file per data source
#   /etc/ssh/sshd_config.d/dsar.conf     the `Match Group dsar-sftp` block (sshd_config.d-dsar.conf)
#   /etc/systemd/system/dsar-watch.service, dsar-nightly.service, dsar-nightly.timer  (not enabled:
#                                        pick the watch service or the nightly timer, see the end)
#
# Why bind mounts: sshd accepts a ChrootDirectory only if it and every directory above it are owned
# by root and writable by nobody else, so the spool itself (owned by dsar) cannot be the chroot; and
# the team must not see jobs/, journal/, keys/ or failed/. A bind mount makes the spool's own inbox/
# and outbox/ directories appear inside the chroot — the same directories, not copies — so an
# upload's rename from NAME.json.part to NAME.json is an ordinary atomic rename in the real inbox.
# The lines this script adds to /etc/fstab (so the mounts come back at boot):
#
#   /srv/dsar/spool/inbox   /srv/dsar/chroot/inbox   none  bind,nodev,nosuid,noexec     0 0
#   /srv/dsar/spool/outbox  /srv/dsar/chroot/outbox  none  bind,ro,nodev,nosuid,noexec  0 0
#
# Privacy-team accounts (one per person, SFTP only, key login only) — not done by this script:
#
#   adduser --disabled-password --gecos '' --shell /usr/sbin/nologin --ingroup dsar-sftp alice
#   install -d -o alice -g dsar-sftp -m 0700 /home/alice/.ssh
#   install -o alice -g dsar-sftp -m 0600 alice.pub /home/alice/.ssh/authorized_keys
#
# alice then runs `sftp alice@server` and sees /inbox and /outbox.

set -eu

SPOOL=${SPOOL:-/srv/dsar/spool}
CHROOT=${CHROOT:-/srv/dsar/chroot}
CONNECTORS=${CONNECTORS:-/etc/dsar/connectors}
DSAR=${DSAR:-/usr/local/bin/dsar}
TEAM_RECIPIENT=${TEAM_RECIPIENT:-}
TEAM_SIGNING_KEY=${TEAM_SIGNING_KEY:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

if [ "$(id -u)" = 0 ]; then APPLY=yes; else APPLY=no; fi

# run CMD…: print the command; as root, also run it.
run() {
    printf '+ %s\n' "$*"
    if [ "$APPLY" = yes ]; then "$@"; fi
}

# write FILE: the text on stdin becomes FILE (printed only, without root).
write() {
    if [ "$APPLY" = yes ]; then
        printf '+ cat > %s\n' "$1"
        cat > "$1"
    else
        printf '+ cat > %s\n' "$1"
        cat > /dev/null
    fi
}

# localized FILE: a file of this folder with the default paths replaced by the ones chosen above.
localized() {
    sed -e "s|/srv/dsar/spool|$SPOOL|g" -e "s|/srv/dsar/chroot|$CHROOT|g" \
        -e "s|/etc/dsar/connectors|$CONNECTORS|g" -e "s|/usr/local/bin/dsar|$DSAR|g" "$HERE/$1"
}

[ "$APPLY" = yes ] || echo "# not root: printing the commands only (run as root to apply them)"

# 1. Packages: sshd, and what the dsar binary links against (built with --static-swift-stdlib it
#    needs no Swift runtime on this host).
missing=""
for p in openssh-server libarchive13 zlib1g; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    run apt-get update -qq
    # shellcheck disable=SC2086
    run apt-get install -y --no-install-recommends $missing
fi

# 2. The binary.
if [ ! -x "$DSAR" ]; then
    if [ -x "$REPO/.build/release/dsar" ]; then
        run install -o root -g root -m 0755 "$REPO/.build/release/dsar" "$DSAR"
    elif [ "$APPLY" = yes ]; then
        echo "no $DSAR: build it first (in $REPO: swift build -c release --static-swift-stdlib)" >&2
        exit 1
    fi
fi

# 3. The system user and the team's group; dsar joins dsar-sftp.
getent group dsar-sftp >/dev/null || run groupadd --system dsar-sftp
getent passwd dsar >/dev/null ||
    run useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin dsar
id -nG dsar 2>/dev/null | tr ' ' '\n' | grep -qx dsar-sftp || run usermod -a -G dsar-sftp dsar

# 4. The spool, created by dsar itself as user dsar (modes, config.yaml, pseudonym and signing keys).
[ -d "$(dirname "$SPOOL")" ] || run install -d -o root -g root -m 0755 "$(dirname "$SPOOL")"
[ -d "$SPOOL" ] || run install -d -o dsar -g dsar-sftp -m 0750 "$SPOOL"
# Prometheus textfile (point node_exporter's --collector.textfile.directory here)
[ -d /var/lib/dsar/metrics ] || run install -d -o dsar -g dsar -m 0755 /var/lib/dsar /var/lib/dsar/metrics
run runuser -u dsar -- "$DSAR" init --spool "$SPOOL" --group dsar-sftp

# config.yaml: add a key unless it is already set (an existing value is never changed).
config() {
    if [ -f "$SPOOL/config.yaml" ] && grep -q "^$1:" "$SPOOL/config.yaml"; then
        echo "# config.yaml already sets $1 (kept)"
    elif [ "$APPLY" = yes ]; then
        printf '+ echo "%s: %s" >> %s\n' "$1" "$2" "$SPOOL/config.yaml"
        printf '%s: %s\n' "$1" "$2" >> "$SPOOL/config.yaml"
    else
        printf '+ echo "%s: %s" >> %s\n' "$1" "$2" "$SPOOL/config.yaml"
    fi
}
config inbox_group dsar-sftp
config outbox_group dsar-sftp
config connectors "$CONNECTORS"
if [ -n "$TEAM_RECIPIENT" ]; then
    config recipients "[ $TEAM_RECIPIENT ]"
else
    echo "# TEAM_RECIPIENT not given: add 'recipients: [ age1… ]' to $SPOOL/config.yaml before the first export"
fi

# Signed requests, when this dsar's config.yaml asks for them: who may sign (OpenSSH allowed_signers).
if [ -f "$SPOOL/config.yaml" ] && grep -q '^require_signed_requests: *true' "$SPOOL/config.yaml" &&
    [ ! -e "$SPOOL/keys/request_signers" ]; then
    if [ -n "$TEAM_SIGNING_KEY" ]; then
        printf 'privacy-team namespaces="dsar-request" %s\n' "$(cat "$TEAM_SIGNING_KEY")" | write "$SPOOL/keys/request_signers"
        run chown dsar:dsar "$SPOOL/keys/request_signers"
        run chmod 0644 "$SPOOL/keys/request_signers"
    else
        echo "# config.yaml requires signed requests: put the team's key in $SPOOL/keys/request_signers" \
            "(privacy-team namespaces=\"dsar-request\" ssh-ed25519 AAAA…) or set TEAM_SIGNING_KEY"
    fi
fi

# 5. Connector configs (owned by root, readable by dsar).
run install -d -o root -g dsar -m 0750 "$(dirname "$CONNECTORS")" "$CONNECTORS"

# 6. The chroot: root-owned all the way up, with two empty mount points (never touch them once
#    mounted: they are then the spool's own directories).
run install -d -o root -g root -m 0755 "$CHROOT"
for d in inbox outbox; do
    mountpoint -q "$CHROOT/$d" || run install -d -o root -g root -m 0755 "$CHROOT/$d"
done
fstab_line() { # SOURCE TARGET OPTIONS
    if grep -qs "^[^#]*[[:space:]]$2[[:space:]]" /etc/fstab; then
        echo "# /etc/fstab already mounts $2 (kept)"
    elif [ "$APPLY" = yes ]; then
        printf '+ echo "%s  %s  none  %s  0 0" >> /etc/fstab\n' "$1" "$2" "$3"
        printf '%s  %s  none  %s  0 0\n' "$1" "$2" "$3" >> /etc/fstab
    else
        printf '+ echo "%s  %s  none  %s  0 0" >> /etc/fstab\n' "$1" "$2" "$3"
    fi
}
fstab_line "$SPOOL/inbox" "$CHROOT/inbox" bind,nodev,nosuid,noexec
fstab_line "$SPOOL/outbox" "$CHROOT/outbox" bind,ro,nodev,nosuid,noexec
if [ -d /run/systemd/system ]; then run systemctl daemon-reload; fi
for d in inbox outbox; do
    mountpoint -q "$CHROOT/$d" || run mount "$CHROOT/$d"
done

# 7. sshd: the Match Group dsar-sftp block; check the whole config before reloading.
localized sshd_config.d-dsar.conf | write /etc/ssh/sshd_config.d/dsar.conf
run chmod 0644 /etc/ssh/sshd_config.d/dsar.conf
run sshd -t
if [ -d /run/systemd/system ]; then run systemctl reload-or-restart ssh; fi

# 8. systemd units (and the log file the cron variant appends to).
for u in dsar-watch.service dsar-nightly.service dsar-nightly.timer; do
    localized "$u" | write "/etc/systemd/system/$u"
    run chmod 0644 "/etc/systemd/system/$u"
done
if [ -d /run/systemd/system ]; then run systemctl daemon-reload; fi
[ -e /var/log/dsar.log ] || run install -o dsar -g dsar -m 0640 /dev/null /var/log/dsar.log

cat <<EOF

# Done. Next:
#   - connector configs into $CONNECTORS, then: runuser -u dsar -- $DSAR connectors check --spool $SPOOL
#     (data sources outside /srv/data: add them to ReadWritePaths= in the units)
#   - the team's accounts in group dsar-sftp (see the top of this script)
#   - one way to run it:
#       systemctl enable --now dsar-watch.service     # continuously
#       systemctl enable --now dsar-nightly.timer     # or every night at 02:00
#       install -m 0644 $HERE/crontab /etc/cron.d/dsar  # or from cron
#   - give the team $SPOOL/keys/allowed_signers (to verify manifests with ssh-keygen -Y verify)
EOF
