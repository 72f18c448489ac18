// deploy/strategy swarm: the target is a Swarm manager over SSH (the same pinned host key, lock, fencing, journal
// and history, kept on the manager), and a release is a stack (swarm-stack.ts): `docker stack deploy` of the app
// pinned by digest, rolled out by Swarm itself — start-first, health-gated, rolled back by Swarm when a task
// fails. Completion is observed, never read from an exit code (a stack deploy exits 0 whatever Swarm then does):
// every task on the release, running healthy, the update completed — or the failed tasks named. The nodes pull
// for themselves, so there is no pull phase and no compose on the host; the login reaches Swarm once, with the
// stack deploy (--with-registry-auth), from a throwaway Docker config. Recovery, like every strategy's, is host
// steps the manager can run alone: before promote the live release's stack is deployed again until Swarm runs it.
import { PipelineError } from "../errors.js";
import type { Attempt } from "./attempt.js";
import type { HostStep } from "./host/steps.js";
import type { Slot } from "./journal.js";
import { shortRelease } from "./release.js";
import type { HostPlan, Setting, Strategy } from "./strategy.js";
import { checkSwarm, judgeWatch, parseWatch, swarmStatusLines } from "./swarm-report.js";
import {
  dockerEnvText,
  EDGE_SERVICE,
  releaseLabel,
  renderStack,
  stackBase,
  type AccessoryState,
  type StackRender,
} from "./swarm-stack.js";
import { swarmOf } from "./swarm-view.js";

/** Seconds the manager's API may fail (a leader election takes ~15 s) before a read or a deploy gives up. */
export const API_GRACE_SECONDS = 60;
/** Failed tasks of a first release (nothing to roll back to) before the watch stops waiting. */
const FIRST_RELEASE_FAILURES = 3;

const dirOf = (s: Setting) => s.deploy.directory.replace(/\/+$/, "");

/** The stack's services running now (compose name → definition label), or undefined when not observed. */
function runningServices(s: Setting, view: Parameters<Strategy["place"]>[2]): Map<string, string> | undefined {
  const sw = swarmOf(view);
  if (!sw.observed || !sw.manager) return undefined;
  const prefix = `${s.project}_`;
  return new Map(
    sw.services.filter((x) => x.name.startsWith(prefix)).map((x) => [x.name.slice(prefix.length), x.definition]),
  );
}

/** The restore of `live`: its stack deployed again, then wait until Swarm runs it on every task. */
function restoreStep(live: Slot, s: Setting): HostStep {
  return {
    op: "swarm_restore",
    args: [
      s.project,
      live.composeFile,
      live.envFile ?? "",
      s.deploy.service,
      releaseLabel(live.composeFile),
      String(s.deploy.waitTimeout),
      String(API_GRACE_SECONDS),
    ],
    why: `deploy the stack of ${shortRelease(live)} again and wait until Swarm runs it on every task`,
  };
}

function describeAccessories(r: StackRender): string {
  const by = (st: AccessoryState) => r.accessories.filter((x) => x.state === st).map((x) => x.service);
  return [
    by("started").length ? `started ${by("started").join(", ")}` : "",
    by("recreated").length ? `recreated ${by("recreated").join(", ")}` : "",
    by("changed").length ? `changed (left running as they are): ${by("changed").join(", ")}` : "",
    r.edge !== "unchanged" ? `edge ${r.edge}` : "",
  ]
    .filter(Boolean)
    .join("; ");
}

export const swarm: Strategy = {
  name: "swarm",
  summary:
    "zero downtime across nodes: a Swarm stack, rolled start-first and health-gated by Swarm, behind a Caddy edge on every node",
  composeHost: false,

  place(s, release, view, since) {
    const d = s.deploy;
    const dir = dirOf(s);
    const composeEnv = s.env();
    const envText = composeEnv === undefined ? undefined : dockerEnvText(composeEnv);
    const running = runningServices(s, view);
    const render = (envFile: string | undefined, label: string) =>
      renderStack({
        src: s.compose,
        d,
        image: release.image,
        ...(envFile ? { envFile } : {}),
        ...(envText !== undefined ? { envText } : {}),
        release: label,
        ...(running ? { running } : {}),
        recreate: [],
        header: [
          `rendered by hamalog (swarm): stack ${s.project}, ${d.service} runs sha ${release.sha}${release.fallback ? " (fallback: latest)" : ""}`,
          `image ${release.image}`,
          "do not edit: hamalog deploys it from the release journal (journal.json)",
        ],
      });
    // The name hashes what runs: the app (with a placeholder env path), its environment and the edge.
    const probe = render(envText !== undefined ? `${dir}/ENV` : undefined, "");
    const base = stackBase(release.digest, probe.identity);
    const envFile = envText !== undefined ? `${base}.env` : undefined;
    const r = render(envFile ? `${dir}/${envFile}` : undefined, releaseLabel(`${base}.yaml`));
    const slot: Slot = { ...release, composeFile: `${base}.yaml`, ...(envFile ? { envFile } : {}), since };
    return {
      slot,
      compose: r.yaml,
      warnings: [
        ...r.warnings,
        ...r.accessories
          .filter((x) => x.state === "changed")
          .map(
            (x) =>
              `accessory ${x.service}'s definition changed; it keeps running as it is (a stack deploy that named it would restart it: apply it with --recreate-accessory ${x.service})`,
          ),
      ],
      files: [
        { path: `files/${slot.composeFile}`, content: r.yaml },
        ...(envFile ? [{ path: `files/${envFile}`, content: envText! }] : []),
        { path: `files/${r.caddyfile.path}`, content: r.caddyfile.content },
        // What the template bind-mounts: on the manager (a service that reads them is placed there).
        ...(s.files ?? []).map((f) => ({ path: `files/${f.path}`, content: f.content })),
        ...(s.files?.length ? [{ path: "modes", content: s.files.map((f) => `0644 ${f.path}\n`).join("") }] : []),
      ],
      facts: { stack: describeAccessories(r) },
    };
  },

  steps: [
    {
      phase: "stack",
      does: "docker stack deploy the release (the login from a throwaway config, --with-registry-auth), run by the host to its end",
      async run(a: Attempt) {
        const { input } = a.s;
        const creds = input.credentials;
        a.touched = true;
        const t = a.s.rep.clock.monotonic();
        await a.exec(
          {
            op: "swarm_deploy",
            args: [
              a.s.setting.project,
              a.candidate.composeFile,
              a.candidate.envFile ?? "",
              input.image.registry,
              creds?.username ?? "",
              String(API_GRACE_SECONDS),
            ],
          },
          "stack",
          {
            detach: true,
            files: creds ? [{ path: "stage/registry-password", content: `${creds.password}\n` }] : [],
          },
        );
        a.switchedAt = a.now;
        const login = creds
          ? ` (logged in as ${creds.username} for this command only; Swarm keeps the login for the nodes' pulls)`
          : "";
        const extra = a.facts.stack ? `; ${a.facts.stack}` : "";
        return `stack ${a.s.setting.project} updated in ${((a.s.rep.clock.monotonic() - t) / 1000).toFixed(1)}s${login}${extra}`;
      },
    },
    {
      phase: "converge",
      does: "follow Swarm's rolling update until every task runs the release healthy (or name each failed task: node, error, health)",
      async run(a: Attempt) {
        const d = a.d;
        const out = await a.s.host.query(
          "swarm_wait",
          [
            a.s.setting.project,
            d.service,
            releaseLabel(a.candidate.composeFile),
            String(d.waitTimeout),
            String(API_GRACE_SECONDS),
            String(FIRST_RELEASE_FAILURES),
            String(a.token),
          ],
          {
            phase: "converge",
            timeoutMs: (d.waitTimeout + API_GRACE_SECONDS + 120) * 1000,
            ...(a.s.input.signal ? { signal: a.s.input.signal } : {}),
          },
        );
        const w = parseWatch(out);
        const j = judgeWatch(w, {
          stack: a.s.setting.project,
          service: d.service,
          digest: a.candidate.digest,
          wait: d.waitTimeout,
          grace: API_GRACE_SECONDS,
        });
        if (!j.ok) throw new PipelineError(a.s.rep.clean(j.error), "converge");
        return j.summary;
      },
    },
    {
      phase: "live-health",
      does: "GET deploy/health/url from the manager (through its edge) until it answers; Swarm's healthcheck alone without one",
      async run(a: Attempt) {
        if (!a.d.health.url) return "no deploy/health/url; Swarm's healthcheck gated every task";
        return a.gate(a.d.health.url, "live-health");
      },
    },
  ],
  afterLive: [],
  touchesLive: "stack",

  undo(j, s, back) {
    const a = j.attempt!;
    const order = this.steps.map((x) => x.phase);
    // Before the stack deploy the live release was never touched: nothing to undo.
    if (!order.includes(a.phase)) return { steps: [], files: [] };
    if (!j.live)
      return {
        steps: [
          {
            op: "swarm_remove",
            args: [`${s.project}_${s.deploy.service}`],
            why: `remove ${s.project}_${s.deploy.service}: nothing was live before it`,
          },
        ],
        files: [],
      };
    return back;
  },

  forward(): HostPlan {
    return { steps: [], files: [] };
  },

  restore(live, s) {
    return { steps: [restoreStep(live, s)], files: [] };
  },

  check(live, view, s) {
    return checkSwarm(swarmOf(view), live, s.project, s.deploy.service, "the deploy host");
  },

  status(j, view, s) {
    const sw = swarmOf(view);
    return {
      lines: swarmStatusLines(sw, s.project, s.deploy.service, j.live),
      mismatches: j.live ? this.check(j.live, view, s) : [],
    };
  },

  appContainers() {
    return [];
  },

  reuses(kept) {
    return kept.composeFile.startsWith("releases/stack-");
  },

  cannotSwitch(other) {
    if (other === "swarm") return undefined;
    return `deploy/strategy: one of this deploy directory's live release and this deploy is swarm (a stack on a Swarm manager), the other ${other} (compose on one host): they do not take over from each other in one deploy. Deploy the new strategy into another deploy/directory and deploy/project, then remove the old one (\`docker compose down\` or \`docker stack rm\`); nothing was changed (docs/swarm.md)`;
  },
};

/** The edge service's full name (tests and docs). */
export const edgeServiceOf = (project: string) => `${project}_${EDGE_SERVICE}`;
