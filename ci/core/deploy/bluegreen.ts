// deploy/strategy blue-green: the new release starts beside the running one as the idle colour, behind a Caddy 2
// edge proxy that answers under the app's own name on the compose network (and on the public port when there is
// one). It is health-gated through its own check site before it gets any traffic; the switch is one atomic
// Caddyfile replacement and a graceful reload, run by the host to its end; the old colour drains, then stays up
// (warm) for deploy/proxy/warmSeconds — a rollback in that window is a switch — and is then stopped but kept.
// Taking over from a recreate-layout app (the migration) costs that app's one stop, when the proxy needs its port.
import { dependentsOf } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { PipelineError } from "../errors.js";
import type { Attempt } from "./attempt.js";
import {
  caddyfile,
  caddyHead,
  CHECK_PORT,
  colourService,
  other,
  PROXY_SERVICE,
  renderColour,
  upstreamPort,
} from "./colours.js";
import { step, type HostStep } from "./host/steps.js";
import { containersOf, healthOf, sections } from "./host/view.js";
import type { Colour } from "./journal.js";
import { checkContainer, recreate, releaseFiles, runsRelease } from "./recreate.js";
import { shortRelease } from "./release.js";
import { seconds } from "./report.js";
import type { HostPlan, Strategy } from "./strategy.js";

const healthPath = (d: DeployConfig) => {
  const u = new URL(d.health.url!);
  return `${u.pathname}${u.search}`;
};

/** The proxy's check-site ports on the host, from `docker port` lines (`9901/tcp -> 127.0.0.1:49153`). */
function checkPorts(a: Attempt, ports: Map<number, string>): void {
  for (const [k, p] of Object.entries(CHECK_PORT)) {
    const hp = ports.get(p);
    if (hp) a.facts[`check-${k}`] = hp.replace(/^0\.0\.0\.0:/, "127.0.0.1:");
  }
}

function portsOf(out: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of (sections(out).get("proxy") ?? "").split("\n")) {
    const x = /^(\d+)\/tcp -> (\S+)$/.exec(line.trim());
    if (x && !m.has(Number(x[1]))) m.set(Number(x[1]), x[2]!);
  }
  return m;
}

function checkUrl(a: Attempt, site: "live" | Colour): string {
  const hp = a.facts[`check-${site}`];
  if (!hp)
    throw new PipelineError(`the proxy publishes no check site for ${site} (is it running?)`, "candidate-health");
  return `http://${hp}${healthPath(a.d)}`;
}

/** The recreate-layout app being migrated: its running container's name (the proxy routes to it until the switch). */
function legacyName(a: Attempt): string | undefined {
  const m = a.placement.migrating;
  return m ? containersOf(a.view, m).find((c) => c.state === "running")?.name : undefined;
}

/** The old colour stays up after the switch (deploy/proxy/warmSeconds), so there is nothing to drain or stop now. */
function warmAfter(a: Attempt): boolean {
  const prev = a.current.previous;
  return a.d.proxy.warmSeconds > 0 && !a.placement.migrating && !!prev?.colour && prev.colour !== a.candidate.colour;
}

export const blueGreen: Strategy = {
  name: "blue-green",
  summary:
    "zero downtime: the new colour starts beside the live one behind a Caddy proxy and takes over only once healthy",
  composeHost: true,

  place(s, release, view, since, as) {
    const d = s.deploy;
    const j = view.journal;
    const live = j.live;
    const colour: Colour = as ?? (live?.colour ? other(live.colour) : "blue");
    // A recreate-layout app that runs is migrated: the proxy takes over its name (and its port, when published) —
    // one this tool deployed, or one it finds running (a stack started by hand or by another tool: adopted).
    const legacy = !live?.colour && containersOf(view, d.service).some((c) => c.state === "running");
    const head = (c: Colour) => [
      `rendered by hamalog (blue/green): ${c} runs sha ${release.sha}`,
      "do not edit: hamalog runs it from the release journal (journal.json)",
    ];
    const made = releaseFiles(
      s,
      release,
      since,
      (envFile) =>
        renderColour(s.compose, d, { colour, image: release.image, ...(envFile ? { envFile } : {}) }, head(colour)),
      colour,
    );
    const final = renderColour(s.compose, d, { colour, image: release.image }, head(colour));
    const facts: Record<string, string> = { proxyConfig: final.proxyConfig };
    const files = [...made.files];
    if (legacy && d.proxy.publish) {
      // Until the switch the recreate app holds the public port: the proxy starts without it, from this file.
      const pre = renderColour(
        s.compose,
        d,
        {
          colour,
          image: release.image,
          ...(made.slot.envFile ? { envFile: `${d.directory.replace(/\/+$/, "")}/${made.slot.envFile}` } : {}),
        },
        head(colour),
        false,
      );
      facts.preFile = made.slot.composeFile.replace(/\.yaml$/, ".pre.yaml");
      facts.preConfig = pre.proxyConfig;
      files.push({ path: `files/${facts.preFile}`, content: pre.yaml });
    }
    return { ...made, files, facts, ...(legacy ? { migrating: d.service } : {}) };
  },

  steps: [
    {
      phase: "proxy",
      does: "start the edge proxy, or leave it be when its definition is unchanged; its routes stay on what is live",
      async run(a: Attempt) {
        const d = a.d;
        const port = upstreamPort(a.compose, d.service);
        const live = a.current.live?.colour ?? null;
        const route = caddyfile(d, live, port, legacyName(a));
        const file = a.facts.preFile ?? a.candidate.composeFile;
        const want = a.facts.preConfig ?? a.facts.proxyConfig;
        const running = containersOf(a.view, PROXY_SERVICE).find((c) => c.state === "running");
        if (running && running.proxyConfig === want && a.view.caddyRoutes === caddyHead(route).routes) {
          checkPorts(a, a.view.proxyPorts);
          return `${PROXY_SERVICE} unchanged, its routes too (→ ${live ?? legacyName(a) ?? "nothing yet"})`;
        }
        if (running && running.proxyConfig === want) {
          const out = await a.exec({ op: "switch", args: ["stage/Caddyfile"] }, "proxy", {
            files: [{ path: "stage/Caddyfile", content: route }],
          });
          checkPorts(a, a.view.proxyPorts);
          return `${PROXY_SERVICE} unchanged; routes → ${live ?? legacyName(a) ?? "nothing yet"}${out.includes("unchanged") ? "" : " (routes reloaded)"}`;
        }
        const t = a.s.rep.clock.monotonic();
        const out = await a.exec(
          { op: "proxy_up", args: [file, a.candidate.envFile ?? "", running ? "1" : "0"] },
          "proxy",
          {
            detach: true,
            files: [{ path: "files/proxy/Caddyfile", content: route, mode: 0o644 }],
          },
        );
        checkPorts(a, portsOf(out));
        if (!running)
          return `${PROXY_SERVICE} started (${d.proxy.image}); routes → ${live ?? legacyName(a) ?? "nothing yet"}`;
        // Its definition changed (image, ports, networks): recreated, so its port and address were gone meanwhile.
        const gap = seconds(a.s.rep.clock.monotonic() - t);
        a.outages.push(
          `the edge proxy's definition changed, so it was recreated (its routes were down for up to ${gap})`,
        );
        const deps = dependentsOf(a.compose, d.service).filter((x) =>
          containersOf(a.view, x).some((c) => c.state === "running"),
        );
        if (deps.length) {
          await a.exec(step.restart(deps), "proxy", { detach: true });
          a.outages.push(`${deps.join(", ")} restarted to resolve ${d.service} to the new proxy`);
        }
        return `${PROXY_SERVICE} recreated (its definition changed) in ${gap}`;
      },
    },
    {
      phase: "candidate",
      does: "start the idle colour pinned by digest (compose up --wait), run by the host to its end; no traffic yet",
      diagnose: true,
      async run(a: Attempt) {
        const d = a.d;
        const svc = colourService(d.service, a.candidate.colour!);
        const warm = containersOf(a.view, svc).find(
          (c) => c.state === "running" && runsRelease(a.view, c, a.candidate) && healthOf(c.status) !== "unhealthy",
        );
        if (warm && a.current.previous?.composeFile === a.candidate.composeFile)
          return `${svc} already runs ${a.candidate.digest.slice(0, 19)}… (kept warm): nothing to start`;
        await a.exec(step.up(a.candidate, d.waitTimeout, [svc], `start ${svc}`), "candidate", { detach: true });
        return `${svc} runs ${a.candidate.digest.slice(0, 19)}… (no live traffic yet)`;
      },
    },
    {
      phase: "candidate-health",
      does: "GET the health path through the candidate's own check site (never the live route)",
      diagnose: true,
      async run(a: Attempt) {
        return `${await a.gate(checkUrl(a, a.candidate.colour!), "candidate-health")} (check site)`;
      },
    },
    {
      phase: "switch",
      does: "route the app's name and the public port to the candidate: one Caddyfile rename + graceful reload, on the host",
      async run(a: Attempt) {
        const d = a.d;
        const port = upstreamPort(a.compose, d.service);
        const route = caddyfile(d, a.candidate.colour!, port);
        const was = a.current.live?.colour ?? a.placement.migrating;
        a.touched = true;
        if (a.facts.preFile) {
          const t = a.s.rep.clock.monotonic();
          const out = await a.exec(
            { op: "migrate", args: [a.candidate.composeFile, a.candidate.envFile ?? "", a.placement.migrating!] },
            "switch",
            { detach: true, files: [{ path: "files/proxy/Caddyfile", content: route, mode: 0o644 }] },
          );
          checkPorts(a, portsOf(out));
          const [x, y] = (sections(out).get("outage") ?? "").trim().split(" ").map(Number);
          const gap = x && y && y > x ? `${((y - x) / 1000).toFixed(1)}s` : seconds(a.s.rep.clock.monotonic() - t);
          a.outages.push(
            `migrated from recreate: the public port was closed for ${gap} while the proxy took it over from ${a.placement.migrating}`,
          );
        } else {
          await a.exec({ op: "switch", args: ["stage/Caddyfile"] }, "switch", {
            detach: true,
            files: [{ path: "stage/Caddyfile", content: route }],
          });
        }
        a.switchedAt = a.now;
        if (a.placement.migrating) {
          // What resolved the app's name when it started still reaches the old container: restarted once, it
          // resolves the proxy.
          const deps = dependentsOf(a.compose, d.service).filter((x) =>
            containersOf(a.view, x).some((c) => c.state === "running"),
          );
          if (deps.length) {
            await a.exec(step.restart(deps), "switch", { detach: true });
            a.outages.push(`${deps.join(", ")} restarted once, so ${d.service} resolves to the proxy from now on`);
          }
        }
        return `${d.service} → ${a.candidate.colour} (was ${was ?? "nothing"})`;
      },
    },
    {
      phase: "live-health",
      does: "GET the health path through the live route",
      async run(a: Attempt) {
        return a.gate(checkUrl(a, "live"), "live-health");
      },
    },
  ],

  afterLive: [
    {
      phase: "drain",
      does: "let the old colour finish what it serves (deploy/proxy/drainSeconds; Ctrl-C cuts it short)",
      async run(a: Attempt) {
        const { clock } = a.s.rep;
        const secs = a.d.proxy.drainSeconds;
        const sig0 = a.s.input.signal;
        if (warmAfter(a) && !sig0?.aborted) return "the old colour stays up (warm): nothing to drain";
        // Before waiting, the journal names the new colour live: a crash or a dropped connection during the drain
        // then finishes forward (the old colour is stopped) instead of switching back.
        if (!sig0?.aborted) await a.exec({ op: "noop", args: [] }, "drain");
        const end = clock.monotonic() + secs * 1000;
        // Even cut short, requests the old colour accepted just before the switch get a second to finish.
        const floor = clock.monotonic() + Math.min(secs, 1) * 1000;
        const sig = a.s.input.signal;
        while (clock.monotonic() < end && (!sig?.aborted || clock.monotonic() < floor))
          await clock.sleep(Math.min(250, end - clock.monotonic()));
        return `${secs}s for in-flight requests on the old colour${sig?.aborted ? " (interrupted: cut short, the new colour is live)" : ""}`;
      },
    },
    {
      phase: "retire",
      does: "keep the old colour up for deploy/proxy/warmSeconds (an instant rollback), then stop it (kept)",
      async run(a: Attempt) {
        const d = a.d;
        if (a.placement.migrating) {
          await a.exec(step.remove([a.placement.migrating]), "retire", { detach: true });
          return `removed the recreate-layout container of ${a.placement.migrating} (migrated)`;
        }
        const prev = a.current.previous;
        if (!prev?.colour || prev.colour === a.candidate.colour) return "first blue/green release: no old colour";
        const svc = colourService(d.service, prev.colour);
        if (warmAfter(a) && !a.s.input.signal?.aborted) {
          // Nothing to run now: the journal says it (with the finish) and the host's timer stops it later.
          const until = new Date(a.s.env.clock.now().getTime() + d.proxy.warmSeconds * 1000);
          a.write({ ...a.current, previous: { ...prev, warmUntil: until.toISOString() } });
          a.facts.warmUntil = String(Math.floor(until.getTime() / 1000));
          a.facts.warmService = svc;
          return `${svc} stays up until ${until.toISOString()} (warm: a rollback until then is a switch), then is stopped and kept`;
        }
        await a.exec(step.stop([svc]), "retire", { detach: true });
        return `${svc} stopped and kept (a rollback starts it again)`;
      },
    },
  ],

  touchesLive: "switch",

  undo(j, s, back) {
    const d = s.deploy;
    const a = j.attempt!;
    const cand = colourService(d.service, a.candidate.colour!);
    const live = j.live;
    const order = this.steps.map((x) => x.phase);
    if (a.migrating) {
      // The migration (or the adoption of a stack nothing recorded) did not finish: the proxy and the candidate go,
      // the recreate-layout app runs (started again if the switch stopped it), and what the switch restarted to
      // resolve the app's name to the proxy is restarted once more, to resolve it to the app again.
      const switched = order.indexOf(a.phase) >= order.indexOf("switch");
      const deps = switched ? dependentsOf(s.compose, d.service) : [];
      return {
        steps: [
          step.remove([PROXY_SERVICE, cand], "remove the proxy and the candidate (the migration did not finish)"),
          ...(live ? back.steps : [step.start([a.migrating], `start ${a.migrating} again`)]),
          ...(deps.length
            ? [step.restart(deps, `restart ${deps.join(", ")} so ${d.service} resolves to the app again`)]
            : []),
        ],
        files: live ? back.files : [],
      };
    }
    if (!live) {
      const port = upstreamPort(s.compose, d.service);
      return {
        steps: [
          step.route(".hamalog/recover/Caddyfile", a.candidate, "route nothing (nothing was live)"),
          step.remove([cand]),
        ],
        files: [{ path: "Caddyfile", content: caddyfile(d, null, port) }],
      };
    }
    // Before its start, the candidate's colour still holds the kept release: it is left as it is. Once started it
    // replaced it (a rollback's candidate IS the kept release: stopped, it stays kept).
    if (order.indexOf(a.phase) < order.indexOf("candidate")) return back;
    const isPrevious = j.previous?.composeFile === a.candidate.composeFile && j.previous.colour === a.candidate.colour;
    return {
      steps: [
        ...back.steps,
        isPrevious ? step.stop([cand], `stop ${cand} (kept)`) : step.remove([cand], `remove the candidate ${cand}`),
      ],
      files: back.files,
      dropsPrevious: !isPrevious && j.previous?.colour === a.candidate.colour,
    };
  },

  forward(j, s): HostPlan {
    const a = j.attempt!;
    if (a.migrating) return { steps: [step.remove([a.migrating], `remove the migrated ${a.migrating}`)], files: [] };
    const prev = j.previous;
    if (!prev?.colour || prev.colour === a.candidate.colour) return { steps: [], files: [] };
    return {
      steps: [step.stop([colourService(s.deploy.service, prev.colour)], `stop the old colour ${prev.colour} (kept)`)],
      files: [],
    };
  },

  restore(live, s) {
    if (!live.colour) return recreate.restore(live, s);
    const d = s.deploy;
    const port = upstreamPort(s.compose, d.service);
    const steps: HostStep[] = [
      step.up(live, d.waitTimeout, [colourService(d.service, live.colour)], `bring ${shortRelease(live)} up`),
      step.route(".hamalog/recover/Caddyfile", live, `route ${d.service} to ${live.colour}`),
    ];
    return { steps, files: [{ path: "Caddyfile", content: caddyfile(d, live.colour, port) }] };
  },

  check(live, view, s) {
    if (!live.colour) return recreate.check(live, view, s);
    const out = checkContainer(view, colourService(s.deploy.service, live.colour), live);
    const proxy = containersOf(view, PROXY_SERVICE)[0];
    if (proxy?.state !== "running") out.push(`the proxy ${PROXY_SERVICE} is ${proxy?.state ?? "absent"}`);
    if (view.caddyLive !== live.colour)
      out.push(`the journal's live colour is ${live.colour}, but the proxy routes to ${view.caddyLive ?? "nothing"}`);
    return out;
  },

  status(j, view, s) {
    const d = s.deploy;
    const live = j.live;
    const state = (c: Colour) => {
      const x = containersOf(view, colourService(d.service, c))[0];
      return x
        ? `${x.state === "exited" ? "stopped" : x.state}${x.state === "running" ? `, health ${healthOf(x.status)}` : ""}`
        : "absent";
    };
    const lines: string[] = [];
    const mismatches = live ? this.check(live, view, s) : [];
    if (live?.colour)
      lines.push(`colour: ${live.colour} (${colourService(d.service, live.colour)} ${state(live.colour)})`);
    const prev = j.previous;
    if (prev?.colour) {
      const svc = colourService(d.service, prev.colour);
      const c = containersOf(view, svc)[0];
      const ran = c ? runsRelease(view, c, prev) : false;
      const warm = prev.warmUntil && c?.state === "running" ? ` warm until ${prev.warmUntil}` : "";
      lines.push(
        `kept: ${prev.colour} ${shortRelease(prev)} (${state(prev.colour)}${warm}; \`hamalog rollback\` ${warm ? "switches to it" : "starts it"})`,
      );
      if (c && !ran)
        mismatches.push(
          `the kept colour ${prev.colour} now runs ${c.image}, not ${shortRelease(prev)}: a dead candidate replaced it (a rollback re-creates it)`,
        );
      if (!c) mismatches.push(`the kept colour ${prev.colour} has no container: a rollback re-creates it`);
    } else if (live?.colour)
      lines.push(`kept: none (${colourService(d.service, other(live.colour))} ${state(other(live.colour))})`);
    const proxy = containersOf(view, PROXY_SERVICE)[0];
    lines.push(
      `proxy: ${proxy?.state ?? "absent"}, routes ${d.service}${d.proxy.publish ? ` and ${d.proxy.publish}` : ""} → ${view.caddyLive ?? "nothing"}`,
    );
    return { lines, mismatches };
  },

  appContainers(view, s) {
    return [
      ...containersOf(view, colourService(s.deploy.service, "blue")),
      ...containersOf(view, colourService(s.deploy.service, "green")),
    ];
  },
};
