// The edge proxy's remote side for blue/green: what the host runs (one session), switching the Caddyfile
// atomically with a graceful `caddy reload`, and where Docker published the check sites. Scripts are constants;
// every value arrives as a positional argument, quoted by shell.ts.
import { PipelineError } from "../errors.js";
import { cmd, lastStep, STEP_MARK, type Layout } from "./commands.js";
import {
  CHECK_PORT,
  COLOURS,
  colourService,
  liveOf,
  PROXY_CONFIG_LABEL,
  PROXY_SERVICE,
  type Colour,
} from "./colours.js";
import type { Session } from "./session.js";

const PS_MARK = "hamalog-containers";

/** What the host runs in the deploy's compose project, by service: state (`running`, `exited`, …) and container id. */
export interface HostView {
  /** The colour the Caddyfile on the host routes the public port to. */
  caddyLive: Colour | null;
  containers: Map<string, { state: string; id: string; proxyConfig: string }>;
}

/** The running proxy: its container (for `docker exec`/`docker port`) and its check sites' URLs. */
export interface ProxyRef {
  id: string;
  checkUrls: Record<Colour, string>;
}

export const proxyCmd = {
  /** Print the Caddyfile (if any), then every container of the project as `SERVICE STATE ID`. */
  observe: (l: Layout, project: string) => [
    "sh",
    "-c",
    'cat -- "$1" 2>/dev/null; echo; echo ' +
      PS_MARK +
      '; docker ps --all --filter "label=com.docker.compose.project=$2" --format "$3"',
    "hamalog-observe",
    l.caddyfile,
    project,
    `{{.Label "com.docker.compose.service"}} {{.State}} {{.ID}} {{.Label "${PROXY_CONFIG_LABEL}"}}`,
  ],
  /**
   * Replace the Caddyfile with stdin atomically (temp file + rename inside the bind-mounted directory), then, with
   * `reload`, have the running proxy load it gracefully; a reload that fails puts the old file back (Caddy keeps
   * serving its old config then). Steps `write`, `reload`.
   */
  caddySwitch: (l: Layout, proxyId: string, bytes: number) => [
    "sh",
    "-c",
    // Only whole: a client killed mid-write ends stdin as if it were complete.
    `echo ${STEP_MARK}write >&2; mkdir -p -m 0755 -- "$1" && (umask 022 && cat > "$1/.Caddyfile.next") && n=$(wc -c < "$1/.Caddyfile.next") && [ $n -eq "$3" ] || exit; ` +
      'rm -f -- "$1/.Caddyfile.prev"; if [ -e "$1/Caddyfile" ]; then cp -p -- "$1/Caddyfile" "$1/.Caddyfile.prev" || exit; fi; ' +
      'mv -f -- "$1/.Caddyfile.next" "$1/Caddyfile" || exit; [ -n "$2" ] || exit 0; ' +
      `echo ${STEP_MARK}reload >&2; ` +
      'docker exec "$2" caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile && exit 0; ' +
      'r=$?; if [ -e "$1/.Caddyfile.prev" ]; then mv -f -- "$1/.Caddyfile.prev" "$1/Caddyfile"; fi; exit "$r"',
    "hamalog-caddy",
    l.proxyDir,
    proxyId,
    String(bytes),
  ],
  /**
   * With `up`, (re)create the proxy from the compose file; then print its container id and the host ports Docker
   * picked for the check sites, one `127.0.0.1:PORT` line per colour (blue, then green). Steps `up`, `ports`.
   */
  /** Migration from recreate: remove the check-only proxy, stop the recreate app (its one stop), start the proxy with the public port. */
  migrate: (project: string, composeFile: string, legacy: string) => [
    "sh",
    "-c",
    `echo ${STEP_MARK}remove-check-proxy >&2; docker compose --project-name "$1" --file "$2" rm --stop --force ${PROXY_SERVICE} || exit; ` +
      `echo ${STEP_MARK}stop-recreate-app >&2; docker stop "$3" >/dev/null || exit; ` +
      `echo ${STEP_MARK}start-proxy >&2; docker compose --project-name "$1" --file "$2" up --detach --no-deps ${PROXY_SERVICE}`,
    "hamalog-migrate",
    project,
    composeFile,
    legacy,
  ],
  /** Remove every container of one compose service of the project (none there: nothing to do). */
  removeService: (project: string, service: string) => [
    "sh",
    "-c",
    'ids=$(docker ps --all --quiet --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=$2") || exit; ' +
      '[ -z "$ids" ] || docker rm --force $ids >/dev/null',
    "hamalog-remove-service",
    project,
    service,
  ],
  proxyUp: (project: string, composeFile: string, up: boolean) => [
    "sh",
    "-c",
    `if [ -n "$3" ]; then echo ${STEP_MARK}up >&2; docker compose --project-name "$1" --file "$2" up --detach --no-deps ${PROXY_SERVICE} || exit; fi; ` +
      `echo ${STEP_MARK}ports >&2; id=$(docker ps --quiet --filter "label=com.docker.compose.project=$1" --filter "label=com.docker.compose.service=${PROXY_SERVICE}"); ` +
      `[ -n "$id" ] || exit 1; echo "$id"; for p in ${COLOURS.map((c) => CHECK_PORT[c]).join(" ")}; do docker port "$id" "$p/tcp" | head -n 1; done`,
    "hamalog-proxy-up",
    project,
    composeFile,
    up ? "up" : "",
  ],
};

export async function observe(s: Session): Promise<HostView> {
  const r = await s.remote.run(proxyCmd.observe(s.l, s.project), { timeoutMs: 30_000 });
  const at = r.stdout.lastIndexOf(`\n${PS_MARK}\n`);
  const caddy = at >= 0 ? r.stdout.slice(0, at) : "";
  const containers: HostView["containers"] = new Map();
  for (const line of (at >= 0 ? r.stdout.slice(at + PS_MARK.length + 2) : "").split("\n")) {
    const [service, state, id, proxyConfig = ""] = line.trim().split(" ");
    if (!service || !state || !id) continue;
    // One container per service here; a running one wins over a leftover stopped one.
    if (!containers.has(service) || state === "running") containers.set(service, { state, id, proxyConfig });
  }
  return { caddyLive: liveOf(caddy), containers };
}

/** Whether `colour`'s container runs. */
export const runs = (v: HostView, service: string, c: Colour) =>
  v.containers.get(colourService(service, c))?.state === "running";

/** Write the Caddyfile routing the public port to `live`; with `reload`, switch the running proxy to it. */
export async function writeCaddyfile(
  s: Session,
  text: string,
  /** The running proxy to reload; without one the file is just written (a proxy starting next reads it). */
  reload: ProxyRef | undefined,
  phase: "proxy" | "switch" | "switch-back" | "reconcile",
) {
  const r = await s.remote.run(proxyCmd.caddySwitch(s.l, reload?.id ?? "", Buffer.byteLength(text)), {
    stdin: text,
    timeoutMs: 60_000,
  });
  if (r.code !== 0) {
    const { step, stderr } = lastStep(r.stderr);
    throw new PipelineError(
      `${step === "reload" ? "`caddy reload`" : `writing ${s.l.caddyfile}`} failed on ${s.remote.label} (exit ${r.code}): ${s.rep.clean(stderr.trim().split("\n").slice(-6).join("\n"))} — the proxy keeps its previous routes`,
      phase,
    );
  }
}

/**
 * Start (with `up`) or find the proxy: its container id and the URL of each colour's check site for `healthPath`.
 * `file`: the compose file that defines it (a recovery starts it from the live release's file).
 */
export async function proxyUp(s: Session, up: boolean, healthPath: string, file = s.l.compose): Promise<ProxyRef> {
  const r = await s.remote.run(proxyCmd.proxyUp(s.project, file, up), { timeoutMs: 120_000 });
  const [id = "", ...ports] = r.stdout.trim().split("\n");
  if (r.code !== 0 || ports.length !== COLOURS.length || ports.some((p) => !/:\d+$/.test(p.trim()))) {
    const { step, stderr } = lastStep(r.stderr);
    throw new PipelineError(
      `${step === "up" ? `starting ${PROXY_SERVICE}` : "reading the proxy's check ports"} failed on ${s.remote.label} (exit ${r.code}): ${s.rep.clean((stderr || r.stdout).trim().split("\n").slice(-6).join("\n"))}`,
      "proxy",
    );
  }
  const url = (hostPort: string) => `http://127.0.0.1:${hostPort.trim().split(":").pop()}${healthPath}`;
  return { id: id.trim(), checkUrls: { blue: url(ports[0]!), green: url(ports[1]!) } };
}

/** `docker compose` on the deploy's current file. */
export const composeRun = (s: Session, args: string[]) => cmd.compose(s.project, s.l.compose, args);
