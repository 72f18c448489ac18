// Blue/green on one host, as pure text: the compose file with the app service as two colours (`APP-blue`,
// `APP-green`, no host ports) beside an edge proxy (Caddy 2), and the proxy's Caddyfile. The proxy publishes the
// app's public port, routes it to the live colour, and has one loopback-only check site per colour that always
// routes to that colour, so a candidate is health-gated over HTTP before it gets any live traffic.
import { createHash } from "node:crypto";
import { parseDocument, stringify } from "yaml";
import { renderCompose, type ComposeSource } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { ConfigError } from "../errors.js";

export type Colour = "blue" | "green";
export const COLOURS: readonly Colour[] = ["blue", "green"];
export const other = (c: Colour): Colour => (c === "blue" ? "green" : "blue");

/** The proxy's compose service, and the container ports of its check sites (published on 127.0.0.1, port picked by Docker). */
export const PROXY_SERVICE = "hamalog-proxy";
export const CHECK_PORT: Record<Colour, number> = { blue: 8001, green: 8002 };
/** Where the proxy directory is mounted in the proxy container (a directory: a replaced file keeps its old inode). */
const CADDY_DIR = "/etc/caddy";
/** The Caddyfile's first line names the live colour, so status and the next deploy can read it back. */
export const LIVE_MARK = "# hamalog live:";
/** The proxy container's label carrying a hash of its definition: an unchanged running proxy is left alone. */
export const PROXY_CONFIG_LABEL = "hamalog.proxy-config";

export const colourService = (service: string, c: Colour) => `${service}-${c}`;

export interface ColourPins {
  /** The image each colour runs (`registry/repo:tag@sha256:…`); a colour with none is left out. */
  blue?: string;
  green?: string;
}

/** The app's port inside its container: the container side of its first `ports:` entry, else its first `expose:`. */
export function upstreamPort(compose: ComposeSource, service: string): number {
  const rendered = renderCompose({ ...compose, service, image: "placeholder" });
  const app = (parseDocument(rendered.yaml).toJS() as { services: Record<string, Record<string, unknown>> }).services[
    service
  ]!;
  const first = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v[0] : undefined);
  const port = first(app.ports);
  let n: number | undefined;
  if (typeof port === "number") n = port;
  else if (typeof port === "string") n = Number(/(\d+)(?:\/tcp)?$/.exec(port)?.[1]);
  else if (port && typeof port === "object") n = Number((port as { target?: unknown }).target);
  else if (first(app.expose) !== undefined) n = Number(String(first(app.expose)).split("/")[0]);
  if (!n || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new ConfigError(
      `deploy/strategy blue-green: cannot tell the port service ${service} listens on — give it \`expose: ["8080"]\` (or keep its \`ports:\`) in the compose template`,
    );
  }
  return n;
}

/** The host port the proxy publishes for the live route, and the address to probe it at from the host. */
export function publicProbe(publish: string): { host: string; port: number } {
  const parts = publish.split(":");
  const host = parts.length === 3 ? parts[0]! : "127.0.0.1";
  return { host: host === "0.0.0.0" ? "127.0.0.1" : host, port: Number(parts[parts.length - 2]) };
}

/**
 * The blue/green compose file: the template's other services unchanged, the app service once per pinned colour
 * (no host ports, no fixed container name), and the proxy. `withPublic: false` leaves the public port out (the
 * proxy of a host still migrating from recreate, whose app holds that port until the switch).
 */
export function renderColours(
  compose: ComposeSource,
  d: DeployConfig,
  pins: ColourPins,
  header: string[],
  withPublic = true,
): { yaml: string; warnings: string[]; proxyConfig: string } {
  const base = renderCompose({ ...compose, service: d.service, image: "placeholder" });
  const obj = parseDocument(base.yaml).toJS() as { services: Record<string, Record<string, unknown>> };
  const app = obj.services[d.service]!;
  delete obj.services[d.service];
  const warnings = [...base.warnings];
  if ("container_name" in app) {
    warnings.push(`blue/green: removed container_name from ${d.service}: two colours of it run side by side`);
    delete app.container_name;
  }
  delete app.ports;
  for (const c of COLOURS) {
    const image = pins[c];
    if (image) obj.services[colourService(d.service, c)] = { ...structuredClone(app), image };
  }
  if (obj.services[PROXY_SERVICE]) throw new ConfigError(`compose template: service ${PROXY_SERVICE} is reserved`);
  const proxy = {
    image: d.proxy.image,
    restart: "unless-stopped",
    ports: [...(withPublic ? [d.proxy.publish!] : []), ...COLOURS.map((c) => `127.0.0.1::${CHECK_PORT[c]}`)],
    volumes: [`${d.directory.replace(/\/+$/, "")}/proxy:${CADDY_DIR}:ro`],
  };
  const config = createHash("sha256").update(JSON.stringify(proxy)).digest("hex").slice(0, 16);
  obj.services[PROXY_SERVICE] = { ...proxy, labels: { [PROXY_CONFIG_LABEL]: config } };
  const head = header.map((l) => `# ${l.replace(/[\r\n]+/g, " ")}`).join("\n");
  return { yaml: `${head}\n${stringify(obj, { lineWidth: 0 })}`, warnings, proxyConfig: config };
}

/**
 * The Caddyfile: the public site routes to `live` (or answers 503 while nothing is live), retrying for up to
 * `lb_try_duration` so requests wait through a switch instead of failing; each check site always routes to its
 * colour and never retries (a probe must see the candidate's own answer).
 */
export function caddyfile(d: DeployConfig, live: Colour | null, port: number): string {
  const site = d.proxy.domain ?? `:${d.proxy.publish!.split(":").pop()}`;
  const tls = d.proxy.domain && d.proxy.tls === "internal" ? ["\ttls internal"] : [];
  const tryFor = Math.max(5, Math.min(60, d.health.timeout));
  const route = live
    ? [
        `\treverse_proxy ${colourService(d.service, live)}:${port} {`,
        `\t\tlb_try_duration ${tryFor}s`,
        "\t\tlb_try_interval 100ms",
        "\t}",
      ]
    : ['\trespond "no release is live yet" 503'];
  const lines = [
    `${LIVE_MARK} ${live ?? "none"}`,
    "{",
    "\tadmin localhost:2019",
    ...(d.proxy.domain ? [] : ["\tauto_https off"]),
    "}",
    `${site} {`,
    ...tls,
    ...route,
    "}",
  ];
  for (const c of COLOURS) {
    lines.push(`:${CHECK_PORT[c]} {`, `\treverse_proxy ${colourService(d.service, c)}:${port}`, "}");
  }
  return `${lines.join("\n")}\n`;
}

/** The live colour a Caddyfile routes to (its first line), or null. */
export function liveOf(caddyText: string): Colour | null {
  const m = new RegExp(`^${LIVE_MARK} (blue|green)$`, "m").exec(caddyText);
  return m ? (m[1] as Colour) : null;
}
