// Blue/green on one host, as pure text: a release's compose file (the template's other services, the app as ONE
// colour `APP-blue`/`APP-green`, and the edge proxy, Caddy 2), and the proxy's Caddyfile. The proxy keeps the app's
// name on the compose network (a network alias on the app's container port), so nginx or anything else that
// reaches `APP:8080` reaches the live colour through it, and `depends_on: APP` elsewhere becomes the proxy. It
// publishes the public port when there is one, and three loopback check sites: the live route, and one per colour
// that always routes to that colour — a candidate is health-gated over HTTP before it gets any traffic.
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import { composeObject, header, pinImage, wireEnvFile, type ComposeSource, type Services } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { ConfigError } from "../errors.js";
import type { Colour } from "./journal.js";

export const COLOURS: readonly Colour[] = ["blue", "green"];
export const other = (c: Colour): Colour => (c === "blue" ? "green" : "blue");

/** The proxy's compose service. */
export const PROXY_SERVICE = "hamalog-proxy";
/** Container ports of the check sites, published on 127.0.0.1 (host port picked by Docker). */
export const CHECK_PORT = { live: 9900, blue: 9901, green: 9902 } as const;
/** Where the proxy directory is mounted in the proxy container (a directory: a replaced file keeps its old inode). */
const CADDY_DIR = "/etc/caddy";
/** The Caddyfile's first line names the live colour, so status and the next run can read it back. */
export const LIVE_MARK = "# hamalog live:";
/** The proxy container's label: a hash of its definition (a running proxy with the same one is left alone). */
export const PROXY_CONFIG_LABEL = "hamalog.proxy-config";

export const colourService = (service: string, c: Colour) => `${service}-${c}`;

/**
 * The app's port inside its container: the container side of its first `ports:` entry, else its first `expose:`.
 * STRATEGY names the strategy that needs it (the edge proxy routes there) in the error.
 */
export function containerPort(compose: ComposeSource, service: string, strategy: string): number {
  const app = composeObject(compose, service).obj.services[service]!;
  const first = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v[0] : undefined);
  const port = first(app.ports);
  let n: number | undefined;
  if (typeof port === "number") n = port;
  else if (typeof port === "string") n = Number(/(\d+)(?:\/tcp)?$/.exec(port)?.[1]);
  else if (port && typeof port === "object") n = Number((port as { target?: unknown }).target);
  else if (first(app.expose) !== undefined) n = Number(String(first(app.expose)).split("/")[0]);
  if (!n || !Number.isInteger(n) || n < 1 || n > 65535)
    throw new ConfigError(
      `deploy/strategy ${strategy}: cannot tell the port service ${service} listens on — give it \`expose: ["8080"]\` (or keep its \`ports:\`) in the compose template: the edge proxy routes there`,
    );
  return n;
}

/** The blue/green app's port (containerPort), which must not be one the edge proxy uses itself. */
export function upstreamPort(compose: ComposeSource, service: string): number {
  const n = containerPort(compose, service, "blue-green");
  if (Object.values(CHECK_PORT).includes(n as 9900) || n === 2019)
    throw new ConfigError(
      `deploy/strategy blue-green: service ${service} listens on ${n}, a port the edge proxy uses itself (2019, 9900–9902) — use another port`,
    );
  return n;
}

/** The public port's container side (`127.0.0.1:8080:80` → 80), or undefined without deploy/proxy/publish. */
export function publicPort(d: DeployConfig): number | undefined {
  return d.proxy.publish ? Number(d.proxy.publish.split(":").pop()) : undefined;
}

/** The app service's networks: the proxy joins each with the app's name as an alias. */
function networksOf(app: Record<string, unknown>): string[] {
  const n = app.networks;
  if (Array.isArray(n)) return n.map(String);
  if (n && typeof n === "object") return Object.keys(n);
  return ["default"];
}

export interface ColourRender {
  yaml: string;
  warnings: string[];
  /** Hash of the proxy's container definition (image, ports, mounts, networks): a change re-creates it. */
  proxyConfig: string;
}

/**
 * A blue/green release file: the template's other services (their `depends_on: APP` pointing at the proxy), the
 * app as `colour` pinned by digest (no host ports, no fixed name, restarted with the daemon unless the template
 * says otherwise), and the proxy. `withPublic: false` leaves the public port out (while a recreate-layout app still
 * holds it, before the migration's switch).
 */
export function renderColour(
  src: ComposeSource,
  d: DeployConfig,
  pin: { colour: Colour; image: string; envFile?: string },
  head: string[],
  withPublic = true,
): ColourRender {
  const name = src.templateName ?? "compose template";
  const { obj, warnings } = composeObject(src, d.service);
  const services: Services = obj.services;
  const app = services[d.service]!;
  pinImage(app, pin.image, d.service, name, warnings);
  if (pin.envFile) wireEnvFile(services, d.service, pin.envFile, name, warnings);
  if (services[PROXY_SERVICE]) throw new ConfigError(`${name}: service ${PROXY_SERVICE} is reserved (the edge proxy)`);
  for (const c of COLOURS)
    if (services[colourService(d.service, c)])
      throw new ConfigError(`${name}: service ${colourService(d.service, c)} is reserved (a blue/green colour)`);
  delete services[d.service];
  if ("container_name" in app) {
    warnings.push(`blue/green: removed container_name from ${d.service}: two colours of it run side by side`);
    delete app.container_name;
  }
  delete app.ports;
  app.restart ??= "unless-stopped";
  services[colourService(d.service, pin.colour)] = app;
  // Everything that needed the app now needs the proxy, which answers under the app's name.
  for (const s of Object.values(services)) rewriteDependsOn(s, d.service);
  const networks = networksOf(app);
  const ports = [
    ...(withPublic && d.proxy.publish ? [d.proxy.publish] : []),
    ...Object.values(CHECK_PORT).map((p) => `127.0.0.1::${p}`),
  ];
  const proxy = {
    image: d.proxy.image,
    restart: "unless-stopped",
    ports,
    volumes: [`${d.directory.replace(/\/+$/, "")}/proxy:${CADDY_DIR}:ro`],
    networks: Object.fromEntries(networks.map((n) => [n, { aliases: [d.service] }])),
  };
  const proxyConfig = createHash("sha256").update(JSON.stringify(proxy)).digest("hex").slice(0, 16);
  services[PROXY_SERVICE] = { ...proxy, labels: { [PROXY_CONFIG_LABEL]: proxyConfig } };
  const text = `${header(head)}\n${stringify(obj, { lineWidth: 0 })}`;
  return { yaml: text, warnings, proxyConfig };
}

function rewriteDependsOn(s: Record<string, unknown>, app: string): void {
  const dep = s.depends_on;
  if (Array.isArray(dep)) s.depends_on = dep.map((x) => (x === app ? PROXY_SERVICE : x));
  else if (dep && typeof dep === "object" && app in (dep as object)) {
    const m = { ...(dep as Record<string, unknown>) };
    const cond = m[app] as Record<string, unknown>;
    delete m[app];
    // The proxy has no healthcheck of its own: it is ready once started (it holds requests until a colour answers).
    m[PROXY_SERVICE] = { ...cond, condition: "service_started" };
    s.depends_on = m;
  }
}

/**
 * The Caddyfile: the app's name on the compose network (and the public site, and the live check site) route to
 * `live` — or answer 503 while nothing is live — retrying for up to `lb_try_duration` so requests wait through a
 * switch instead of failing; each colour's check site always routes to that colour and never retries (a probe
 * must see the candidate's own answer).
 */
export function caddyfile(d: DeployConfig, live: Colour | null, port: number, legacy?: string): string {
  const tryFor = Math.max(5, Math.min(60, d.health.timeout));
  // Before the migration's switch the live app is the recreate-layout container, reached by its container name.
  const target = live ? colourService(d.service, live) : legacy;
  const route = target
    ? [`\treverse_proxy ${target}:${port} {`, `\t\tlb_try_duration ${tryFor}s`, "\t\tlb_try_interval 100ms", "\t}"]
    : ['\trespond "no release is live yet" 503'];
  const pub = publicPort(d);
  const plain = [`:${port}`, ...(pub !== undefined && pub !== port && !d.proxy.domain ? [`:${pub}`] : [])];
  const lines = ["{", "\tadmin localhost:2019", ...(d.proxy.domain ? [] : ["\tauto_https off"]), "}"];
  const tls = d.proxy.domain && d.proxy.tls === "internal" ? ["\ttls internal"] : [];
  if (d.proxy.domain) lines.push(`${d.proxy.domain} {`, ...tls, ...route, "}");
  lines.push(`${[...plain, `:${CHECK_PORT.live}`].join(", ")} {`, ...route, "}");
  for (const c of COLOURS)
    lines.push(`:${CHECK_PORT[c]} {`, `\treverse_proxy ${colourService(d.service, c)}:${port}`, "}");
  const body = `${lines.join("\n")}\n`;
  // The first line names the live colour and a hash of the routes, so a run sees without a reload whether the
  // proxy already has exactly these.
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return `${LIVE_MARK} ${live ?? "none"} (routes ${hash})\n${body}`;
}

/** The live colour and the routes' hash a Caddyfile's first line names. */
export function caddyHead(caddyText: string): { live: Colour | null; routes: string } {
  const m = new RegExp(`^${LIVE_MARK} (blue|green|none)(?: \\(routes ([0-9a-f]+)\\))?$`, "m").exec(caddyText);
  return { live: m && m[1] !== "none" ? (m[1] as Colour) : null, routes: m?.[2] ?? "" };
}

export function liveOf(caddyText: string): Colour | null {
  return caddyHead(caddyText).live;
}
