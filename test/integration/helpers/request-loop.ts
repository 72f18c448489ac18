// A bounded request loop on loopback, as users would hit the app during a deploy: one GET every `intervalMs`,
// each on a NEW connection (no keep-alive: a pooled connection would hide a listener that went away), counting
// failures, the longest run of them (the outage), and the answers seen.
import { request } from "node:http";
import { performance } from "node:perf_hooks";

export interface LoopStats {
  requests: number;
  failed: number;
  /** Milliseconds from the first failure of the longest run of failures to the next success. */
  longestOutageMs: number;
  /** Each distinct answer body, in the order first seen. */
  answers: string[];
  /** A few failure reasons, for the assertion message, each with when it happened (ms since the loop started). */
  errors: string[];
  /** When each answer was first seen, in ms since the loop started (`startedAt`, performance.now()). */
  firstSeenMs: Record<string, number>;
  startedAt: number;
}

function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: "close" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** Start the loop; `stop()` ends it (it also ends by itself after `maxMs`) and resolves with the counts. */
export function startLoop(url: string, intervalMs = 20, maxMs = 180_000): { stop: () => Promise<LoopStats> } {
  const stats: LoopStats = {
    requests: 0,
    failed: 0,
    longestOutageMs: 0,
    answers: [],
    errors: [],
    firstSeenMs: {},
    startedAt: performance.now(),
  };
  const started = Date.now();
  let running = true;
  let failingSince: number | null = null;
  const done = (async () => {
    while (running && Date.now() - started < maxMs) {
      const t = Date.now();
      stats.requests++;
      try {
        const r = await get(url, 30_000);
        if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.slice(0, 60)}`);
        if (!stats.answers.includes(r.body)) {
          stats.answers.push(r.body);
          stats.firstSeenMs[r.body] = performance.now() - stats.startedAt;
        }
        if (failingSince !== null) stats.longestOutageMs = Math.max(stats.longestOutageMs, Date.now() - failingSince);
        failingSince = null;
      } catch (e) {
        stats.failed++;
        if (stats.errors.length < 5)
          stats.errors.push(`${(e as Error).message} at ${Math.round(performance.now() - stats.startedAt)} ms`);
        failingSince ??= t;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - t))));
    }
    if (failingSince !== null) stats.longestOutageMs = Math.max(stats.longestOutageMs, Date.now() - failingSince);
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return stats;
    },
  };
}
