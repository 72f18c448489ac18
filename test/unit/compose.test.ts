import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { renderCompose } from "../../ci/core/compose.js";
import { ConfigError } from "../../ci/core/errors.js";

const IMAGE = `ghcr.io/daemin-kim/hamalog-backend:453a6545b97fe240727c378291230abeb793d851@sha256:${"a".repeat(64)}`;
const TEMPLATE = `version: "3.8"
services:
  hamalog-app:
    image: ghcr.io/daemin-kim/hamalog-backend:\${IMAGE_TAG:-latest}
    build: .
    ports: ["127.0.0.1:8080:8080"]
    environment:
      NOTE: "it's; $$(not run) \`x\`"
  mysql:
    image: mysql:8
`;

describe("renderCompose", () => {
  it("drops `version` with a warning and pins the app service's image", () => {
    const r = renderCompose({
      template: TEMPLATE,
      templateName: "docker-compose.prod.yml",
      service: "hamalog-app",
      image: IMAGE,
    });
    const doc = parse(r.yaml);
    expect(doc.version).toBeUndefined();
    expect(doc.services["hamalog-app"].image).toBe(IMAGE);
    expect(doc.services["hamalog-app"].build).toBeUndefined();
    expect(doc.services.mysql.image).toBe("mysql:8");
    expect(doc.services["hamalog-app"].environment.NOTE).toBe("it's; $$(not run) `x`");
    expect(r.warnings.join("\n")).toMatch(/docker-compose.prod.yml: removed the top-level `version: 3.8`.*obsolete/);
    expect(r.warnings.join("\n")).toMatch(/removed `build:`/);
  });

  it("renders inline services from config without warnings", () => {
    const r = renderCompose({
      services: { app: { ports: ["8080:8080"] } },
      service: "app",
      image: IMAGE,
      header: ["sha x", "two\nlines"],
    });
    expect(r.warnings).toEqual([]);
    expect(r.yaml.startsWith("# sha x\n# two lines\n")).toBe(true);
    expect(parse(r.yaml)).toEqual({ services: { app: { ports: ["8080:8080"], image: IMAGE } } });
  });

  it("is deterministic (same input, same bytes)", () => {
    const a = renderCompose({ template: TEMPLATE, service: "hamalog-app", image: IMAGE });
    const b = renderCompose({ template: TEMPLATE, service: "hamalog-app", image: IMAGE });
    expect(a.yaml).toBe(b.yaml);
  });

  it("expands YAML merge keys (x- anchors are common in compose files)", () => {
    const t = "x-base: &base\n  restart: always\nservices:\n  app:\n    <<: *base\n    image: old\n";
    expect(parse(renderCompose({ template: t, service: "app", image: IMAGE }).yaml).services.app).toEqual({
      restart: "always",
      image: IMAGE,
    });
  });

  it.each([
    [
      "a missing app service, naming the services there",
      "services:\n  web: {}\n",
      /deploy\/service: `hamalog-app` is not a service.*services there: web/,
    ],
    ["no services", "volumes: {}\n", /has no `services:`/],
    ["a YAML syntax error", "services: [\n", /YAML syntax error/],
    ["a non-mapping file", "- a\n", /must be a compose file/],
  ])("rejects %s", (_n, template, msg) => {
    expect(() => renderCompose({ template, service: "hamalog-app", image: IMAGE })).toThrow(ConfigError);
    expect(() => renderCompose({ template, service: "hamalog-app", image: IMAGE })).toThrow(msg);
  });
});
