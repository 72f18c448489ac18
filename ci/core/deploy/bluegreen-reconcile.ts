// Blue/green's half of reconciliation: the planner's (reconcile.ts) proxy actions, performed with the same proxy
// code the deploy uses (proxy.ts). Route the public port to the journal's live colour (Caddyfile + graceful
// reload; the proxy started from the live release's file when it does not run), bring that colour up from its
// release file and health-gate it through its check site, remove a dead attempt's candidate colour.
import { posix } from "node:path";
import { caddyfile, colourService, upstreamPort, type Colour } from "./colours.js";
import { journalCmd } from "./journal-commands.js";
import type { Slot } from "./journal.js";
import { proxyCmd, proxyUp, writeCaddyfile, type ProxyRef } from "./proxy.js";
import { must, type Session } from "./session.js";
import { healthGate } from "./steps.js";

/** What the actions of one recovery share: the proxy once found (its check sites gate the restored colour). */
export interface ColourRecovery {
  proxy?: ProxyRef;
}

const healthPath = (s: Session) => {
  const u = s.input.deploy.health.url;
  return u ? new URL(u).pathname + new URL(u).search : "/";
};

/**
 * Make the proxy route the public port to `colour`. Needs deploy/proxy/publish (the public site's port): a run
 * configured for recreate that finds a dead blue/green attempt leaves the routes as they are and says so (its own
 * `up` then replaces the proxy and the colours).
 */
export async function routeProxy(s: Session, ctx: ColourRecovery, colour: Colour, live: Slot): Promise<void> {
  const d = s.input.deploy;
  if (!d.proxy.publish) {
    s.rep.warn(
      `WARNING: deploy/proxy/publish is not set: the proxy's routes are left as they are (the recreate deploy replaces it)`,
    );
    return;
  }
  const text = caddyfile(d, colour, upstreamPort(s.input.compose, d.service));
  const file = posix.join(s.l.dir, live.composeFile);
  const found = await proxyUp(s, false, healthPath(s), file).catch(() => undefined);
  if (found) {
    await writeCaddyfile(s, text, found, "reconcile");
    ctx.proxy = found;
    return;
  }
  // No proxy runs (it died with the attempt): it starts with the restored routes.
  await writeCaddyfile(s, text, undefined, "reconcile");
  ctx.proxy = await proxyUp(s, true, healthPath(s), file);
}

/** The live colour runs (started again from its release file if not), healthy per compose and through its check site. */
export async function restoreColour(s: Session, ctx: ColourRecovery, slot: Slot & { colour: Colour }): Promise<void> {
  const d = s.input.deploy;
  const svc = colourService(d.service, slot.colour);
  await s.rep.phase("recover-up", async () => {
    await must(
      s,
      journalCmd.compose(s.l, s.project, slot.composeFile, [
        "up",
        "--detach",
        "--no-deps",
        "--wait",
        "--wait-timeout",
        String(d.waitTimeout),
        svc,
      ]),
      `starting ${svc}`,
      "recover-up",
      { timeoutMs: (d.waitTimeout + 120) * 1000 },
    );
    return {
      value: undefined,
      summary: `${svc} runs ${slot.image.split("@")[1]?.slice(0, 19)}… from ${slot.composeFile}`,
    };
  });
  const url = ctx.proxy?.checkUrls[slot.colour];
  if (!url || !d.health.url) return;
  await s.rep.phase("recover-health", async () => ({
    value: undefined,
    summary: `${await healthGate(s, url, "recover-health")} (check site)`,
  }));
}

/** Remove the colour a dead attempt started (or was about to start): it never went live. */
export async function removeColour(s: Session, colour: Colour): Promise<void> {
  const svc = colourService(s.input.deploy.service, colour);
  await must(s, proxyCmd.removeService(s.project, svc), `removing ${svc}`, "reconcile", { timeoutMs: 120_000 });
}
