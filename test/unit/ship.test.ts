// ship's order, fail-fast rule and digest hand-over, with recording phases.
import { describe, expect, it } from "vitest";
import { ConfigError, PipelineError } from "../../ci/core/errors.js";
import {
  checkDeployed,
  pinVerify,
  precheckCompose,
  runShip,
  SHIP_PHASES,
  shipDeployConfig,
  type ShipSteps,
} from "../../ci/core/ship.js";
import { parseSha } from "../../ci/core/tags.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const REF = "ghcr.io/a/b:453a6545b97fe240727c378291230abeb793d851";

function recorder(over: Partial<ShipSteps<string, string>> = {}) {
  const calls: string[] = [];
  const steps: ShipSteps<string, string> = {
    build: async () => (calls.push("build"), "image"),
    push: async (built) => (calls.push(`push ${built}`), { digest: D1, published: [`${REF}@${D1}`] }),
    verify: async (p) => (calls.push(`verify ${p.digest}`), { reference: REF, digest: D1 }),
    deploy: async (v) => (calls.push(`deploy ${v.reference}@${v.digest}`), "deployed"),
    ...over,
  };
  return { calls, steps };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected ship to fail");
}

describe("runShip", () => {
  it("runs build → push → verify-manifest → deploy and deploys the verified digest", async () => {
    const { calls, steps } = recorder();
    const phases: string[] = [];
    const out = await runShip(steps, (p) => phases.push(p));
    expect(phases).toEqual([...SHIP_PHASES]);
    expect(calls).toEqual(["build", "push image", `verify ${D1}`, `deploy ${REF}@${D1}`]);
    expect(out).toEqual({
      published: [`${REF}@${D1}`],
      verified: { reference: REF, digest: D1 },
      deployed: "deployed",
    });
  });

  it.each([
    {
      phase: "build",
      at: { build: async () => Promise.reject(new Error("Dockerfile: no such file")) },
      ran: [] as string[],
    },
    {
      phase: "push",
      at: { push: async () => Promise.reject(new PipelineError("denied: permission_denied", "push")) },
      ran: ["build"],
    },
    {
      phase: "verify-manifest",
      at: { verify: async () => Promise.reject(new Error("manifest unknown")) },
      ran: ["build", "push image"],
    },
    {
      phase: "deploy",
      at: { deploy: async () => Promise.reject(new Error("health gate failed")) },
      ran: ["build", "push image", `verify ${D1}`],
    },
  ])("stops at a failing $phase, names it, and runs nothing after it", async ({ phase, at, ran }) => {
    const { calls, steps } = recorder(at as Partial<ShipSteps<string, string>>);
    const e = await failure(runShip(steps));
    expect(e).toBeInstanceOf(PipelineError);
    expect((e as PipelineError).phase).toBe(phase);
    expect(e.message).toMatch(new RegExp(`^ship failed in phase \`${phase}\`: `));
    const notRun = SHIP_PHASES.slice(SHIP_PHASES.indexOf(phase as (typeof SHIP_PHASES)[number]) + 1);
    expect(e.message).toContain(`not run: ${notRun.length ? notRun.join(", ") : "nothing"}`);
    expect(calls).toEqual(ran);
  });

  it("refuses to deploy when the registry answers another digest than the one pushed", async () => {
    const { calls, steps } = recorder({ verify: async () => ({ reference: REF, digest: D2 }) });
    const e = await failure(runShip(steps));
    expect((e as PipelineError).phase).toBe("verify-manifest");
    expect(e.message).toMatch(
      new RegExp(`pushed ${D1} but the registry answers ${D2} for ${REF.replace(/[.]/g, "\\.")}`),
    );
    expect(calls.some((c) => c.startsWith("deploy"))).toBe(false);
  });

  it("keeps a config error a config error (exit 2), with the phase in the message", async () => {
    const { steps } = recorder({
      build: async () => Promise.reject(new ConfigError("--sha: `453a654` is not a full commit sha")),
    });
    const e = await failure(runShip(steps));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/^ship failed in phase `build`: --sha: `453a654`/);
  });
});

describe("ship's deploy guards", () => {
  it("never lets ship's deploy fall back to latest", () => {
    expect(shipDeployConfig({ fallback: "latest" as const, host: "h" })).toEqual({ fallback: "none", host: "h" });
    expect(shipDeployConfig({ fallback: "none" as const })).toEqual({ fallback: "none" });
  });

  it("pins the deploy's own registry check to the digest ship verified", async () => {
    const asked: string[] = [];
    const verify = async (req: { reference: string }) => (
      asked.push(req.reference),
      { reference: `${REF}@${D1}`, digest: D1 }
    );
    await expect(pinVerify(verify, D1)({ reference: "abc" })).resolves.toEqual({
      reference: `${REF}@${D1}`,
      digest: D1,
    });
    const e = await failure(pinVerify(verify, D2)({ reference: "abc" }));
    expect(e).toBeInstanceOf(PipelineError);
    expect(e.message).toMatch(
      new RegExp(`resolves to ${D1}, not ${D2} that this ship pushed and verified; the tag moved`),
    );
    expect(asked).toEqual(["abc", "abc"]);
  });

  it("checks that the host runs the verified digest", () => {
    expect(() => checkDeployed(D1, { reference: REF, digest: D1 })).not.toThrow();
    expect(() => checkDeployed(D2, { reference: REF, digest: D1 })).toThrow(
      /the host runs sha256:2+, but ship verified sha256:1+/,
    );
  });
});

describe("precheckCompose: a bad template fails before build, not after push", () => {
  const image = { registry: "ghcr.io", repository: "daemin-kim/hamalog-backend" };
  const sha = parseSha("453a6545b97fe240727c378291230abeb793d851");
  it("passes a template that has the app service", () => {
    expect(() =>
      precheckCompose({ template: "services:\n  hamalog-app:\n    image: x\n" }, "hamalog-app", image, sha),
    ).not.toThrow();
  });
  it("rejects a template without the app service, naming it", () => {
    expect(() =>
      precheckCompose(
        { template: "services:\n  web:\n    image: x\n", templateName: "c.yml" },
        "hamalog-app",
        image,
        sha,
      ),
    ).toThrow(ConfigError);
    expect(() =>
      precheckCompose(
        { template: "services:\n  web:\n    image: x\n", templateName: "c.yml" },
        "hamalog-app",
        image,
        sha,
      ),
    ).toThrow(/hamalog-app/);
  });
  it("rejects a template that does not parse", () => {
    expect(() =>
      precheckCompose({ template: "services: [", templateName: "c.yml" }, "hamalog-app", image, sha),
    ).toThrow(/c\.yml: YAML syntax error/);
  });
});
