// What the Dagger door's results carry, from the deploy core's outcome to the typed objects a caller chains: the
// fields, the enum members (named as the CLI prints them), and `summary`, the one screen a CI log ends on.
import { describe, expect, it } from "vitest";
import { deploymentOf as deploymentData } from "../../ci/core/dagger/work.js";
import { MAX_LIST, shipmentSummary, statusSummary, verifiedSummary } from "../../ci/core/dagger/summary.js";
import type { Outcome } from "../../ci/core/deploy/run.js";
import { parseSha } from "../../ci/core/tags.js";
import { DeployResult, Strategy, deploymentOf, shipmentOf, statusOf } from "../../ci/src/results.js";

const SHA = parseSha("453a6545b97fe240727c378291230abeb793d851");
const DIGEST = `sha256:${"ab".repeat(32)}`;
const IMAGE = `ghcr.io/daemin-kim/hamalog-backend:${SHA}@${DIGEST}`;

const outcome = (o: Partial<Outcome> = {}): Outcome => ({
  result: "success",
  running: { sha: SHA, tags: [SHA], digest: DIGEST, image: IMAGE, fallback: false, colour: "green" },
  durationMs: 41234.4,
  compose: "services:\n  hamalog-app:\n    image: …\n",
  changes: ["started hamalog-app-green", "switched the proxy to green", "stopped hamalog-app-blue (kept)"],
  ...o,
});
const at = { action: "deploy" as const, host: "hamalog.example.com", strategy: "blue-green", log: ["[connect] ok"] };

describe("a deployment, from the core's outcome", () => {
  it("carries what runs, the outcome and what changed; the enums are the members the CLI prints", () => {
    const d = deploymentOf(deploymentData(outcome(), at));
    expect(d).toMatchObject({
      reference: IMAGE,
      digest: DIGEST,
      sha: SHA,
      host: "hamalog.example.com",
      result: DeployResult.SUCCESS,
      rolledBackTo: "",
      fallbackUsed: false,
      strategy: Strategy.BLUE_GREEN,
      colour: "green",
      durationMs: 41234,
      changes: ["started hamalog-app-green", "switched the proxy to green", "stopped hamalog-app-blue (kept)"],
      log: ["[connect] ok"],
    });
    expect(d.summary).toBe(
      [
        `deploy succeeded on hamalog.example.com in 41.2s (strategy blue-green): it runs sha ${SHA} as green`,
        `  reference ${IMAGE}`,
        `  digest    ${DIGEST}`,
        "changed:",
        "  - started hamalog-app-green",
        "  - switched the proxy to green",
        "  - stopped hamalog-app-blue (kept)",
      ].join("\n"),
    );
  });

  it.each([
    [
      "dry-run",
      DeployResult.DRY_RUN,
      /^deploy dry run on hamalog\.example\.com \(strategy recreate\): nothing was changed; it would run sha 453a6545/,
    ],
    [
      "already-live",
      DeployResult.ALREADY_LIVE,
      /^deploy: sha 453a6545\S+ is already live and healthy on hamalog\.example\.com — nothing was changed \(force replaces it\)/,
    ],
  ] as const)("%s: %s, and the summary says nothing changed", (result, member, head) => {
    const d = deploymentOf(
      deploymentData(outcome({ result, changes: [], running: { ...outcome().running, colour: undefined } }), {
        ...at,
        strategy: "recreate",
      }),
    );
    expect(d.result).toBe(member);
    expect(d.strategy).toBe(Strategy.RECREATE);
    expect(d.summary).toMatch(head);
    expect(d.summary).not.toMatch(/changed:/);
    if (result === "dry-run") expect(d.summary).toMatch(/end the call on `compose`/);
  });

  it("a rollback names the commit rolled back to; a fallback says so loudly", () => {
    const back = deploymentOf(deploymentData(outcome(), { ...at, action: "rollback" }));
    expect(back.rolledBackTo).toBe(SHA);
    expect(back.summary).toMatch(/^rollback succeeded on /);
    expect(back.summary).toContain(`rolled back to sha ${SHA}`);
    const fell = deploymentOf(deploymentData(outcome({ running: { ...outcome().running, fallback: true } }), at));
    expect(fell.fallbackUsed).toBe(true);
    expect(fell.summary).toContain("FALLBACK: the sha tag was missing, `latest` was deployed");
  });

  it("a long list of changes is cut to one screen, saying how many more and where they are", () => {
    const many = Array.from({ length: MAX_LIST + 5 }, (_, i) => `change ${i + 1}`);
    const d = deploymentOf(deploymentData(outcome({ changes: many }), at));
    expect(d.changes).toHaveLength(MAX_LIST + 5);
    expect(d.summary.split("\n").filter((l) => l.startsWith("  - "))).toHaveLength(MAX_LIST);
    expect(d.summary).toContain("  … 5 more (end the call on `changes`)");
  });

  it("a strategy the Dagger enum lacks is this door's bug, named with the file to fix", () => {
    expect(() => deploymentOf(deploymentData(outcome(), { ...at, strategy: "nomad" }))).toThrow(
      "internal error: the core answered Strategy `nomad`, which the Dagger enum Strategy lacks — add it to ci/src/results.ts",
    );
  });
});

describe("the other results' summaries", () => {
  it("status: what it printed", () => {
    const lines = ["[status] hamalog.example.com /opt/hamalog (…)", "live: …", "the host matches the journal"];
    const s = { reference: IMAGE, digest: DIGEST, sha: SHA, host: "h", colour: "", containerState: "running" };
    const data = {
      ...s,
      containerHealth: "healthy",
      health: "",
      mismatches: [],
      history: [],
      log: lines,
    };
    expect(statusOf({ ...data, summary: statusSummary(data, lines) }).summary).toBe(lines.join("\n"));
    expect(statusSummary(data, [])).toBe("status of h: nothing was reported");
  });

  it("shipment: what was published, the digest the registry proved, then the deployment", () => {
    const verified = {
      reference: IMAGE,
      digest: DIGEST,
      mediaType: "application/vnd.oci.image.index.v1+json",
      platforms: ["linux/amd64"],
    };
    const v = { ...verified, summary: verifiedSummary(verified) };
    expect(v.summary).toBe(
      `verified ${IMAGE}\n  digest     ${DIGEST}\n  media type application/vnd.oci.image.index.v1+json\n  platforms  linux/amd64`,
    );
    const deployment = deploymentData(outcome(), at);
    const published = [
      `ghcr.io/daemin-kim/hamalog-backend:${SHA}@${DIGEST}`,
      `ghcr.io/daemin-kim/hamalog-backend:latest@${DIGEST}`,
    ];
    const summary = shipmentSummary({ sha: SHA, branch: "main", published, verified: v, deployment });
    const shipped = shipmentOf({ published, verified: v, deployment, summary });
    expect(shipped.summary.split("\n").slice(0, 5)).toEqual([
      `shipped sha ${SHA} (main) to hamalog.example.com`,
      "published:",
      `  ${published[0]}`,
      `  ${published[1]}`,
      `verified: ${IMAGE} (the registry serves ${DIGEST})`,
    ]);
    expect(shipped.summary).toContain(deployment.summary);
    expect(shipped.verified.digest).toBe(DIGEST);
    expect(shipped.deployment.result).toBe(DeployResult.SUCCESS);
    expect(shipped.summary.split("\n").length).toBeLessThanOrEqual(24);
  });
});
