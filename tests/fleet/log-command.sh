#!/bin/bash
# ForceCommand of every fleet host: append the command the client sent to the host's command log,
# then run it as sshd would have (the login shell with -c), so stdin, stdout, stderr, environment
# and exit status pass through unchanged. One line per command: "<epoch seconds> <command>", with
# backslashes doubled and newlines written as \n. Builtins only, to keep the overhead small.
# An empty command is a login shell; the sftp subsystem arrives as its command
# (/usr/lib/openssh/sftp-server), so it is logged and run like any other.
cmd=${SSH_ORIGINAL_COMMAND-}
unset SSH_ORIGINAL_COMMAND  # a session without ForceCommand does not have it
line=${cmd//\\/\\\\}
line=${line//$'\n'/\\n}
{ printf '%s %s\n' "$EPOCHREALTIME" "$line" >>/run/fleet-host/commands.log; } 2>/dev/null
unset line
if [ -z "$cmd" ]; then
    unset cmd
    exec -l "${SHELL:-/bin/sh}"
fi
set -- "$cmd"
unset cmd
exec "${SHELL:-/bin/sh}" -c "$1"
