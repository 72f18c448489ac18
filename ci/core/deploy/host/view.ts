// What the host shows, read from the agent's `observe` sections (agent.ts): the journal, the lock and its lease,
// the compose project's containers, the proxy's route and ports, this repository's images, the release files, a
// leftover registry login and the end of the history. Pure parsing; probe, lock and status all print these.
import { SECTION } from "./agent.js";
import { parseHistory, type HistoryEntry } from "../history.js";
import { caddyHead } from "../colours.js";
import { journalFromHistory, parseJournal, type Colour, type Journal } from "../journal.js";

/** One container of the compose project, as `docker ps --all` lists it. */
export interface ContainerSeen {
  id: string;
  name: string;
  /** The image reference the container was created from (the compose file's `image:`). */
  image: string;
  /** created, running, exited, … */
  state: string;
  /** Its compose service label. */
  service: string;
  /** Docker's status text, e.g. `Up 3 seconds (healthy)`. */
  status: string;
  configHash: string;
  /** The proxy's definition hash (its hamalog.proxy-config label). */
  proxyConfig: string;
  /** The id of the image it runs (`sha256:…`). */
  imageId: string;
}

export interface LeaseSeen {
  holderText: string;
  now: number;
  renewed: number;
  presence: "alive" | "gone" | "unknown";
  stale: boolean;
  why: string;
}

export interface HostView {
  journal: Journal;
  /** sha256 of journal.json as it is on the host (`none` without one): a lock that prepares checks it is unchanged. */
  journalHash: string;
  /** The journal was rebuilt from history (a host deployed before the journal): written by the next deploy. */
  adopted: boolean;
  lock: LeaseSeen | null;
  containers: ContainerSeen[];
  /** The colour the proxy's Caddyfile routes to (its first line), or null. */
  caddyLive: Colour | null;
  /** The hash of the Caddyfile's routes (its first line), "" without one. */
  caddyRoutes: string;
  /** The proxy's published ports: container port → `host:port`. */
  proxyPorts: Map<number, string>;
  /** Digests of this repository's images on the host. */
  images: string[];
  /** Those digests' image ids (`sha256:…`). */
  imageIds: Map<string, string>;
  /** Files under releases/. */
  releases: string[];
  /**
   * The accessories' compose config hashes as last computed on the host, under the client's key for them: each
   * service's hashes with and without its depends_on (a container started with --no-deps carries the latter).
   */
  accessories: { key: string; hashes: Map<string, string[]> };
  /** Registry logins a killed run left (throwaway Docker configs). */
  logins: string[];
  history: HistoryEntry[];
  /** Every section observe printed, by name: a strategy's own observer's (host/parts.ts) are read by that strategy. */
  sections?: Map<string, string>;
}

/** The text of each section, by name. */
export function sections(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  const flush = () => name !== undefined && out.set(name, lines.join("\n"));
  for (const line of stdout.split("\n")) {
    if (line.startsWith(SECTION)) {
      flush();
      name = line.slice(SECTION.length).trim();
      lines = [];
    } else if (name !== undefined) lines.push(line);
  }
  flush();
  return out;
}

function parseLease(text: string): LeaseSeen | null {
  const lines = text.split("\n");
  const i = lines.findIndex((l) => l.startsWith("hamalog-lease "));
  if (i < 0)
    return text.trim()
      ? {
          holderText: text.trim(),
          now: 0,
          renewed: 0,
          presence: "unknown",
          stale: false,
          why: "its lease could not be read",
        }
      : null;
  const [, now, renewed, presence, stale, ...why] = lines[i]!.split(" ");
  return {
    holderText: lines.slice(0, i).join("\n").trim(),
    now: Number(now),
    renewed: Number(renewed),
    presence: (["alive", "gone"].includes(presence!) ? presence : "unknown") as LeaseSeen["presence"],
    stale: stale === "yes",
    why: why.join(" "),
  };
}

/** Parse observe's output; `where` names the journal in errors, `now` dates an adopted journal. */
export function parseView(stdout: string, where: string, now: string): HostView {
  const s = sections(stdout);
  const history = parseHistory(s.get("history") ?? "");
  const journalText = (s.get("journal") ?? "").trim();
  const containers: ContainerSeen[] = [];
  const imageOf = new Map<string, string>();
  for (const line of (s.get("container-images") ?? "").split("\n")) {
    const [c, i] = line.trim().split(" ");
    if (c && i) imageOf.set(c, i);
  }
  for (const line of (s.get("containers") ?? "").split("\n")) {
    const [id, name, image, state, service, status, configHash, proxyConfig] = line.split("\t");
    if (id && name && image && state)
      containers.push({
        id,
        name: name.replace(/^\//, ""),
        image,
        state,
        service: service ?? "",
        status: status ?? "",
        configHash: configHash ?? "",
        proxyConfig: proxyConfig ?? "",
        imageId: imageOf.get(id) ?? "",
      });
  }
  let journal: Journal;
  let adopted = false;
  if (journalText) journal = parseJournal(journalText, where);
  else {
    journal = journalFromHistory(history, (s.get("compose-file") ?? "").includes("present"), now);
    adopted = journal.live !== null;
  }
  const caddy = caddyHead(s.get("caddy") ?? "");
  const proxyPorts = new Map<number, string>();
  for (const line of (s.get("proxy-ports") ?? "").split("\n")) {
    const m = /^(\d+)\/tcp -> (\S+)$/.exec(line.trim());
    if (m && !proxyPorts.has(Number(m[1]))) proxyPorts.set(Number(m[1]), m[2]!);
  }
  const list = (name: string) =>
    (s.get(name) ?? "")
      .split("\n")
      .map((x) => x.trim())
      .filter(Boolean);
  return {
    journal,
    journalHash: (s.get("journal-hash") ?? "").trim(),
    adopted,
    lock: parseLease(s.get("lock") ?? ""),
    containers,
    caddyLive: caddy.live,
    caddyRoutes: caddy.routes,
    proxyPorts,
    images: list("images")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((d) => d.startsWith("sha256:")),
    imageIds: new Map(
      list("images")
        .map((l) => l.split(" "))
        .filter((x) => x[1]?.startsWith("sha256:") && x[2])
        .map((x) => [x[1]!, x[2]!] as [string, string]),
    ),
    releases: list("releases"),
    accessories: {
      key: list("accessories")[0] ?? "",
      hashes: new Map(
        list("accessories")
          .slice(1)
          .map((l) => l.split(/\s+/))
          .filter((x) => x.length >= 2)
          .map((x) => [x[0]!, x.slice(1)] as [string, string[]]),
      ),
    },
    logins: list("logins"),
    history,
    sections: s,
  };
}

/** compose names the replacement container `<old id, 12 hex>_<name>` until it has removed the old one. */
export function isTempName(name: string): boolean {
  return /^[0-9a-f]{12}_/.test(name.replace(/^\//, ""));
}

/** The service's containers (temp-named ones excluded), a running one first. */
export function containersOf(v: HostView, service: string): ContainerSeen[] {
  return v.containers
    .filter((c) => c.service === service && !isTempName(c.name))
    .sort((a, b) => Number(b.state === "running") - Number(a.state === "running"));
}

/** `Up 3 seconds (healthy)` → healthy; no parenthesis → no healthcheck. */
export function healthOf(status: string): "healthy" | "unhealthy" | "starting" | "none" {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status);
  return m ? (m[1]!.replace("health: ", "") as "healthy" | "unhealthy" | "starting") : "none";
}
