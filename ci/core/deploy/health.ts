// The HTTP health gate: GET the configured URL from the host (tunnelled over the SSH connection, so nothing
// needs curl on the server) until it answers the expected status or the timeout passes. Defaults suit a Spring
// Boot app: 120 s, because a minute of JVM start-up is normal.
import { ConnectionLost } from "../errors.js";
import type { Remote } from "./remote.js";
import type { Clock } from "./report.js";

export interface HealthSpec {
  url: string;
  timeout: number;
  interval: number;
  expectStatus: number;
}

export interface HealthResult {
  ok: boolean;
  attempts: number;
  /** The last answer or error, for messages. */
  last: string;
}

export async function waitHealthy(
  remote: Remote,
  spec: HealthSpec,
  clock: Clock,
  signal?: AbortSignal,
): Promise<HealthResult> {
  const deadline = clock.monotonic() + spec.timeout * 1000;
  let attempts = 0;
  let last = "no answer yet";
  for (;;) {
    attempts++;
    const left = Math.max(1000, deadline - clock.monotonic());
    try {
      const r = await remote.httpGet(spec.url, Math.round(Math.min(left, 10_000)));
      last = `HTTP ${r.status} ${r.body.trim().replace(/\s+/g, " ").slice(0, 200)}`;
      if (r.status === spec.expectStatus) return { ok: true, attempts, last };
    } catch (e) {
      // A dead connection answers nothing until the deadline: fail now, so the procedure can reconnect.
      if (e instanceof ConnectionLost) throw e;
      last = (e as Error).message;
    }
    if (signal?.aborted || clock.monotonic() + spec.interval * 1000 > deadline) return { ok: false, attempts, last };
    await clock.sleep(spec.interval * 1000);
  }
}
