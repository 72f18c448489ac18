// The ONE place an argv array becomes a remote shell string. SSH runs a command line through the remote user's
// shell, so every word is single-quoted (`'` becomes `'\''`): nothing in a word is ever interpreted by that
// shell, whatever it contains (`;`, `$()`, backticks, quotes, newlines). Callers never build command strings.

/** Quote one word for a POSIX shell: the result is always a single word equal to `word`. */
export function quoteWord(word: string): string {
  if (word.includes("\0")) throw new Error("internal: a shell word cannot contain a NUL byte");
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Turn argv into one shell command line, every word quoted. */
export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("internal: empty command");
  return argv.map(quoteWord).join(" ");
}
