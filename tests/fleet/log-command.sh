#!/bin/bash
# ForceCommand of every fleet host: append the command the client sent to the host's command log,
# then run it as sshd would have (the login shell with -c), so stdin, stdout, stderr, environment
# and exit status pass through unchanged. One line per command: "<epoch seconds> <command>", with
# backslashes doubled and newlines written as \n. Builtins only, to keep the overhead small.
cmd=${SSH_ORIGINAL_COMMAND-}
line=${cmd//\\/\\\\}
line=${line//$'\n'/\\n}
{ printf '%s %s\n' "$EPOCHREALTIME" "$line" >>/run/fleet-host/commands.log; } 2>/dev/null
unset line
if [ -z "$cmd" ]; then
    unset cmd
    exec -l "${SHELL:-/bin/sh}"
fi
if [ "$cmd" = sftp ]; then
    unset cmd
    exec /usr/lib/openssh/sftp-server
fi
set -- "$cmd"
unset cmd
exec "${SHELL:-/bin/sh}" -c "$1"
