// What the host looked like when a deploy failed: container state and health log, the last log lines,
// compose ps, this repository's images on the host, and whether the host can reach the registry with the
// deploy's login. Every probe is best-effort with a short timeout: diagnostics must never hide the failure.
import { isLoopbackRegistry } from "../reference.js";
import { cmd, composeArgs, type Layout } from "./commands.js";
import type { Remote } from "./remote.js";

export interface DiagnosticsInput {
  layout: Layout;
  project: string;
  composeFile: string;
  service: string;
  /** `registry/repository` */
  name: string;
  registry: string;
  /** The pinned reference being deployed. */
  image: string;
  loggedIn: boolean;
}

interface State {
  Status?: string;
  ExitCode?: number;
  OOMKilled?: boolean;
  Error?: string;
  Health?: { Status?: string; FailingStreak?: number; Log?: { ExitCode?: number; Output?: string }[] };
}

const T = { timeoutMs: 20_000 };
const indent = (s: string) =>
  s
    .trimEnd()
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");

export async function collectDiagnostics(remote: Remote, d: DiagnosticsInput): Promise<string[]> {
  const lines: string[] = [];
  const section = (title: string, body: string) => lines.push(`  ${title}:`, indent(body || "(nothing)"));
  const compose = (args: string[]) => remote.run(cmd.compose(d.project, d.composeFile, args), T);
  try {
    const id = (await compose(composeArgs.id(d.service))).stdout.trim().split("\n")[0] ?? "";
    if (id) {
      const st = await remote.run(cmd.inspectState(id), T);
      try {
        const s = JSON.parse(st.stdout) as State;
        const health = s.Health
          ? `, health ${s.Health.Status} (failing streak ${s.Health.FailingStreak ?? 0})`
          : ", no healthcheck defined";
        section(
          `container ${id.slice(0, 12)} of ${d.service}`,
          `state ${s.Status}, exit code ${s.ExitCode}${s.OOMKilled ? ", OOM-killed" : ""}${health}${s.Error ? `, error: ${s.Error}` : ""}`,
        );
        const log = (s.Health?.Log ?? []).slice(-3);
        if (log.length > 0)
          section(
            "last health checks",
            log
              .map(
                (h) =>
                  `exit ${h.ExitCode}: ${(h.Output ?? "").trim().replace(/\s+/g, " ").slice(0, 300) || "(no output)"}`,
              )
              .join("\n"),
          );
      } catch {
        section("container state", st.stderr || st.stdout);
      }
    } else {
      section(`container of ${d.service}`, "none was created");
    }
    const logs = await compose(composeArgs.logs(d.service, 30));
    section(`last log lines of ${d.service}`, logs.stdout + logs.stderr);
    const ps = await compose(composeArgs.ps());
    section("compose ps", ps.stdout + ps.stderr);
    const images = await remote.run(cmd.imageDigests(d.name), T);
    section(`images of ${d.name} on the host`, images.stdout + images.stderr);
    const reach = await remote.run(cmd.manifestInspect(d.layout, d.image, isLoopbackRegistry(d.registry)), T);
    section(
      `registry access from the host (${d.loggedIn ? "with the deploy's login" : "anonymous"})`,
      reach.code === 0
        ? `ok: ${d.image} is readable`
        : `FAILED: ${(reach.stderr || reach.stdout).trim().slice(0, 300)}`,
    );
  } catch (e) {
    section("diagnostics stopped early", (e as Error).message);
  }
  return lines;
}
