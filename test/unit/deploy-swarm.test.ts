// The swarm strategy, pure: the stack file rendered from the compose template (table-driven), the env file in
// docker's format and its export for ${VAR} on a real sh, the recovery plans for each phase an attempt can die in,
// what a watched update's output says, and the check status and reconcile make against the manager's view.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfig, requireDeploy } from "../../ci/core/config.js";
import { SWARM_PART } from "../../ci/core/deploy/host/swarm.js";
import { emptyJournal, type Journal, type JournalAttempt, type Slot } from "../../ci/core/deploy/journal.js";
import { planRecovery } from "../../ci/core/deploy/recovery.js";
import type { Setting } from "../../ci/core/deploy/strategy.js";
import { checkSwarm, judgeWatch, parseWatch } from "../../ci/core/deploy/swarm-report.js";
import { dockerEnvText, releaseLabel, renderStack, type StackInput } from "../../ci/core/deploy/swarm-stack.js";
import { parseSwarm } from "../../ci/core/deploy/swarm-view.js";
import { swarm } from "../../ci/core/deploy/swarm.js";
import type { Sha } from "../../ci/core/tags.js";

const HEALTH = `    healthcheck: {test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"], interval: 5s}\n`;
const TEMPLATE = `version: "3.8"
services:
  app:
    image: ghcr.io/x/app:old
    build: .
    ports: ["8080:8080"]
    container_name: app
    restart: unless-stopped
    env_file: [.env]
    depends_on: [mysql]
    volumes: ["./logs:/logs", "data:/data"]
${HEALTH}  mysql:
    image: mariadb
    env_file: [.env]
    environment: {MYSQL_PASSWORD: "\${DB_PASSWORD}"}
    volumes: ["mysql:/var/lib/mysql"]
  nginx:
    image: nginx
    configs: [{source: site, target: /etc/nginx/conf.d/site.conf}]
configs:
  site: {file: ./nginx-docker.conf}
volumes: {data: {}, mysql: {}}
`;

function config(extra = ""): Setting["deploy"] {
  return requireDeploy(
    parseConfig(
      `image: {repository: x/app}\ndeploy: {host: h, user: u, directory: /srv/app, composeFile: c.yml, service: app, strategy: swarm, proxy: {image: "caddy:2@sha256:${"c".repeat(64)}"}${extra}}\n`,
    ),
  );
}
const IMAGE = `ghcr.io/x/app:${"a".repeat(40)}@sha256:${"a".repeat(64)}`;
const input = (o: Partial<StackInput> = {}): StackInput => ({
  src: { template: TEMPLATE, templateName: "c.yml" },
  d: config(", swarm: {placement: {mysql: [node.hostname == db1]}}"),
  image: IMAGE,
  envFile: "/srv/app/releases/stack-aaaa-bbbb.env",
  envText: "DB_PASSWORD=s3cret\n",
  release: "aaaaaaaaaaaa-bbbbbbbb",
  recreate: [],
  header: ["rendered"],
  ...o,
});
const stackOf = (o: Partial<StackInput> = {}) => parse(renderStack(input(o)).yaml) as Record<string, any>;

describe("the stack file", () => {
  it("pins the app by digest and gives it Swarm's rolling update: replicas, start-first, rollback, dnsrr", () => {
    const s = stackOf();
    const app = s.services.app;
    expect(app.image).toBe(IMAGE);
    expect(app.deploy).toEqual({
      replicas: 2,
      endpoint_mode: "dnsrr",
      update_config: {
        parallelism: 1,
        order: "start-first",
        monitor: "10s",
        failure_action: "rollback",
        max_failure_ratio: 0,
      },
      rollback_config: { parallelism: 1, order: "start-first", monitor: "10s", failure_action: "pause" },
    });
    expect(app.labels).toEqual({ "hamalog.release": "aaaaaaaaaaaa-bbbbbbbb" });
    expect(app.env_file).toEqual(["/srv/app/releases/stack-aaaa-bbbb.env"]);
    // The edge publishes; Swarm names tasks, restarts by its policy, starts in no order, never builds.
    for (const k of ["ports", "container_name", "restart", "depends_on", "build"]) expect(app).not.toHaveProperty(k);
    expect(s).not.toHaveProperty("version");
    // A stack has no project directory: relative paths are the deploy directory's.
    expect(app.volumes).toEqual(["/srv/app/logs:/logs", "data:/data"]);
    expect(s.configs.site).toEqual({ file: "/srv/app/nginx-docker.conf" });
  });

  it.each([
    [", swarm: {replicas: 4, parallelism: 2, monitorSeconds: 30}", 4, 2, "30s"],
    [", swarm: {replicas: 1}", 1, 1, "10s"],
  ])("follows deploy/swarm %s", (extra, replicas, parallelism, monitor) => {
    const app = stackOf({ d: config(extra) }).services.app;
    expect(app.deploy).toMatchObject({ replicas, update_config: { parallelism, monitor } });
  });

  it("runs an edge Caddy on every node with a host-mode port, its Caddyfile a config named by its hash", () => {
    const r = renderStack(input({ d: config(", swarm: {publish: 8088}") }));
    const s = parse(r.yaml) as Record<string, any>;
    const edge = s.services["hamalog-edge"];
    expect(edge.image).toBe(`caddy:2@sha256:${"c".repeat(64)}`);
    expect(edge.ports).toEqual([{ target: 80, published: 8088, protocol: "tcp", mode: "host" }]);
    expect(edge.deploy.mode).toBe("global");
    expect(edge.deploy.update_config.order).toBe("stop-first");
    const key = edge.configs[0].source as string;
    expect(key).toMatch(/^hamalog-edge-[0-9a-f]{8}$/);
    expect(s.configs[key]).toEqual({ file: `/srv/app/${r.caddyfile.path}` });
    expect(r.caddyfile.path).toBe(`.hamalog/edge/Caddyfile-${key.slice("hamalog-edge-".length)}`);
    expect(r.caddyfile.content).toContain("dynamic a tasks.app 8080 {");
    expect(r.caddyfile.content).toMatch(/lb_try_duration 5s[\s\S]*dial_timeout 500ms/);
    // A changed upstream port is another Caddyfile: another config name (configs are immutable).
    const other = renderStack(input({ src: { template: TEMPLATE.replace('["8080:8080"]', '["9090"]') } }));
    expect(other.caddyfile.path).not.toBe(r.caddyfile.path);
  });

  it("pins an accessory to the node deploy/swarm/placement names, beside the template's own constraints", () => {
    const s = stackOf();
    expect(s.services.mysql.deploy.placement).toEqual({ constraints: ["node.hostname == db1"] });
    expect(s.services.mysql.deploy.labels["hamalog.definition"]).toMatch(/^[0-9a-f]{16}$/);
    expect(s.services.nginx.deploy.placement).toBeUndefined();
  });

  const defs = () => {
    const s = stackOf();
    return new Map([
      ["mysql", s.services.mysql.deploy.labels["hamalog.definition"] as string],
      ["nginx", s.services.nginx.deploy.labels["hamalog.definition"] as string],
      ["hamalog-edge", s.services["hamalog-edge"].deploy.labels["hamalog.definition"] as string],
    ]);
  };
  it.each([
    [
      "nothing observed (a first deploy): everything",
      undefined,
      [],
      ["app", "hamalog-edge", "mysql", "nginx"],
      "started",
    ],
    ["all running unchanged: only the app", "same", [], ["app"], "unchanged"],
    ["mysql asked to be recreated: the app and mysql", "same", ["mysql"], ["app", "mysql"], "unchanged"],
    ["mysql runs another definition: left running as it is", "mysql-old", [], ["app"], "unchanged"],
    ["nginx missing: started", "no-nginx", [], ["app", "nginx"], "unchanged"],
    ["the edge runs another definition: applied", "edge-old", [], ["app", "hamalog-edge"], "changed"],
  ])("includes what a stack deploy must apply — %s", (_, how, recreate, services, edge) => {
    const running =
      how === undefined
        ? undefined
        : new Map(
            [...defs()]
              .filter(([k]) => !(how === "no-nginx" && k === "nginx"))
              .map(([k, v]) => [
                k,
                (how === "mysql-old" && k === "mysql") || (how === "edge-old" && k === "hamalog-edge")
                  ? "0".repeat(16)
                  : v,
              ]),
          );
    const r = renderStack(input({ ...(running ? { running } : {}), recreate }));
    expect(Object.keys((parse(r.yaml) as Record<string, any>).services).sort()).toEqual(services);
    expect(r.edge).toBe(edge);
    if (how === "mysql-old") expect(r.accessories.find((x) => x.service === "mysql")?.state).toBe("changed");
  });

  it("a rotated secret an accessory interpolates is a change of that accessory", () => {
    const a = defs();
    const r = renderStack(input({ envText: "DB_PASSWORD=rotated\n", running: a }));
    expect(r.accessories.find((x) => x.service === "mysql")?.state).toBe("changed");
  });

  it.each([
    ["no healthcheck", TEMPLATE.replace(HEALTH, "")],
    ["disable: true", TEMPLATE.replace(HEALTH, "    healthcheck: {disable: true}\n")],
    ["test NONE", TEMPLATE.replace(HEALTH, '    healthcheck: {test: ["NONE"]}\n')],
  ])("refuses an app with %s, naming the service and the fix", (_, template) => {
    expect(() => renderStack(input({ src: { template, templateName: "c.yml" } }))).toThrow(
      /c\.yml: service app has no healthcheck — with deploy\/strategy swarm it is the only gate: .*Add one to app, e\.g\. healthcheck: \{test:/,
    );
  });

  it.each([
    ["the edge's name", TEMPLATE, /service hamalog-edge is reserved/],
    [
      "a placement for a service that is not there",
      TEMPLATE,
      /deploy\/swarm\/placement\/redis: not a service of c\.yml/,
    ],
    ["a global app", TEMPLATE.replace("    build: .", "    deploy: {mode: global}"), /has deploy\.mode global/],
  ])("refuses %s", (what, template, error) => {
    const d = what.startsWith("a placement") ? config(", swarm: {placement: {redis: [x]}}") : config();
    const t =
      what === "the edge's name" ? template.replace("  nginx:", "  hamalog-edge:\n    image: x\n  nginx:") : template;
    expect(() => renderStack(input({ src: { template: t, templateName: "c.yml" }, d }))).toThrow(error);
  });

  it("names the release by the app, its environment and the edge — not by which accessories it carries", () => {
    const id = (o: Partial<StackInput>) => renderStack(input(o)).identity;
    expect(id({})).toBe(id({ running: defs() }));
    expect(id({ envText: "DB_PASSWORD=other\n" })).not.toBe(id({}));
    expect(id({ d: config(", swarm: {replicas: 3}") })).not.toBe(id({}));
    expect(id({ d: config(", swarm: {publish: 81}") })).not.toBe(id({}));
    expect(releaseLabel("releases/stack-0123456789ab-cafebabe.yaml")).toBe("0123456789ab-cafebabe");
  });
});

describe("the env file in docker's format, and ${VAR} from it on a real sh", () => {
  it.each([
    ["A='plain'", "A=plain"],
    ["B='has space $x \"dq\" #hash'", 'B=has space $x "dq" #hash'],
    ["C='it\\'s'", "C=it's"],
    ["# comment", "# comment"],
    ["D=''", "D="],
  ])("%s → %s", (from, to) => {
    expect(dockerEnvText(from)).toBe(to);
  });

  const tmp = mkdtempSync(join(tmpdir(), "hamalog-swarm-env-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  it("exports every value literally (no expansion), and never a name that steers the shell or the docker CLI", () => {
    const file = join(tmp, "app.env");
    writeFileSync(
      file,
      `# header\nA=has space $HOME \`id\` "q" 'q'\nB=\nPATH=/evil\nDOCKER_HOST=tcp://evil\n9X=no\nC=last`,
    );
    const r = spawnSync(
      "sh",
      [
        "-c",
        `${SWARM_PART}\nswarm_env "$1" && printf '%s|%s|%s|%s|%s' "$A" "$B" "$C" "$PATH" "\${DOCKER_HOST:-unset}"`,
        "sh",
        file,
      ],
      { encoding: "utf8", env: { PATH: process.env.PATH } },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`has space $HOME \`id\` "q" 'q'||last|${process.env.PATH}|unset`);
  });
});

const D = (c: string) => `sha256:${c.repeat(64)}`;
const slot = (c: string): Slot => ({
  sha: c.repeat(40) as Sha,
  digest: D(c),
  image: `ghcr.io/x/app:${c.repeat(40)}@${D(c)}`,
  tags: [c.repeat(40)],
  fallback: false,
  composeFile: `releases/stack-${c.repeat(12)}-0000000${c}.yaml`,
  envFile: `releases/stack-${c.repeat(12)}-0000000${c}.env`,
  since: "2026-01-01T00:00:00.000Z",
});
const attempt = (c: string, phase: string): JournalAttempt => ({
  id: "a1",
  token: 7,
  holder: "ci",
  action: "deploy",
  phase,
  startedAt: "2026-01-01T00:01:00.000Z",
  strategy: "swarm",
  candidate: slot(c),
});
const setting: Setting = {
  deploy: config(),
  compose: { template: TEMPLATE },
  project: "hsw",
  env: () => {
    throw new Error("a recovery never reads the environment");
  },
};
const facts = { time: new Date("2026-01-01T00:02:00.000Z"), holder: "next", error: "died" };
const plan = (j: Journal) => {
  const p = planRecovery(j, setting, facts);
  return {
    steps: p.steps.map((s) => [s.op, ...s.args].join(" ")),
    result: p.entry?.result ?? null,
    live: p.journal.live?.sha.slice(0, 1),
  };
};
const J = (j: Partial<Journal>): Journal => ({ ...emptyJournal("swarm"), ...j });
const RESTORE_A =
  "swarm_restore hsw releases/stack-aaaaaaaaaaaa-0000000a.yaml releases/stack-aaaaaaaaaaaa-0000000a.env app aaaaaaaaaaaa-0000000a 180 60";

describe("recovery plans (what recover.sh runs when the run dies)", () => {
  it.each([
    ["prepare (nothing changed yet)", J({ live: slot("a"), attempt: attempt("b", "prepare") }), [], "failed", "a"],
    ["pull (the attempt's first record)", J({ live: slot("a"), attempt: attempt("b", "pull") }), [], "failed", "a"],
    [
      "stack (the deploy may have reached Swarm)",
      J({ live: slot("a"), attempt: attempt("b", "stack") }),
      [RESTORE_A],
      "rolled-back",
      "a",
    ],
    [
      "converge (Swarm rolling it out)",
      J({ live: slot("a"), attempt: attempt("b", "converge") }),
      [RESTORE_A],
      "rolled-back",
      "a",
    ],
    ["live-health", J({ live: slot("a"), attempt: attempt("b", "live-health") }), [RESTORE_A], "rolled-back", "a"],
    [
      "converge of a first release",
      J({ attempt: attempt("b", "converge") }),
      ["swarm_remove hsw_app"],
      "failed",
      undefined,
    ],
    [
      "finish (promoted: live since)",
      J({ live: { ...slot("b"), since: "t" }, previous: slot("a"), attempt: attempt("b", "finish") }),
      [],
      "success",
      "b",
    ],
  ])("died in %s", (_, j, steps, result, live) => {
    expect(plan(j)).toEqual({ steps, result, live });
  });

  it("drift without an attempt restores the live release's stack until Swarm runs it", () => {
    expect(plan(J({ live: slot("a") }))).toEqual({ steps: [RESTORE_A], result: null, live: "a" });
  });

  it("a rollback reuses a kept stack release's files, never a compose one's; swarm and compose never switch in one deploy", () => {
    expect(swarm.reuses!(slot("a"))).toBe(true);
    expect(swarm.reuses!({ ...slot("a"), composeFile: "releases/app-aaaaaaaaaaaa-00000000.yaml" })).toBe(false);
    expect(swarm.cannotSwitch!("swarm")).toBeUndefined();
    expect(swarm.cannotSwitch!("recreate")).toMatch(
      /they do not take over from each other in one deploy.*nothing was changed/,
    );
  });
});

const NODE = (id: string, host: string, status = "Ready", mgr = "", self = "false") =>
  [id, host, status, "Active", mgr, self].join("\t");
const SVC = (name: string, id: string, image: string, update = "", release = "aaaaaaaaaaaa-0000000a") =>
  [
    name,
    id,
    image,
    name.endsWith("edge") ? "global" : "2",
    update,
    "",
    release,
    name.endsWith("edge") ? "" : "yes",
    "",
  ].join("\t");
const TASK = (
  id: string,
  svc: string,
  slotN: string,
  node: string,
  image: string,
  desired = "running",
  state = "running",
  err = "",
) => [id, svc, slotN, node, image, desired, state, "aaaaaaaaaaaa-0000000a", "t", err].join("\t");
function watchOut(outcome: string, tasks: string[], update = "", failures: string[] = []): string {
  return [
    "hamalog-section swarm-outcome",
    `${outcome} 12 -`,
    "hamalog-section swarm-node",
    "active true n1",
    "hamalog-section swarm-nodes",
    NODE("n1", "node1", "Ready", "Leader", "true"),
    NODE("n2", "node2"),
    NODE("n3", "node3", "Down"),
    "hamalog-section swarm-services",
    SVC("hsw_app", "s1", slot("a").image, update, update ? "x" : "aaaaaaaaaaaa-0000000a"),
    SVC("hsw_hamalog-edge", "s2", "caddy:2"),
    "hamalog-section swarm-tasks",
    ...tasks,
    "hamalog-section swarm-failures",
    ...failures,
    "hamalog-section end",
  ].join("\n");
}

describe("a watched update, judged", () => {
  const o = { stack: "hsw", service: "app", digest: D("a"), wait: 90, grace: 60 };
  it("converged: how many tasks run the release, healthy, on which nodes", () => {
    const w = parseWatch(
      watchOut("converged", [
        TASK("t1", "s1", "1", "n1", slot("a").image),
        TASK("t2", "s1", "2", "n2", slot("a").image),
      ]),
    );
    expect(judgeWatch(w, o)).toEqual({
      ok: true,
      summary: `2/2 task(s) run ${D("a").slice(0, 19)}… healthy on node1, node2 after 12s`,
    });
  });

  it("rolled back: each task that ended named with its node, its error and its last health output", () => {
    const w = parseWatch(
      watchOut("rollback_started", [], "rollback_started", [
        "task\tt9xxxxxxxxxxxxxx\tn2\tfailed\ttask: non-zero exit (137): dockerexec: unhealthy container",
        "log\tt9xxxxxxxxxxxxxx\tStarted in 3 s",
        "task\ttcxxxxxxxxxxxxxx\tn1\tcomplete\t",
        'health\ttcxxxxxxxxxxxxxx\t"HTTP/1.1 503"',
        "task\ttpxxxxxxxxxxxxxx\tn1\taccepted\t",
      ]),
    );
    const j = judgeWatch(w, o);
    expect(j.ok).toBe(false);
    expect(!j.ok && j.error.split("\n")).toEqual([
      "Swarm rolled the update back (a task of the release failed)",
      "  task t9xxxxxxxxxx on node2: failed — task: non-zero exit (137): dockerexec: unhealthy container; last health output: (its container is on another node: read it there with docker inspect)",
      "      log: Started in 3 s",
      '  task tcxxxxxxxxxx on node1: complete — its container exited before it was ever healthy (Swarm stops a task whose healthcheck fails); last health output: "HTTP/1.1 503"',
    ]);
  });

  it.each([
    ["timeout", /^the update did not finish within 90s \(deploy\/waitTimeout; 0\/2 tasks run the release/],
    ["unreachable", /^the manager's API did not answer for 60s/],
    ["failing", /^tasks of the release keep failing and there is no update for Swarm to roll back/],
    ["paused", /^Swarm paused the update/],
  ])("%s", (outcome, head) => {
    const j = judgeWatch(parseWatch(watchOut(outcome, [])), o);
    expect(!j.ok && j.error).toMatch(head);
  });
});

describe("the check status and reconcile make", () => {
  const view = (tasks: string[], extra: string[] = []) => {
    const out = watchOut("converged", tasks).split("\n");
    return parseSwarm(new Map(Object.entries(sectionsOf([...out, ...extra].join("\n")))));
  };
  const sectionsOf = (t: string) => {
    const m: Record<string, string> = {};
    let k = "";
    for (const l of t.split("\n"))
      if (l.startsWith("hamalog-section ")) k = l.slice(16);
      else m[k] = m[k] === undefined ? l : `${m[k]}\n${l}`;
    return m;
  };
  it("the manager runs the live release: nothing", () => {
    expect(checkSwarm(view([TASK("t1", "s1", "1", "n1", slot("a").image)]), slot("a"), "hsw", "app", "h")).toEqual([]);
  });
  it("another release in the spec, and a task that runs something else", () => {
    const out = checkSwarm(view([TASK("t1", "s1", "1", "n2", slot("a").image)]), slot("b"), "hsw", "app", "h");
    expect(out[0]).toMatch(/^the live release is sha b{12} .*, but Swarm's spec for hsw_app is /);
    expect(out[1]).toMatch(/^Swarm runs something else: task 1 on node2 runs sha256:aaaaaaaaaaaa…$/);
  });
  it("not observed (the journal names no swarm yet): nothing known, nothing claimed", () => {
    expect(checkSwarm(parseSwarm(new Map()), slot("a"), "hsw", "app", "h")).toEqual([]);
  });
});

describe("the manager's side rides out a leader election (a stand-in docker on a real sh)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "hamalog-swarm-agent-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const bin = join(tmp, "bin");
  // The stand-in fails its first FAILS calls of `stack deploy` with ERROR, then succeeds; it logs each call.
  spawnSync("mkdir", ["-p", bin, join(tmp, "d", ".hamalog")]);
  writeFileSync(
    join(bin, "docker"),
    `#!/bin/sh
echo "$*" >> "${tmp}/calls"
case "$*" in
  "stack deploy --help") echo "      --detach   Exit immediately" ;;
  "stack deploy "*) n=$(cat "${tmp}/n" 2>/dev/null || echo 0); echo $((n + 1)) > "${tmp}/n"
    if [ "$n" -lt "$FAILS" ]; then echo "$ERROR" >&2; exit 1; fi; echo "Updating service hsw_app" ;;
esac
exit 0
`,
    { mode: 0o755 },
  );
  const run = (fails: number, error: string, grace: number) => {
    rmSync(join(tmp, "n"), { force: true });
    rmSync(join(tmp, "calls"), { force: true });
    const t = Date.now();
    const r = spawnSync(
      "sh",
      [
        "-c",
        `section() { :; }; announce() { :; }; D=${tmp}/d; H=$D/.hamalog; cfg=""\n${SWARM_PART}\nswarm_stack_deploy hsw releases/s.yaml "" ${grace} ""`,
      ],
      { encoding: "utf8", env: { PATH: `${bin}:${process.env.PATH}`, FAILS: String(fails), ERROR: error } },
    );
    const deploys = readCalls().filter((l) => l.startsWith("stack deploy --resolve-image never")).length;
    return { code: r.status, stderr: r.stderr, deploys, ms: Date.now() - t };
  };
  const readCalls = () => {
    try {
      return readFileSync(join(tmp, "calls"), "utf8").trim().split("\n");
    } catch {
      return [];
    }
  };

  it("retries a deploy the manager refused during an election, until it goes through", () => {
    const r = run(
      2,
      "Error response from daemon: rpc error: code = DeadlineExceeded desc = context deadline exceeded",
      30,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.deploys).toBe(3);
  });

  it("gives up after GRACE seconds, saying so", () => {
    const r = run(99, "Error response from daemon: The swarm does not have a leader.", 2);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not have a leader[\s\S]*the manager's API still failed after 2 s/);
    expect(r.ms).toBeLessThan(6000);
  });

  it("never retries what an election does not explain (a bad stack file)", () => {
    const r = run(1, "yaml: line 3: did not find expected key", 30);
    expect(r.code).not.toBe(0);
    expect(r.deploys).toBe(1);
    expect(r.stderr).toContain("did not find expected key");
  });
});
