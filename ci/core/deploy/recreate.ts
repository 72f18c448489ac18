// deploy/strategy recreate: compose replaces the app's container in place (`up --no-deps --wait`, run by the host
// to its end), then the HTTP health gate. Simple and cheap — and every deploy has a gap while the new container
// starts (a Spring Boot app: its whole start-up), which the output says. Leaving blue/green, the proxy and the
// colours go first (they hold the public port).
import { renderCompose } from "../compose.js";
import { COLOURS, colourService, PROXY_SERVICE } from "./colours.js";
import { step } from "./host/steps.js";
import { containersOf, healthOf, type ContainerSeen, type HostView } from "./host/view.js";
import { releaseBase, type Slot } from "./journal.js";
import { shortRelease, type Release } from "./release.js";
import { seconds } from "./report.js";
import type { HostPlan, Placement, Setting, Strategy } from "./strategy.js";
import type { Attempt } from "./attempt.js";

/** The files of a release: the compose file, and its env file when the release has an environment. */
export function releaseFiles(
  s: Setting,
  release: Release,
  since: string,
  render: (envFileOnHost: string | undefined) => { yaml: string; warnings: string[] },
  colour?: Slot["colour"],
): Pick<Placement, "slot" | "files" | "compose" | "warnings"> {
  const dir = s.deploy.directory.replace(/\/+$/, "");
  // The name hashes what runs: the template rendered with a placeholder env path, and the environment itself.
  const envText = s.env();
  const probe = render(envText !== undefined ? "ENV" : undefined).yaml;
  const base = releaseBase(release.digest, `${probe}\n${envText ?? ""}`, colour);
  const envFile = envText !== undefined ? `${base}.env` : undefined;
  const r = render(envFile ? `${dir}/${envFile}` : undefined);
  const slot: Slot = {
    ...release,
    ...(colour ? { colour } : {}),
    composeFile: `${base}.yaml`,
    ...(envFile ? { envFile } : {}),
    since,
  };
  return {
    slot,
    compose: r.yaml,
    warnings: r.warnings,
    files: [
      { path: `files/${slot.composeFile}`, content: r.yaml },
      ...(envFile ? [{ path: `files/${envFile}`, content: envText! }] : []),
      // What the template bind-mounts (read by containers: world-readable, as in a checkout).
      ...(s.files ?? []).map((f) => ({ path: `files/${f.path}`, content: f.content })),
      ...(s.files?.length ? [{ path: "modes", content: s.files.map((f) => `0644 ${f.path}\n`).join("") }] : []),
    ],
  };
}

/** Whether container `c` runs release `r`'s image: by reference, by digest, or by image id (a name may be lost). */
export function runsRelease(view: HostView, c: ContainerSeen, r: Release): boolean {
  const id = view.imageIds.get(r.digest);
  return c.image === r.image || c.image.endsWith(`@${r.digest}`) || (id !== undefined && c.imageId === id);
}

/** Whether the app's container runs `live`'s image, healthy (empty: it does). */
export function checkContainer(view: HostView, service: string, live: Slot): string[] {
  const cs = containersOf(view, service);
  const running = cs.filter((c) => c.state === "running");
  if (running.length === 0)
    return [`the live release ${shortRelease(live)} is not running (${service}: ${cs[0]?.state ?? "no container"})`];
  const mine = running.find((c) => runsRelease(view, c, live));
  if (!mine)
    return [
      `the live release is ${shortRelease(live)}, but ${running.map((c) => `${c.name} runs ${c.image}`).join(", ")}`,
    ];
  if (healthOf(mine.status) === "unhealthy") return [`${mine.name} runs the live release but is unhealthy`];
  return [];
}

export const recreate: Strategy = {
  name: "recreate",
  summary: "compose replaces the app's container in place (a gap while it starts)",
  composeHost: true,

  place(s, release, _view, since) {
    return {
      ...releaseFiles(s, release, since, (envFile) =>
        renderCompose({
          ...s.compose,
          service: s.deploy.service,
          image: release.image,
          ...(envFile ? { envFile } : {}),
          header: [
            `rendered by hamalog: sha ${release.sha}${release.fallback ? " (fallback: latest)" : ""}`,
            `image ${release.image}`,
            "do not edit: hamalog runs it from the release journal (journal.json)",
          ],
        }),
      ),
      facts: {},
    };
  },

  steps: [
    {
      phase: "up",
      does: "replace the app's container in place (compose up --no-deps --wait), run by the host to its end",
      diagnose: true,
      async run(a: Attempt) {
        const d = a.d;
        const leaving = a.journal.live?.colour !== undefined || containersOf(a.view, PROXY_SERVICE).length > 0;
        const t = a.s.rep.clock.monotonic();
        a.touched = true;
        if (leaving) {
          // The proxy holds the public port: it and the colours go first (the app is down until the new one is up).
          await a.exec(step.remove([PROXY_SERVICE, ...COLOURS.map((c) => colourService(d.service, c))]), "up", {
            detach: true,
          });
        }
        await a.exec(step.up(a.candidate, d.waitTimeout, [d.service], `replace ${d.service}`), "up", { detach: true });
        a.switchedAt = a.now;
        const gap = seconds(a.s.rep.clock.monotonic() - t);
        a.outages.push(
          leaving
            ? `back to recreate: the proxy and colours were removed and ${d.service} started (${gap} without a running app)`
            : `recreate: ${d.service} was replaced in place (up to ${gap} without a healthy app)`,
        );
        return `${d.service} runs ${a.candidate.digest.slice(0, 19)}… healthy per compose (--wait-timeout ${d.waitTimeout}s), from ${a.candidate.composeFile}`;
      },
    },
    {
      phase: "health",
      does: "GET deploy/health/url from the host until it answers (compose's healthcheck alone without one)",
      diagnose: true,
      async run(a: Attempt) {
        if (!a.d.health.url) return "no deploy/health/url; compose's healthcheck gated `up --wait`";
        return a.gate(a.d.health.url, "health");
      },
    },
  ],
  afterLive: [],
  touchesLive: "up",

  undo(j, s, back) {
    const d = s.deploy;
    const live = j.live;
    if (!live)
      return { steps: [step.remove([d.service], `remove ${d.service}: nothing was live before it`)], files: [] };
    // A blue/green live release: the candidate holds the public port the proxy needs.
    const free = live.colour ? [step.remove([d.service], `remove ${d.service} (it holds the proxy's port)`)] : [];
    return { steps: [...free, ...back.steps], files: back.files };
  },

  forward(): HostPlan {
    return { steps: [], files: [] };
  },

  restore(live, s) {
    return {
      steps: [step.up(live, s.deploy.waitTimeout, [s.deploy.service], `bring ${shortRelease(live)} back up`)],
      files: [],
    };
  },

  check(live, view, s) {
    return checkContainer(view, s.deploy.service, live);
  },

  status(j, view, s) {
    const d = s.deploy;
    const c = containersOf(view, d.service)[0];
    const lines = [
      c
        ? `container: ${c.name} ${c.state}, health ${healthOf(c.status)}, image ${c.image}`
        : `container: none for ${d.service}`,
    ];
    return { lines, mismatches: j.live ? checkContainer(view, d.service, j.live) : [] };
  },

  appContainers(view, s) {
    return containersOf(view, s.deploy.service);
  },
};
