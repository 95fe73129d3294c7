#!/bin/sh
# Start a throw-away Postfix + OpenDKIM peer for tests/federation_postfix.rs.
#   start.sh DIR IP DOMAIN RELAY_DOMAIN RELAY_IP CA_PEM CERT KEY
# Postfix listens on IP:25 (TLS "may" with CERT/KEY), accepts DOMAIN into
# the Maildir DIR/mail/pat/ (virtual delivery, only pat@DOMAIN), sends
# RELAY_DOMAIN straight to RELAY_IP:25 (no DNS) with verified TLS against
# CA_PEM, and signs DOMAIN mail through OpenDKIM (selector "mail", key and
# TXT record in DIR/dkim/). Logs to DIR/maillog. Stop with stop.sh DIR.
# OpenDKIM is configured (DIR/opendkim.conf) but not started: the caller
# runs `opendkim -f -x DIR/opendkim.conf` as its own child and kills it.
set -eu
DIR=$1 IP=$2 DOMAIN=$3 RELAY_DOMAIN=$4 RELAY_IP=$5 CA=$6 CERT=$7 KEY=$8
mkdir -p "$DIR/queue" "$DIR/data" "$DIR/mail" "$DIR/dkim"
chown postfix:postfix "$DIR/mail" "$DIR/data"
chmod 755 "$DIR"
uid=$(id -u postfix); gid=$(id -g postfix)
[ -f "$DIR/dkim/mail.private" ] || opendkim-genkey -D "$DIR/dkim" -d "$DOMAIN" -s mail -b 2048
chmod 600 "$DIR/dkim/mail.private"
cat > "$DIR/opendkim.conf" <<CONF
Domain $DOMAIN
Selector mail
KeyFile $DIR/dkim/mail.private
Socket inet:8891@$IP
Mode s
Canonicalization relaxed/simple
InternalHosts 127.0.0.0/8
Syslog no
UMask 002
RequireSafeKeys false
CONF
# Only IP:25 is bound (inet_interfaces must name a configured interface
# address, and 127.0.0.x other than .1 is not one); no chroot.
cat > "$DIR/master.cf" <<CONF
$IP:smtp  inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
cat > "$DIR/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $DIR/queue
data_directory = $DIR/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $DIR/maillog
maillog_file_prefixes = $DIR
inet_interfaces = all
inet_protocols = ipv4
smtp_bind_address = $IP
myhostname = $DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_base = $DIR/mail
virtual_mailbox_maps = inline:{ pat@$DOMAIN=pat/ }
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
transport_maps = inline:{ {$RELAY_DOMAIN=smtp:[$RELAY_IP]:25} }
smtp_tls_security_level = verify
smtp_tls_policy_maps = inline:{ {[$RELAY_IP]:25=verify match=$RELAY_DOMAIN} }
smtp_tls_CAfile = $CA
smtp_tls_loglevel = 1
smtpd_tls_security_level = may
smtpd_tls_cert_file = $CERT
smtpd_tls_key_file = $KEY
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtpd_milters = inet:$IP:8891
non_smtpd_milters = \$smtpd_milters
milter_default_action = tempfail
delay_warning_time = 0
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
CONF
postfix -c "$DIR" check
postfix -c "$DIR" start
