// `status`: what runs now on the host — the release history says is running (digest, sha), the container's
// state and health as Docker sees it, the health URL's answer, and the last history lines. Read-only.
import { colourService, other, PROXY_SERVICE } from "./colours.js";
import { cmd, composeArgs } from "./commands.js";
import { observe } from "./proxy.js";
import { currentRelease, lastEntries, type HistoryEntry, type Running } from "./history.js";
import { readHistory, withSession, type DeployEnv, type DeployInput } from "./session.js";

export interface StatusReport {
  running: Running | null;
  container: { state: string; health: string; image: string } | null;
  health: string | null;
  history: HistoryEntry[];
}

export async function status(input: DeployInput & { lines?: number }, env: DeployEnv): Promise<StatusReport> {
  return withSession(input, env, async (s) => {
    const { rep, remote, l, project } = s;
    const d = input.deploy;
    const entries = await readHistory(s);
    const running = currentRelease(entries);
    let container: StatusReport["container"] = null;
    const ps = await remote.run(cmd.compose(project, l.compose, composeArgs.psJson(d.service)), { timeoutMs: 30_000 });
    if (ps.code === 0) {
      for (const line of ps.stdout.split("\n")) {
        if (!line.trim()) continue;
        try {
          const parsed = JSON.parse(line) as Record<string, string> | Record<string, string>[];
          const c = Array.isArray(parsed) ? parsed[0] : parsed;
          if (c) container = { state: c.State ?? "?", health: c.Health || "no healthcheck", image: c.Image ?? "?" };
        } catch {
          // older compose printed other formats; leave container unknown
        }
      }
    }
    let health: string | null = null;
    if (d.health.url) {
      try {
        const r = await remote.httpGet(d.health.url, 5000);
        health = `${d.health.url} → HTTP ${r.status}${r.status === d.health.expectStatus ? " (healthy)" : ` (expected ${d.health.expectStatus})`}`;
      } catch (e) {
        health = `${d.health.url} → no answer (${(e as Error).message})`;
      }
    }
    const history = lastEntries(entries, input.lines ?? 5);
    rep.out(`[status] ${remote.label} ${l.dir} (project ${project}, service ${d.service})`);
    rep.out(
      running
        ? `running: ${running.image}\n  digest ${running.digest}\n  sha    ${running.sha}${running.fallback ? " (FALLBACK: latest was deployed for this sha)" : ""}`
        : entries.length === 0
          ? `running: nothing deployed here yet (${l.history} on ${remote.label} has no history) — \`hamalog deploy\` makes the first release; if one was made, check deploy/directory`
          : `running: nothing (the last attempt in ${l.history} left nothing running — see below)`,
    );
    const view = await observe(s);
    const proxy = view.containers.get(PROXY_SERVICE);
    if (running?.colour || proxy) {
      // Blue/green: the live colour (what the proxy routes to), the kept colour, and the proxy itself.
      const live = view.caddyLive ?? running?.colour ?? null;
      const kept = entries.at(-1)?.kept ?? null;
      const state = (c: string) => {
        const st = view.containers.get(colourService(d.service, c as "blue"))?.state ?? "absent";
        return st === "exited" ? "stopped" : st;
      };
      rep.out(`live: ${live ?? "none"}${live ? ` (${colourService(d.service, live)} ${state(live)})` : ""}`);
      if (live) {
        const idle = other(live);
        rep.out(
          kept
            ? `kept: ${kept.colour ?? idle} ${kept.sha.slice(0, 12)} ${kept.digest.slice(0, 19)}… (${state(kept.colour ?? idle)}; \`hamalog rollback\` starts it)`
            : `kept: none (${colourService(d.service, idle)} ${state(idle)})`,
        );
      }
      rep.out(`proxy: ${proxy?.state ?? "absent"}, routes ${d.proxy.publish ?? "?"} → ${view.caddyLive ?? "nothing"}`);
    } else {
      rep.out(
        container
          ? `container: ${container.state}, health ${container.health}, image ${container.image}`
          : `container: none for ${d.service}`,
      );
    }
    if (health) rep.out(`health: ${health}`);
    if (history.length > 0) rep.out(`last ${history.length} of ${entries.length} history line(s) (${l.history}):`);
    for (const e of history) {
      rep.out(
        `  ${e.time} ${e.action} ${e.sha.slice(0, 12)} ${e.digest.slice(0, 19)}… ${e.colour ? `${e.colour} ` : ""}${e.result}${e.fallback ? " fallback" : ""}${e.failedPhase ? ` (${e.interrupted ? "interrupted" : "failed"} in ${e.failedPhase})` : ""} ${(e.durationMs / 1000).toFixed(1)}s`,
      );
    }
    return { running, container, health, history };
  });
}
