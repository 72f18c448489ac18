// How a remote command that takes no stdin is tied to its SSH channel, so closing the channel stops it.

/**
 * Closing an SSH channel does not stop its command: without a pty sshd sends no SIGHUP, so an interrupted or
 * timed-out `docker compose up --wait` would go on and race the rollback's own `up`. (The SSH `signal` request
 * is no way out: OpenSSH refuses it in some setups — "session signalling requires privilege separation".) So a
 * command that needs no stdin runs with stdin from /dev/null, beside a watcher reading the channel's stdin,
 * which the client never ends: that read ends only when the channel closes, and then the watcher TERMs the
 * session's process group (sshd makes one per session: the command and all it started, e.g. the compose
 * plugin). When the command ends first, the watcher is killed and the command's exit code is passed on. The
 * script is a constant; the command arrives as "$@", quoted like every argv.
 */
export const TIED =
  'exec 3<&0; "$@" </dev/null 3<&- & cmd=$!; (cat <&3 >/dev/null 2>&1; kill -TERM 0) >/dev/null 2>&1 & watcher=$!; ' +
  'exec 3<&-; wait "$cmd"; code=$?; kill "$watcher" 2>/dev/null; exit "$code"';

export function tied(argv: readonly string[]): string[] {
  return ["sh", "-c", TIED, "hamalog-run", ...argv];
}
