// The swarm strategy's stack file, as pure text: the compose template becomes what `docker stack deploy` takes.
// The app service is pinned by digest, runs deploy/swarm/replicas tasks with `endpoint_mode: dnsrr` (no VIP: a
// task's address enters DNS once its healthcheck passed), and rolls start-first with Swarm's own rollback; its
// healthcheck is required (Swarm's only gate). An edge Caddy runs on every node (global) with a host-mode port and
// routes to `tasks.<app>`; its Caddyfile is a swarm config named by its content's hash (configs are immutable).
// The template's other services are accessories: included when missing (or asked to be recreated), left out when
// running — a stack deploy never removes a service it does not name, so a running database is never touched by a
// release. Relative paths become absolute (a stack has no project directory). Also the env file in docker's format.
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import { composeObject, header, pinImage, wireEnvFile, type ComposeSource, type Services } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { containerPort } from "./colours.js";
import { ConfigError } from "../errors.js";

/** The edge proxy's service in the stack (Swarm names it `<stack>_hamalog-edge`). */
export const EDGE_SERVICE = "hamalog-edge";
/** The app's container label naming its release (every task carries it: the watch counts tasks by it). */
export const RELEASE_LABEL = "hamalog.release";
/** A service label: a hash of the definition hamalog rendered (a running service with the same one is left out). */
export const DEFINITION_LABEL = "hamalog.definition";
/** Where Caddy listens inside its container. */
const EDGE_PORT = 80;

const hash = (text: string, n = 8) => createHash("sha256").update(text).digest("hex").slice(0, n);

export interface StackInput {
  src: ComposeSource;
  d: DeployConfig;
  /** The pinned image, `registry/repo:tag@sha256:…`. */
  image: string;
  /** The release's env file on the manager (absolute), when the release has an environment. */
  envFile?: string;
  /** The environment's text (hashed into what changed; never rendered). */
  envText?: string;
  /** The release label (its file base without `releases/stack-`); "" while naming the release. */
  release: string;
  /**
   * The stack's services running now with their definition labels, by compose service name; undefined when the
   * manager was not observed (a first deploy): everything is included.
   */
  running?: ReadonlyMap<string, string>;
  /** Accessories to apply even though they run (--recreate-accessory). */
  recreate: readonly string[];
  header: string[];
}

export type AccessoryState = "started" | "unchanged" | "changed" | "recreated";

export interface StackRender {
  yaml: string;
  warnings: string[];
  /** The edge's Caddyfile and where the stack file reads it (relative to the deploy directory). */
  caddyfile: { path: string; content: string };
  /** started (missing), changed (definition changed: applied), unchanged (left out). */
  edge: "started" | "changed" | "unchanged";
  accessories: { service: string; state: AccessoryState }[];
  /** What names the release: the app's definition, its environment and the edge's (not the accessories'). */
  identity: string;
}

/** The edge's Caddyfile: every node's :80 to the app's healthy tasks, a request retried past a task that just went. */
export function edgeCaddyfile(service: string, port: number): string {
  // Caddy's active health checks do not run for dynamic upstreams: Swarm's health-gated DNS does that job. A task
  // on a dead node stays in DNS until the manager sees the node Down, and a dial to it hangs (no RST across a
  // VXLAN whose peer is gone): the short dial timeout lets one request try other tasks within lb_try_duration.
  return [
    `# hamalog edge (swarm): :${EDGE_PORT} on every node → the healthy tasks of ${service} (tasks.${service}:${port})`,
    "{",
    "\tauto_https off",
    "\tadmin off",
    "}",
    `:${EDGE_PORT} {`,
    "\treverse_proxy {",
    `\t\tdynamic a tasks.${service} ${port} {`,
    "\t\t\trefresh 1s",
    "\t\t}",
    "\t\tlb_policy round_robin",
    "\t\tlb_try_duration 5s",
    "\t\tlb_try_interval 100ms",
    "\t\tfail_duration 10s",
    "\t\ttransport http {",
    "\t\t\tdial_timeout 500ms",
    "\t\t}",
    "\t}",
    "}",
    "",
  ].join("\n");
}

function healthcheckOf(app: Record<string, unknown>): boolean {
  const h = app.healthcheck as Record<string, unknown> | undefined;
  if (!h || typeof h !== "object" || h.disable === true) return false;
  const test = h.test;
  if (Array.isArray(test)) return test.length > 0 && test[0] !== "NONE";
  return typeof test === "string" && test.trim() !== "";
}

const labelsOf = (v: unknown): Record<string, string> => {
  if (Array.isArray(v))
    return Object.fromEntries(v.map(String).map((l) => [l.split("=")[0]!, l.split("=").slice(1).join("=")]));
  return v && typeof v === "object" ? { ...(v as Record<string, string>) } : {};
};

const abs = (dir: string, p: string) => (p.startsWith("/") ? p : `${dir}/${p.replace(/^\.\//, "")}`);
const relative = (p: unknown): p is string => typeof p === "string" && (p.startsWith("./") || p.startsWith("../"));

/** Paths relative to the template (bind mounts, env files, config and secret files) made absolute in `dir`. */
function absolutize(obj: Record<string, unknown> & { services: Services }, dir: string): void {
  for (const svc of Object.values(obj.services)) {
    if (Array.isArray(svc.volumes))
      svc.volumes = svc.volumes.map((v) => {
        if (typeof v === "string") {
          const [src, ...rest] = v.split(":");
          return relative(src) ? [abs(dir, src), ...rest].join(":") : v;
        }
        const o = v as Record<string, unknown>;
        return o && relative(o.source) ? { ...o, source: abs(dir, o.source) } : v;
      });
    if (typeof svc.env_file === "string" && !svc.env_file.startsWith("/")) svc.env_file = abs(dir, svc.env_file);
    else if (Array.isArray(svc.env_file))
      svc.env_file = svc.env_file.map((f) => (typeof f === "string" && !f.startsWith("/") ? abs(dir, f) : f));
  }
  for (const top of ["configs", "secrets"]) {
    const m = obj[top] as Record<string, Record<string, unknown>> | undefined;
    for (const c of Object.values(m ?? {}))
      if (c && typeof c.file === "string" && !c.file.startsWith("/")) c.file = abs(dir, c.file);
  }
}

const networksOf = (app: Record<string, unknown>): string[] => {
  const n = app.networks;
  if (Array.isArray(n)) return n.map(String);
  if (n && typeof n === "object") return Object.keys(n);
  return ["default"];
};

/** The stack file for one release (see the file header). */
export function renderStack(i: StackInput): StackRender {
  const { d } = i;
  const dir = d.directory.replace(/\/+$/, "");
  const svcName = d.service;
  const name = i.src.templateName ?? "compose template";
  const { obj, warnings } = composeObject(i.src, svcName);
  const services: Services = obj.services;
  if (services[EDGE_SERVICE])
    throw new ConfigError(`${name}: service ${EDGE_SERVICE} is reserved (the swarm edge proxy)`);
  for (const k of Object.keys(d.swarm.placement))
    if (!services[k])
      throw new ConfigError(
        `deploy/swarm/placement/${k}: not a service of ${name} (services there: ${Object.keys(services).join(", ")})`,
      );
  const app = services[svcName]!;
  if (!healthcheckOf(app))
    throw new ConfigError(
      `${name}: service ${svcName} has no healthcheck — with deploy/strategy swarm it is the only gate: Swarm adds a task to DNS, and moves its rolling update on, once the task's healthcheck passes (and rolls back when it fails). Add one to ${svcName}, e.g. healthcheck: {test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/actuator/health"], interval: 5s, timeout: 3s, retries: 3, start_period: 60s}`,
    );
  delete obj.name;
  const port = containerPort(i.src, svcName, "swarm");
  pinImage(app, i.image, svcName, name, warnings);
  const envRef = i.envFile;
  if (envRef) wireEnvFile(services, svcName, envRef, name, warnings);
  if (app.ports !== undefined)
    warnings.push(
      `swarm: removed ports from ${svcName}: the edge proxy publishes deploy/swarm/publish (${d.swarm.publish}) on every node and routes to its tasks`,
    );
  delete app.ports;
  for (const [k, s] of Object.entries(services)) {
    if ("container_name" in s) {
      warnings.push(`swarm: removed container_name from ${k}: Swarm names its tasks`);
      delete s.container_name;
    }
    // Swarm ignores them (it restarts by deploy.restart_policy and starts services in no order): said by omission.
    delete s.restart;
    delete s.depends_on;
    delete s.build;
  }
  for (const [k, n] of Object.entries((obj.networks as Record<string, Record<string, unknown> | null>) ?? {}))
    if (n && n.driver === "bridge") {
      warnings.push(`swarm: network ${k} uses the overlay driver (a bridge network does not span nodes)`);
      n.driver = "overlay";
    }
  absolutize(obj as Record<string, unknown> & { services: Services }, dir);

  const appDeploy = (app.deploy as Record<string, unknown> | undefined) ?? {};
  if (appDeploy.mode === "global")
    throw new ConfigError(
      `${name}: service ${svcName} has deploy.mode global — the app runs deploy/swarm/replicas tasks; remove deploy.mode`,
    );
  if (appDeploy.endpoint_mode && appDeploy.endpoint_mode !== "dnsrr")
    warnings.push(
      `swarm: ${svcName}'s endpoint_mode ${String(appDeploy.endpoint_mode)} became dnsrr: the edge resolves the tasks themselves`,
    );
  const sw = d.swarm;
  const update = { parallelism: sw.parallelism, order: "start-first", monitor: `${sw.monitorSeconds}s` };
  const placement = (svc: string, dep: Record<string, unknown>) => {
    const mine = sw.placement[svc];
    if (!mine?.length) return {};
    const p = (dep.placement as Record<string, unknown> | undefined) ?? {};
    const had = Array.isArray(p.constraints) ? p.constraints.map(String) : [];
    return { placement: { ...p, constraints: [...new Set([...had, ...mine])] } };
  };
  app.deploy = {
    ...appDeploy,
    replicas: sw.replicas,
    endpoint_mode: "dnsrr",
    update_config: { ...update, failure_action: "rollback", max_failure_ratio: 0 },
    rollback_config: { ...update, failure_action: "pause" },
    ...placement(svcName, appDeploy),
  };
  const { [RELEASE_LABEL]: _old, ...appLabels } = labelsOf(app.labels);
  app.labels = appLabels;
  // What names the release is rendered with a placeholder env path (its name is not known yet) and no label.
  const appIdentity = JSON.stringify(app)
    .split(envRef ?? "\0none")
    .join("ENV");
  if (i.release) app.labels = { ...appLabels, [RELEASE_LABEL]: i.release };

  const networks = networksOf(app);
  const caddy = edgeCaddyfile(svcName, port);
  const configKey = `${EDGE_SERVICE}-${hash(caddy)}`;
  const caddyPath = `.hamalog/edge/Caddyfile-${hash(caddy)}`;
  const edge: Record<string, unknown> = {
    image: d.proxy.image,
    ports: [{ target: EDGE_PORT, published: sw.publish, protocol: "tcp", mode: "host" }],
    configs: [{ source: configKey, target: "/etc/caddy/Caddyfile" }],
    networks,
    stop_grace_period: "2s",
    deploy: {
      mode: "global",
      // A host-mode port is held by the running edge on its node: a new one can start only once the old one stops.
      update_config: { parallelism: 1, order: "stop-first", failure_action: "rollback", monitor: "5s" },
    },
  };
  const edgeDef = hash(`${JSON.stringify(edge)}\n${caddy}`, 16);
  (edge.deploy as Record<string, unknown>).labels = { [DEFINITION_LABEL]: edgeDef };

  const running = i.running;
  const edgeState = !running?.has(EDGE_SERVICE)
    ? "started"
    : running.get(EDGE_SERVICE) === edgeDef
      ? "unchanged"
      : "changed";
  const accessories: StackRender["accessories"] = [];
  for (const [k, s] of Object.entries(services)) {
    if (k === svcName) continue;
    const dep = (s.deploy as Record<string, unknown> | undefined) ?? {};
    s.deploy = { ...dep, ...placement(k, dep) };
    const text = JSON.stringify(s);
    // Its environment counts when it reads the release's env file or interpolates: a rotated secret is a change.
    const usesEnv = (envRef !== undefined && text.includes(envRef)) || text.includes("${");
    const def = hash(`${text.split(envRef ?? "\0none").join("ENV")}\n${usesEnv ? (i.envText ?? "") : ""}`, 16);
    const { labels: _l, ...depRest } = s.deploy as Record<string, unknown>;
    s.deploy = { ...depRest, labels: { ...labelsOf(dep.labels), [DEFINITION_LABEL]: def } };
    const now = running?.get(k);
    const state: AccessoryState =
      running === undefined || now === undefined
        ? "started"
        : i.recreate.includes(k)
          ? "recreated"
          : now === def
            ? "unchanged"
            : "changed";
    accessories.push({ service: k, state });
    // A stack deploy leaves a service it does not name as it runs: a running accessory is left out unless asked.
    if (state === "unchanged" || state === "changed") delete services[k];
  }
  if (edgeState !== "unchanged") {
    services[EDGE_SERVICE] = edge;
    obj.configs = { ...((obj.configs as object) ?? {}), [configKey]: { file: `${dir}/${caddyPath}` } };
  }
  const text = `${header(i.header)}\n${stringify(obj, { lineWidth: 0 })}`;
  return {
    yaml: text,
    warnings,
    caddyfile: { path: caddyPath, content: caddy },
    edge: edgeState,
    accessories,
    identity: `${appIdentity}\n${i.envText ?? ""}\n${edgeDef}`,
  };
}

/**
 * The env file in docker's own format, which `docker stack deploy` reads for env_file (and the agent exports for
 * ${VAR}): `NAME=value` with the value as written — no quotes, no escapes. The release's env text (env.ts) is
 * compose's format (`NAME='value'`, `\'` for a quote); its values have no line breaks.
 */
export function dockerEnvText(composeEnv: string): string {
  return composeEnv
    .split("\n")
    .map((l) => {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)='(.*)'$/.exec(l);
      return m ? `${m[1]}=${m[2]!.replace(/\\'/g, "'")}` : l;
    })
    .join("\n");
}

/** The release label of a stack file (`releases/stack-<digest 12>-<hash 8>.yaml` → `<digest 12>-<hash 8>`). */
export function releaseLabel(composeFile: string): string {
  return composeFile.replace(/^releases\/stack-/, "").replace(/\.yaml$/, "");
}

/** The file base (no extension) of a release: its digest and what names it (the app, its environment, the edge). */
export function stackBase(digest: string, identity: string): string {
  return `releases/stack-${digest.replace(/^[a-z0-9]+:/, "").slice(0, 12)}-${hash(identity)}`;
}
