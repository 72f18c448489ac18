// Preflight, off the host: the tag from the one tag definition, the registry's answer for it (verify-manifest
// → digest), and the host's platform present in the image (verify checks it); the health check's tunnel. A missing
// tag or an auth problem stops here, before anything on the host changes. `latest` is used only when
// deploy/fallback says so, and then loudly.
import { PipelineError } from "../errors.js";
import { formatReference, type ImageName } from "../reference.js";
import { LATEST, shaTag, type Sha } from "../tags.js";
import type { Release } from "./release.js";
import type { Remote } from "./remote.js";
import type { Reporter } from "./report.js";

import type { Credentials } from "../registry/auth.js";
import type { VerifyRequest, VerifyResult } from "../registry/verify.js";

/** verifyManifest from registry/verify.ts, injected by the doors (so the core runs with any client). */
export type VerifyFn = (req: VerifyRequest, signal?: AbortSignal) => Promise<VerifyResult>;

export interface PreflightInput extends ImageName {
  sha: Sha;
  credentials?: Credentials;
  /** deploy/platform; when unset, the host's from `docker info`. */
  platform?: string;
  fallback: "none" | "latest";
  /** Ctrl-C / a CI cancel: ends the registry requests and host probes at once (they may wait ~30 s otherwise). */
  signal?: AbortSignal;
  /** deploy/health/url: checked through an SSH tunnel, so the host must allow forwarding (probeForwarding). */
  healthUrl?: string;
}

function diagnosisKind(e: unknown): string | undefined {
  const d = (e as { diagnosis?: { kind?: unknown } } | null)?.diagnosis;
  return typeof d?.kind === "string" ? d.kind : undefined;
}

/** Whether a failed tunnelled request was refused by sshd's policy, not by the app. */
function forwardingProhibited(e: unknown): boolean {
  const x = e as { reason?: unknown; message?: unknown };
  return x?.reason === 1 || /administratively prohibited|Channel open failure: open failed/i.test(String(x?.message));
}

/**
 * The health gate asks the app through a channel forwarded by the host's sshd. Hardened hosts set
 * `AllowTcpForwarding no`; then every gate would fail after the switch (and a first deploy would stop a healthy
 * app), so it is found out here, before anything changes. Any other answer (the app down, refused, slow) is the
 * gate's business later.
 */
export async function probeForwarding(remote: Remote, healthUrl: string): Promise<void> {
  if (!remote.probeTunnel) return;
  const u = new URL(healthUrl);
  try {
    // A bare channel, no request: the running app sees a connect and nothing else.
    await remote.probeTunnel(u.hostname.replace(/^\[|\]$/g, ""), Number(u.port || 80), 5_000);
  } catch (e) {
    if (!forwardingProhibited(e)) return;
    const user = remote.label.split("@")[0];
    throw new PipelineError(
      `${remote.label} refuses TCP forwarding (sshd \`AllowTcpForwarding no\`), and deploy/health/url (${healthUrl}) is checked through it: ` +
        `every deploy would fail its health gate after switching. Allow local forwarding for ${user} in the host's sshd_config ` +
        `(\`Match User ${user}\` + \`AllowTcpForwarding local\`, then reload sshd), or leave deploy/health/url unset to gate on ` +
        `the compose healthcheck alone (\`up --wait\`). Nothing on ${remote.label} was changed`,
      "preflight",
    );
  }
}

/** `docker info` says `x86_64`/`aarch64`; images say `amd64`/`arm64`. */
export function hostPlatform(dockerInfo: string): string {
  const [os = "linux", arch = ""] = dockerInfo.trim().split("/");
  const map: Record<string, string> = {
    x86_64: "amd64",
    aarch64: "arm64",
    armv7l: "arm/v7",
    armv6l: "arm/v6",
    i686: "386",
    i386: "386",
  };
  return `${os}/${map[arch] ?? arch}`;
}

/** The release `p.sha` names, verified in its registry for the host's platform (`hostInfo`: `docker info`'s). */
export async function preflight(
  remote: Remote,
  p: PreflightInput & { hostInfo?: string },
  verify: VerifyFn,
  rep: Reporter,
): Promise<Release> {
  const tag = shaTag(p.sha);
  const name = `${p.registry}/${p.repository}`;
  if (p.healthUrl) await probeForwarding(remote, p.healthUrl);
  const platform = p.platform ?? (p.hostInfo ? hostPlatform(p.hostInfo) : "");
  const ask = (reference: string) =>
    verify(
      {
        registry: p.registry,
        repository: p.repository,
        reference,
        platform,
        ...(p.credentials ? { credentials: p.credentials } : {}),
        ...(reference === tag ? { wantedSha: p.sha } : {}),
      },
      p.signal,
    );
  let result: VerifyResult;
  let usedTag = tag;
  let fallback = false;
  try {
    result = await ask(tag);
  } catch (e) {
    const untouched = `nothing on ${remote.label} was changed`;
    if (diagnosisKind(e) === "manifest-unknown" && p.fallback === "latest") {
      rep.warn("!".repeat(78));
      rep.warn(
        `WARNING: ${name}:${tag} does not exist; deploy/fallback is \`latest\`, so deploying ${name}:${LATEST} instead.`,
      );
      rep.warn(
        `WARNING: that is NOT the commit you asked for. Push ${tag.slice(0, 12)} with \`hamalog tag\`'s tags to stop this.`,
      );
      rep.warn("!".repeat(78));
      try {
        result = await ask(LATEST);
      } catch (e2) {
        throw new PipelineError(
          `fallback to ${LATEST} failed too: ${(e2 as Error).message.trimEnd()}\nThe deploy stopped in preflight: ${untouched}.`,
          "preflight",
        );
      }
      usedTag = LATEST;
      fallback = true;
    } else {
      const hint =
        diagnosisKind(e) === "manifest-unknown" && p.fallback === "none"
          ? "; deploy/fallback is `none`, so `latest` was not considered"
          : "";
      throw new PipelineError(
        `${(e as Error).message.trimEnd()}\nThe deploy stopped in preflight${hint}: ${untouched}.`,
        "preflight",
      );
    }
  }
  return {
    sha: p.sha,
    tags: [usedTag],
    digest: result.digest,
    image: formatReference({ registry: p.registry, repository: p.repository, tag: usedTag, digest: result.digest }),
    fallback,
  };
}
