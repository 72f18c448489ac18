// The deploy procedure, shared by `deploy` and `rollback` on both doors. Each step is a named phase printed with
// its duration: connect → preflight → lock → login → render → pull → up → health → history → prune, and on a
// failure after the switch: diagnostics → rollback. The lock is released in every outcome. Time, the holder
// name and the transport are arguments (env), never read here.
import { renderCompose, type ComposeSource } from "../compose.js";
import type { DeployConfig } from "../config.js";
import { ConfigError, PipelineError } from "../errors.js";
import { parseReference, validateDigest, type ImageName } from "../reference.js";
import type { Credentials } from "../registry/auth.js";
import { normalizeSha } from "../tags.js";
import {
  cmd,
  composeArgs,
  HISTORY_MARK,
  IMAGE_PRESENT,
  IMAGES_MARK,
  lastStep,
  layout,
  projectName,
  type Layout,
} from "./commands.js";
import { collectDiagnostics } from "./diagnostics.js";
import { waitHealthy } from "./health.js";
import {
  currentRelease,
  digestsToKeep,
  historyLine,
  parseHistory,
  rollbackTarget,
  successfulReleases,
  type HistoryEntry,
  type Release,
} from "./history.js";
import { acquireLock, releaseLock } from "./lock.js";
import { preflight, probeHost, type Target, type VerifyFn } from "./preflight.js";
import type { Remote } from "./remote.js";
import { redactError, Reporter, seconds, type Clock, type Output } from "./report.js";

export interface DeployInput {
  image: ImageName;
  deploy: DeployConfig;
  compose: ComposeSource;
  /** Registry login for the host (and preflight); omit for public images. */
  credentials?: Credentials;
  /** Who deploys, for the lock and history (e.g. `alice@laptop pid 4242`). */
  holder: string;
  lockWaitSeconds?: number;
  breakLock?: boolean;
  /** Print the plan and the rendered compose file; change nothing on the host. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface DeployEnv {
  /** Open the one SSH connection (ssh.ts connectSsh in the doors). */
  connect(): Promise<Remote>;
  verify: VerifyFn;
  output: Output;
  clock: Clock;
  /** Values that must never be printed (registry token, SSH key). */
  secrets: string[];
  /** A fresh unique id per attempt, for the lock (randomUUID in the doors). */
  attemptId(): string;
}

export interface Outcome {
  result: "success" | "dry-run";
  running: Release;
  fallback: boolean;
  durationMs: number;
  /** The rendered compose file (for dry runs and the Dagger door). */
  compose: string;
}

export interface Ctx {
  input: DeployInput;
  env: DeployEnv;
  rep: Reporter;
  remote: Remote;
  l: Layout;
  project: string;
  started: number;
}

const HISTORY_ERROR_MAX = 600;

function check(input: DeployInput): void {
  if (input.deploy.health.url && !input.deploy.health.url.startsWith("http://")) {
    throw new ConfigError(
      `deploy/health/url: ${input.deploy.health.url}: only http:// URLs are checked (the check runs on the host, through the SSH connection)`,
    );
  }
}

/**
 * Connect (the `connect` phase), run `fn`, always close. Exported for status. Whatever is thrown leaves redacted,
 * like every printed line: the doors print or return error messages as they are.
 */
export async function withConnection<T>(input: DeployInput, env: DeployEnv, fn: (ctx: Ctx) => Promise<T>): Promise<T> {
  check(input);
  const rep = new Reporter(env.output, env.clock, env.secrets);
  const started = env.clock.monotonic();
  try {
    const remote = await rep.phase("connect", async () => {
      const r = await env.connect();
      return { value: r, summary: `${r.label}, host key ${r.hostKeyFingerprint}` };
    });
    try {
      const l = layout(input.deploy.directory);
      return await fn({ input, env, rep, remote, l, project: projectName(l.dir, input.deploy.project), started });
    } finally {
      remote.close();
    }
  } catch (e) {
    throw redactError(e, env.secrets);
  }
}

/** Deploy the image built from `sha` (its sha tag, verified to a digest first). */
export function deploy(input: DeployInput & { sha: string }, env: DeployEnv): Promise<Outcome> {
  const sha = normalizeSha(input.sha);
  return withConnection(input, env, async (ctx) => {
    const target = await ctx.rep.phase("preflight", async () => {
      const t = await preflight(
        ctx.remote,
        {
          registry: input.image.registry,
          repository: input.image.repository,
          sha,
          fallback: input.deploy.fallback,
          ...(input.credentials ? { credentials: input.credentials } : {}),
          ...(input.deploy.platform ? { platform: input.deploy.platform } : {}),
        },
        env.verify,
        ctx.rep,
      );
      return { value: t, summary: `${t.image}${t.fallback ? " (FALLBACK to latest)" : ""}` };
    });
    return apply(ctx, target, "deploy");
  });
}

/** Go back to `to` (a sha or digest from history), or to the previous successful release; same health gate. */
export function rollback(input: DeployInput & { to?: string }, env: DeployEnv): Promise<Outcome> {
  const to = input.to?.trim().toLowerCase();
  if (to !== undefined && to !== "") {
    if (to.startsWith("sha256:")) validateDigest(to, "--to");
    else if (!/^[0-9a-f]{7,40}$/.test(to)) {
      throw new ConfigError(
        `--to: \`${input.to}\` is neither a commit sha (7–40 hex characters) nor a digest (sha256:…) — see \`hamalog status\` for deployed releases`,
      );
    }
  }
  return withConnection(input, env, async (ctx) => {
    const target = await ctx.rep.phase("preflight", async () => {
      await probeHost(ctx.remote, false);
      const entries = await readHistory(ctx);
      const r = rollbackTarget(entries, to || undefined);
      if (!r) {
        const known = successfulReleases(entries).map(
          (x) => `${x.sha.slice(0, 12)}${x.fallback ? " (as latest fallback)" : ""} ${x.digest.slice(0, 19)}…`,
        );
        throw new PipelineError(
          to
            ? `no successful deploy of \`${to}\` in ${ctx.l.history} on ${ctx.remote.label} (deployed: ${known.join(", ") || "none"}) — nothing was changed`
            : `nothing to roll back to: ${ctx.l.history} on ${ctx.remote.label} has no earlier successful deploy (deployed: ${known.join(", ") || "none"})`,
          "preflight",
        );
      }
      const ref = parseReference(r.image, "history image");
      const t: Target = {
        sha: r.sha,
        tags: ref.tag ? [ref.tag] : [],
        digest: r.digest,
        name: `${ref.registry}/${ref.repository}`,
        image: r.image,
        fallback: r.fallback === true,
      };
      return { value: t, summary: `${t.image} from history (sha ${t.sha.slice(0, 12)})` };
    });
    return apply(ctx, target, "rollback");
  });
}

export async function readHistory(ctx: Ctx): Promise<HistoryEntry[]> {
  const r = await ctx.remote.run(cmd.cat(ctx.l.history));
  return r.code === 0 ? parseHistory(r.stdout) : [];
}

/**
 * Run argv; a non-zero exit fails `phase` naming what failed: `what`, or for a phase script (commands.ts), what its
 * last announced step was — with that step's own exit code and stderr.
 */
async function must(
  ctx: Ctx,
  argv: string[],
  what: string | ((step: string | undefined) => string),
  phase: string,
  opts: { stdin?: string; timeoutMs?: number } = {},
): Promise<string> {
  const r = await ctx.remote.run(argv, { ...opts, ...(ctx.input.signal ? { signal: ctx.input.signal } : {}) });
  if (r.code !== 0) {
    const { step, stderr } = lastStep(r.stderr);
    const detail = (stderr.trim() ? stderr : r.stdout).trim().split("\n").slice(-8).join("\n");
    throw new PipelineError(
      `${typeof what === "string" ? what : what(step)} failed on ${ctx.remote.label} (exit ${r.code}): ${ctx.rep.clean(detail)}`,
      phase,
    );
  }
  return r.stdout;
}

function compose(ctx: Ctx, file: string, args: string[]): string[] {
  return cmd.compose(ctx.project, file, args);
}

/** Bring the app service up from the current compose file and pass the health gate; throws a phase error. */
async function upAndHealthy(ctx: Ctx, prefix = ""): Promise<void> {
  const d = ctx.input.deploy;
  const { rep } = ctx;
  await rep.phase(`${prefix}up`, async () => {
    await must(
      ctx,
      compose(ctx, ctx.l.compose, composeArgs.up(d.service, d.waitTimeout)),
      "`docker compose up --wait`",
      `${prefix}up`,
      {
        timeoutMs: (d.waitTimeout + 120) * 1000,
      },
    );
    return {
      value: undefined,
      summary: `${d.service} running and healthy per compose (--wait-timeout ${d.waitTimeout}s)`,
    };
  });
  await rep.phase(`${prefix}health`, async () => {
    if (!d.health.url)
      return { value: undefined, summary: "no deploy/health/url; compose's healthcheck gated `up --wait`" };
    const h = await waitHealthy(
      ctx.remote,
      {
        url: d.health.url,
        timeout: d.health.timeout,
        interval: d.health.interval,
        expectStatus: d.health.expectStatus,
      },
      rep.clock,
      ctx.input.signal,
    );
    if (!h.ok) {
      if (ctx.input.signal?.aborted)
        throw new PipelineError(`interrupted while waiting for ${d.health.url}`, `${prefix}health`);
      throw new PipelineError(
        `${d.health.url} did not answer ${d.health.expectStatus} within ${d.health.timeout}s (${h.attempts} probes; last: ${h.last}) — raise deploy/health/timeout if the app just starts slowly`,
        `${prefix}health`,
      );
    }
    return { value: undefined, summary: `${d.health.url} → ${h.last.slice(0, 80)} after ${h.attempts} probe(s)` };
  });
}

async function apply(ctx: Ctx, target: Target, action: HistoryEntry["action"]): Promise<Outcome> {
  const { input, rep, remote, l } = ctx;
  const d = input.deploy;
  const clock = rep.clock;
  const rendered = renderCompose({
    ...input.compose,
    service: d.service,
    image: target.image,
    header: [
      `rendered by hamalog ${action}: sha ${target.sha}${target.fallback ? " (fallback: latest)" : ""}`,
      `image ${target.image}`,
      "do not edit: the next deploy replaces this file",
    ],
  });
  for (const w of rendered.warnings) rep.warn(`WARNING: ${w}`);
  const running: Release = {
    sha: target.sha,
    digest: target.digest,
    image: target.image,
    ...(target.fallback ? { fallback: true } : {}),
  };

  if (input.dryRun) {
    const present = (await remote.run(cmd.imagePresent(`${target.name}@${target.digest}`))).code === 0;
    rep.out(
      `[plan] would ${action} ${target.image} on ${remote.label} in ${l.dir} (project ${ctx.project}, service ${d.service})`,
    );
    rep.out(
      `[plan] phases: lock → ${input.credentials ? "login (token on stdin) → " : ""}render ${l.compose} (previous kept as ${l.previous}) → pull (${present ? "skipped: digest already on the host" : "needed"}) → up --wait (${d.waitTimeout}s) → health (${d.health.url ? `${d.health.url}, ${d.health.timeout}s` : "none configured"}) → history → prune (keep ${d.keepImages}) → unlock`,
    );
    rep.out(`[plan] rendered ${l.compose}:`);
    for (const line of rendered.yaml.trimEnd().split("\n")) rep.out(`  ${line}`);
    rep.out("[plan] dry run: nothing on the host was changed");
    return {
      result: "dry-run",
      running,
      fallback: target.fallback,
      durationMs: clock.monotonic() - ctx.started,
      compose: rendered.yaml,
    };
  }

  const lockId = ctx.env.attemptId();
  const locked = await rep.phase("lock", async () => {
    const got = await acquireLock(remote, l, clock, {
      holder: { holder: input.holder, sha: target.sha, since: clock.now().toISOString(), action, id: lockId },
      ...(input.lockWaitSeconds !== undefined ? { waitSeconds: input.lockWaitSeconds } : {}),
      ...(input.breakLock ? { breakLock: true } : {}),
      ...(input.signal ? { signal: input.signal } : {}),
      onWait: (who) => rep.out(`[lock] waiting up to ${input.lockWaitSeconds}s for the lock ${l.lock}, held by ${who}`),
    });
    if (got.note) rep.warn(`WARNING: ${got.note}`);
    return { value: got, summary: `${l.lock} held by ${input.holder}` };
  });

  let loggedIn = false;
  let switched = false;
  const previous: Release | null = currentRelease(parseHistory(locked.history));
  const hadCompose = locked.hadCompose;
  /** Append the history line; with `list`, in the same session read back the history and this repository's images (for prune). */
  const record = async (
    entry: Omit<
      HistoryEntry,
      | "time"
      | "action"
      | "sha"
      | "tags"
      | "digest"
      | "image"
      | "previousDigest"
      | "previousSha"
      | "fallback"
      | "durationMs"
      | "holder"
    >,
    list = false,
  ) => {
    const line: HistoryEntry = {
      time: clock.now().toISOString(),
      action,
      sha: target.sha,
      tags: target.tags,
      digest: target.digest,
      image: target.image,
      previousDigest: previous?.digest ?? null,
      previousSha: previous?.sha ?? null,
      fallback: target.fallback,
      durationMs: Math.round(clock.monotonic() - ctx.started),
      holder: input.holder,
      ...entry,
    };
    const r = await remote.run(list ? cmd.appendAndList(l, target.name) : cmd.append(l.history), {
      stdin: rep.clean(historyLine(line)),
    });
    const listed = list ? splitListing(r.stdout) : undefined;
    if (r.code !== 0) rep.warn(`WARNING: could not append to ${l.history}: ${r.stderr.trim()}`);
    return listed;
  };

  try {
    try {
      if (input.credentials) {
        const creds = input.credentials;
        await rep.phase("login", async () => {
          await must(
            ctx,
            cmd.login(l, input.image.registry, creds.username),
            (step) =>
              step === "config-dir" ? `creating ${l.dockerConfig}` : `\`docker login ${input.image.registry}\``,
            "login",
            {
              stdin: `${creds.password}\n`,
              timeoutMs: 60_000,
            },
          );
          loggedIn = true;
          return {
            value: undefined,
            summary: `${creds.username} @ ${input.image.registry} (token on stdin, config in ${l.dockerConfig})`,
          };
        });
      }

      await rep.phase("render", async () => {
        await must(ctx, cmd.write(l.next), `writing ${l.next}`, "render", { stdin: rendered.yaml });
        const steps: Record<string, string> = {
          config: "`docker compose config` on the rendered file",
          keep: `keeping ${l.previous}`,
          rename: `renaming ${l.next} to ${l.compose}`,
        };
        await must(
          ctx,
          cmd.switchCompose(ctx.project, l, hadCompose),
          (step) => steps[step ?? ""] ?? `checking and switching to ${l.next}`,
          "render",
          { timeoutMs: 60_000 },
        );
        switched = true;
        return {
          value: undefined,
          summary: `${l.compose} pins ${target.image}${hadCompose ? ` (previous kept as ${l.previous})` : ""}`,
        };
      });

      await rep.phase("pull", async () => {
        const ref = `${target.name}@${target.digest}`;
        const out = await must(ctx, cmd.pullMissing(l, ref), `\`docker pull ${ref}\``, "pull", {
          timeoutMs: 30 * 60_000,
        });
        if (out.trim() === IMAGE_PRESENT)
          return { value: undefined, summary: `skipped: ${target.digest.slice(0, 19)}… already on the host` };
        return { value: undefined, summary: `pulled ${ref}` };
      });

      await upAndHealthy(ctx);
    } catch (e) {
      const err = e instanceof PipelineError ? e : new PipelineError((e as Error).message);
      const interrupted = input.signal?.aborted === true;
      rep.warn(`FAILED in phase ${err.phase ?? "?"}: ${rep.clean(err.message)}`);
      if (!switched) {
        await record({
          result: "failed",
          running: previous,
          failedPhase: err.phase ?? "?",
          error: rep.clean(err.message).slice(0, HISTORY_ERROR_MAX),
          ...(interrupted ? { interrupted } : {}),
        });
        throw new PipelineError(
          `${action} of ${target.image} failed in phase ${err.phase ?? "?"}; the running app was not touched: ${err.message}`,
          err.phase,
        );
      }
      // An interruption stops the new release, not the way back: recovery runs without the abort signal, so
      // Ctrl-C leaves the previous release running (a second Ctrl-C kills the process outright, lock and all).
      if (interrupted)
        rep.warn(
          `interrupted: restoring the previous release first (Ctrl-C again to stop at once; the lock ${l.lock} then stays — remove it with --break-lock)`,
        );
      const diag = await rep.phase("diagnostics", async () => {
        const lines = await collectDiagnostics(remote, {
          layout: l,
          project: ctx.project,
          composeFile: l.compose,
          service: d.service,
          name: target.name,
          registry: input.image.registry,
          image: target.image,
          loggedIn,
        });
        return { value: lines, summary: `what ${remote.label} looked like:` };
      });
      for (const line of diag) rep.out(line);
      const { signal: _aborted, ...calm } = input;
      const after = await autoRollback({ ...ctx, input: calm }, hadCompose, previous);
      await record({
        result: after.rolledBack ? "rolled-back" : "failed",
        running: after.running,
        failedPhase: err.phase ?? "?",
        error: rep.clean(err.message).slice(0, HISTORY_ERROR_MAX),
        ...(interrupted ? { interrupted } : {}),
      });
      throw new PipelineError(
        `${action} of ${target.image} failed in phase ${err.phase ?? "?"}: ${err.message}\n${after.message}`,
        err.phase,
      );
    }

    const listed = await rep.phase("history", async () => {
      const got = await record({ result: "success", running }, true);
      return { value: got, summary: `appended to ${l.history}` };
    });
    await rep.phase("prune", async () => {
      const keep = digestsToKeep(parseHistory(listed?.history ?? ""), d.keepImages);
      const digests = new Set(
        (listed?.images ?? "")
          .split("\n")
          .map((x) => x.split(" ")[1] ?? "")
          .filter((x) => x.startsWith("sha256:")),
      );
      const refs = [...digests].filter((digest) => !keep.has(digest)).map((digest) => `${target.name}@${digest}`);
      const removed = refs.length
        ? (await remote.run(cmd.imagesRemove(refs))).stdout.split("\n").filter((x) => refs.includes(x))
        : [];
      return {
        value: undefined,
        summary: removed.length
          ? `removed ${removed.length} image(s) beyond the last ${d.keepImages} deployed`
          : `nothing beyond the last ${d.keepImages} deployed digests`,
      };
    });
    const durationMs = clock.monotonic() - ctx.started;
    rep.out(
      `${action === "deploy" ? "deployed" : "rolled back to"} ${target.image} (sha ${target.sha}) in ${seconds(durationMs)}${target.fallback ? " — FALLBACK: this is `latest`, not the requested sha" : ""}`,
    );
    return { result: "success", running, fallback: target.fallback, durationMs, compose: rendered.yaml };
  } finally {
    await releaseLock(remote, l, lockId, loggedIn ? input.image.registry : undefined).then(
      (note) => note && rep.warn(`WARNING: ${note}`),
      (e) => rep.warn(`WARNING: could not release ${l.lock}: ${(e as Error).message} — remove it with --break-lock`),
    );
  }
}

/** The history script's output (cmd.appendAndList): the history file's text and the image list. */
function splitListing(stdout: string): { history: string; images: string } {
  const h = stdout.indexOf(`${HISTORY_MARK}\n`);
  const i = stdout.lastIndexOf(`\n${IMAGES_MARK}\n`);
  if (h < 0 || i < h) return { history: "", images: "" };
  return {
    history: stdout.slice(h + HISTORY_MARK.length + 1, i + 1),
    images: stdout.slice(i + IMAGES_MARK.length + 2),
  };
}

/** Restore the previous compose file and bring it up healthy; a first deploy is stopped instead. */
async function autoRollback(
  ctx: Ctx,
  hadCompose: boolean,
  previous: Release | null,
): Promise<{ rolledBack: boolean; running: Release | null; message: string }> {
  const { rep, l, input } = ctx;
  const d = input.deploy;
  if (!hadCompose) {
    await rep.phase("rollback", async () => {
      await ctx.remote.run(compose(ctx, l.compose, composeArgs.stop(d.service)), { timeoutMs: 120_000 });
      await ctx.remote.run(cmd.move(l.compose, l.failed));
      return {
        value: undefined,
        summary: `first deploy: nothing to roll back to; ${d.service} stopped, its compose file kept as ${l.failed}`,
      };
    });
    return {
      rolledBack: false,
      running: null,
      message: `nothing to roll back to (first deploy): ${d.service} is left stopped; its compose file is ${l.failed}`,
    };
  }
  const what = previous ? `${previous.digest} (sha ${previous.sha})` : `the previous compose file ${l.previous}`;
  try {
    await rep.phase("rollback", async () => {
      await must(ctx, cmd.copy(l.compose, l.failed), `keeping ${l.failed}`, "rollback");
      await must(ctx, cmd.copy(l.previous, l.compose), `restoring ${l.previous}`, "rollback");
      return { value: undefined, summary: `restored ${l.compose} from ${l.previous} → ${what}` };
    });
    await upAndHealthy(ctx, "rollback-");
    rep.out(`rolled back to ${what}`);
    return { rolledBack: true, running: previous, message: `rolled back to ${what}` };
  } catch (e) {
    rep.warn(`ROLLBACK FAILED: ${rep.clean((e as Error).message)}`);
    return {
      rolledBack: false,
      running: null,
      message: `the rollback to ${what} FAILED too (${(e as Error).message}); the host needs attention — see the diagnostics above`,
    };
  }
}
