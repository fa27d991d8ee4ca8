#!/bin/sh
# witness-syslog.sh — the audit journal's witness: keeps every signed checkpoint outside the spool.
#   install -m 0755 witness-syslog.sh /etc/dsar/      # config.yaml: witness: /etc/dsar/witness-syslog.sh
# dsar pipes each checkpoint to it (3 message lines, then the SSH SIGNATURE block) and sends it again
# at the next checkpoint if this exits non-zero. Each line goes to syslog with tag dsar-witness, on a
# log host the dsar host cannot rewrite (WITNESS_HOST, TCP 514; else the local syslog, which must
# forward it, e.g. rsyslog `*.* @@loghost:514`). To audit, on the log host:
#   journalctl -t dsar-witness -o cat > witness.txt
#   dsar audit verify --spool /srv/dsar/spool --witness witness.txt
set -eu
if [ -n "${WITNESS_HOST:-}" ]; then
    exec logger -t dsar-witness -n "$WITNESS_HOST" -T -P 514
fi
exec logger -t dsar-witness
