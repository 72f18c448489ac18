// Connection-level faults of the one SSH connection: reported once, they fail what is in flight and everything after.

/** Errors the client reports after `ready` (a reset connection, a keepalive timeout): they fail what is in flight and everything after. */
export class Faults {
  error: Error | undefined;
  /** We closed the connection ourselves: its `close` is no fault. */
  closing = false;
  private readonly watchers = new Set<(e: Error) => void>();

  report(e: Error): void {
    this.error ??= e;
    for (const w of [...this.watchers]) w(e);
  }

  /** Call `fn` on the next fault (callers check `error` first); returns the unwatch function. */
  watch(fn: (e: Error) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }
}
