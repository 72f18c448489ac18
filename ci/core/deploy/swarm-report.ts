// What the swarm strategy says, pure: whether the manager runs the journal's live release (the check reconcile,
// status and a re-run make), status's lines per node, and the outcome of a watched rolling update — its summary
// when every task runs the release healthy, or the error naming each failed task's node, error and last health
// output when Swarm rolled it back, paused it, or it ran out of time.
import { sections } from "./host/view.js";
import type { Slot } from "./journal.js";
import { shortRelease } from "./release.js";
import { EDGE_SERVICE, releaseLabel } from "./swarm-stack.js";
import {
  desiredTasks,
  digestOf,
  hostnameOf,
  parseSwarm,
  serviceOf,
  taskHealth,
  type SwarmSeen,
  type SwarmTaskSeen,
} from "./swarm-view.js";

/** A task line of one still on its way up (new … starting). */
const FLIGHT = /^task \S+ on \S+: (new|pending|assigned|accepted|preparing|ready|starting)\b/;
const d12 = (digest: string) => (digest ? `${digest.slice(0, 19)}…` : "(no digest)");

/** Where the manager differs from the live release (empty: it runs it). `stack`/`service`: the names. */
export function checkSwarm(sw: SwarmSeen, live: Slot, stack: string, service: string, where: string): string[] {
  if (!sw.observed) return [];
  if (sw.error && sw.services.length === 0) return [`the manager's API did not answer (${sw.error.split("\n")[0]})`];
  if (!sw.manager) return [`${where} is not a swarm manager (state ${sw.state || "unknown"}): it cannot run the stack`];
  const app = serviceOf(sw, stack, service);
  if (!app)
    return [`the live release ${shortRelease(live)} is not running: the stack ${stack} has no service ${service}`];
  const out: string[] = [];
  if (digestOf(app.image) !== live.digest)
    out.push(`the live release is ${shortRelease(live)}, but Swarm's spec for ${app.name} is ${app.image}`);
  else if (app.release !== releaseLabel(live.composeFile))
    out.push(`${app.name} runs another definition of ${shortRelease(live)} (release ${app.release || "unlabelled"})`);
  if (/paused/.test(app.update)) out.push(`${app.name}'s update is ${app.update} (${app.message})`);
  const others = desiredTasks(sw, app).filter((t) => t.state === "running" && digestOf(t.image) !== live.digest);
  if (others.length)
    out.push(
      `Swarm runs something else: ${others.map((t) => `task ${t.slot} on ${hostnameOf(sw, t.nodeId)} runs ${d12(digestOf(t.image))}`).join(", ")}`,
    );
  if (!serviceOf(sw, stack, EDGE_SERVICE)) out.push(`the edge ${stack}_${EDGE_SERVICE} is absent`);
  return out;
}

/** One line per node: the stack's tasks Swarm means to run there, each with its digest, state and health. */
export function swarmStatusLines(sw: SwarmSeen, stack: string, service: string, live: Slot | null): string[] {
  if (!sw.observed) return ["swarm: not observed (the journal names no swarm release yet)"];
  const lines: string[] = [];
  const me = sw.nodes.find((n) => n.self);
  lines.push(
    `swarm: ${me ? `manager ${me.hostname} (${me.manager || "worker"})` : `this node is ${sw.manager ? "a manager" : `not a manager (${sw.state})`}`}; ${sw.nodes.length} node(s): ${sw.nodes.map((n) => `${n.hostname} ${n.status}${n.availability !== "Active" ? `/${n.availability}` : ""}`).join(", ")}`,
  );
  if (sw.error) lines.push(`swarm API: ${sw.error.split("\n")[0]}`);
  const app = serviceOf(sw, stack, service);
  if (app) {
    const want = desiredTasks(sw, app);
    const on = live ? want.filter((t) => t.state === "running" && digestOf(t.image) === live.digest).length : 0;
    lines.push(
      `service ${app.name}: ${on}/${app.replicas} task(s) run the live release${app.update ? `; update ${app.update}${app.message ? ` (${app.message})` : ""}` : ""}`,
    );
  } else lines.push(`service ${stack}_${service}: absent`);
  const byService = new Map(sw.services.map((s) => [s.id, s]));
  const nodes = [...sw.nodes].sort((a, b) => a.hostname.localeCompare(b.hostname));
  for (const n of nodes) {
    const mine = sw.tasks.filter((t) => t.nodeId === n.id && t.desired === "running");
    const parts = mine.map((t) => {
      const svc = byService.get(t.serviceId);
      const short = svc ? svc.name.slice(stack.length + 1) : "?";
      const tag = live && svc === app && digestOf(t.image) !== live.digest ? " NOT LIVE" : "";
      return `${short}${/^\d+$/.test(t.slot) && t.slot !== "0" ? `.${t.slot}` : ""} ${t.state} ${taskHealth(t, svc)} ${d12(digestOf(t.image))}${tag}`;
    });
    lines.push(`  ${n.hostname} (${n.status}): ${parts.length ? parts.join("; ") : "no tasks"}`);
  }
  const others = sw.services.filter((s) => s !== app);
  if (others.length)
    lines.push(
      `stack services: ${others
        .map((s) => {
          const run = desiredTasks(sw, s).filter((t) => t.state === "running").length;
          return `${s.name.slice(stack.length + 1)} ${run}/${s.replicas === "global" ? `global (${sw.nodes.length} nodes)` : s.replicas}`;
        })
        .join(", ")}`,
    );
  return lines;
}

export interface WatchOutcome {
  /** converged, rollback_started, rollback_completed, rollback_paused, paused, failing, timeout, unreachable, missing */
  outcome: string;
  seconds: number;
  swarm: SwarmSeen;
  /** How many times the update hung on a task placed on a node that died and was issued again (0: never). */
  unstuck: number;
  /** Lines describing the tasks of the release that did not make it. */
  failures: string[];
  apiError: string;
}

/** The watch's output (op_swarm_wait). */
export function parseWatch(stdout: string): WatchOutcome {
  const s = sections(stdout);
  const [outcome = "unknown", secs = "0", unstuck = "0"] = (s.get("swarm-outcome") ?? "").trim().split(/\s+/);
  const sw = parseSwarm(s);
  const failures: string[] = [];
  const byTask = new Map<string, { head: string; health?: string; logs: string[] }>();
  for (const line of (s.get("swarm-failures") ?? "").split("\n")) {
    const [kind, id, ...rest] = line.split("\t");
    if (!id) continue;
    if (kind === "task") {
      const [node, state, ...err] = rest;
      const e = err.join(" ").trim();
      // A task whose container exits 0 when Swarm stops it (a graceful app) ends `complete`, with no error.
      const said =
        e ||
        (state === "complete"
          ? "its container exited before it was ever healthy (Swarm stops a task whose healthcheck fails)"
          : "");
      byTask.set(id, {
        head: `task ${id.slice(0, 12)} on ${hostnameOf(sw, node ?? "")}: ${state}${said ? ` — ${said}` : ""}`,
        logs: [],
      });
    } else if (kind === "health" && byTask.get(id)) byTask.get(id)!.health = rest.join(" ");
    else if (kind === "log" && byTask.get(id)) byTask.get(id)!.logs.push(rest.join(" "));
  }
  for (const t of byTask.values()) {
    failures.push(
      `${t.head}; last health output: ${t.health ?? "(its container is on another node: read it there with docker inspect)"}`,
    );
    for (const l of t.logs) failures.push(`    log: ${l.slice(0, 200)}`);
  }
  return {
    outcome,
    seconds: Number(secs) || 0,
    unstuck: Number(unstuck) || 0,
    swarm: sw,
    failures,
    apiError: (s.get("swarm-api-error") ?? "").trim(),
  };
}

/** The watch's summary when the update converged, else the error (one line, then a line per failed task). */
export function judgeWatch(
  w: WatchOutcome,
  o: { stack: string; service: string; digest: string; wait: number; grace: number },
): { ok: true; summary: string } | { ok: false; error: string } {
  const app = serviceOf(w.swarm, o.stack, o.service);
  const want = desiredTasks(w.swarm, app);
  const nodes = (ts: SwarmTaskSeen[]) => [...new Set(ts.map((t) => hostnameOf(w.swarm, t.nodeId)))].sort().join(", ");
  if (w.outcome === "converged")
    return {
      ok: true,
      summary: `${want.length}/${app?.replicas ?? want.length} task(s) run ${d12(o.digest)} healthy on ${nodes(want) || "?"}${app?.update ? ` (update ${app.update})` : ""} after ${w.seconds}s${w.unstuck ? `; Swarm's update hung on a task placed on a node that went Down: issued again with --force ${w.unstuck === 1 ? "once" : "twice"}` : ""}`,
    };
  const on = want.filter((t) => t.state === "running" && digestOf(t.image) === o.digest).length;
  const why: Record<string, string> = {
    rollback_started: `Swarm rolled the update back (${app?.message || "a task of the release failed"})`,
    rollback_completed: `Swarm rolled the update back (${app?.message || "a task of the release failed"})`,
    rollback_paused: `Swarm's rollback paused (${app?.message || "?"}): the service needs a deploy`,
    paused: `Swarm paused the update (${app?.message || "?"})`,
    failing: `tasks of the release keep failing and there is no update for Swarm to roll back (a first release)`,
    timeout: `the update did not finish within ${o.wait}s (deploy/waitTimeout; ${on}/${app?.replicas ?? "?"} tasks run the release, update ${app?.update || "not started"}) — raise deploy/waitTimeout if the app starts slowly`,
    unreachable: `the manager's API did not answer for ${o.grace}s (${w.apiError.split("\n").pop() ?? "?"})`,
    missing: `the service ${o.stack}_${o.service} is gone (removed while the update ran)`,
  };
  const head = why[w.outcome] ?? `the watch ended with ${w.outcome}`;
  // After a rollback the slot's retry (still pending) is not what failed: only the tasks that ended are named.
  const ended = ["timeout", "unreachable"].includes(w.outcome)
    ? w.failures
    : w.failures.filter((l, i, all) => !FLIGHT.test(l) && !(l.startsWith("    log:") && FLIGHT.test(all[i - 1] ?? "")));
  return {
    ok: false,
    error: [
      head,
      ...(ended.length ? ended.map((l) => `  ${l}`) : ["  (no failed task of the release was recorded)"]),
    ].join("\n"),
  };
}
