// Benchmark of verify-manifest against a local token-auth registry (real distribution 2.8 + the test token
// service on 127.0.0.1). Not a test: it prints the figures in docs/benchmarks.md.
//   (a) HTTP requests per verification, cold (new client) and warm (token cached)
//   (b) in-process latency of a warm verification vs one raw HEAD of the same manifest with the same token
//   (c) whole-process wall time: `hamalog verify-manifest` vs `skopeo inspect --raw` vs `docker manifest inspect`
// Run: npx tsx ci/bench/verify-manifest.ts [N]   (needs docker, docker-registry, skopeo, openssl; see ENVIRONMENT.md)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { buildAppImage, docker } from "../../test/integration/helpers/images.js";
import { loginAndPushAsync, startRegistry } from "../../test/integration/helpers/registry.js";
import { startTokenServer } from "../../test/integration/helpers/token-server.js";
import { parseTokenResponse, pullScope } from "../core/registry/auth.js";
import { MANIFEST_ACCEPT } from "../core/registry/manifest.js";
import { RegistryClient, verifyManifest } from "../core/registry/verify.js";
import { median, timedSpawn } from "./timing.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const N = Number(process.argv[2] ?? 15);
const SHA = "453a6545b97fe240727c378291230abeb793d851";
const USER = "hamalog-bench";
const PASSWORD = `bench-${process.pid}-pw`;
const REPO = "daemin-kim/hamalog-backend";
const LOCAL = "hamalog-bench/app:1";

const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} ms`;

async function main(): Promise<void> {
  const tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
  const registry = await startRegistry({ auth: tokens.registryAuth });
  const work = mkdtempSync(join(tmpdir(), "hamalog-bench-"));
  try {
    buildAppImage(LOCAL, { version: "bench" });
    const pushed = await loginAndPushAsync(LOCAL, registry.host, `${registry.host}/${REPO}:${SHA}`, USER, PASSWORD);
    const req = {
      registry: registry.host,
      repository: REPO,
      reference: SHA,
      credentials: { username: USER, password: PASSWORD },
    };

    // (a) requests per verification
    const cold: number[] = [];
    const coldMs: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      const r = await verifyManifest(req, { client: new RegistryClient() });
      coldMs.push(performance.now() - t0);
      cold.push(r.requests);
      if (r.digest !== pushed) throw new Error(`digest ${r.digest} != pushed ${pushed}`);
    }
    const client = new RegistryClient();
    await verifyManifest(req, { client });
    const warm: number[] = [];
    const warmMs: number[] = [];
    const headMs: number[] = [];
    // (b) a raw HEAD with a token fetched once, like a hand-written curl loop would do
    const tokenRes = await fetch(
      `${tokens.url}/token?service=${encodeURIComponent(tokens.registryAuth.token!.service)}&scope=${encodeURIComponent(pullScope(REPO))}`,
      {
        headers: { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}` },
      },
    );
    const token = parseTokenResponse(await tokenRes.json()).token;
    const head = async () => {
      const res = await fetch(`${registry.url}/v2/${REPO}/manifests/${SHA}`, {
        method: "HEAD",
        headers: { authorization: `Bearer ${token}`, accept: MANIFEST_ACCEPT },
      });
      if (res.headers.get("docker-content-digest") !== pushed) throw new Error(`HEAD answered ${res.status}`);
    };
    for (let i = 0; i < 20; i++) {
      await head(); // warm both paths' connection pools and JIT
      await verifyManifest(req, { client });
    }
    for (let i = 0; i < N * 10; i++) {
      let t0 = performance.now();
      await head();
      headMs.push(performance.now() - t0);
      t0 = performance.now();
      const r = await verifyManifest(req, { client });
      warmMs.push(performance.now() - t0);
      warm.push(r.requests);
    }

    // (c) whole-process wall time, N runs each, interleaved
    const authfile = join(work, "auth.json");
    writeFileSync(
      authfile,
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } } }),
      { mode: 0o600 },
    );
    const dockerConfig = join(work, "docker");
    mkdirSync(dockerConfig);
    writeFileSync(
      join(dockerConfig, "config.json"),
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } } }),
      { mode: 0o600 },
    );
    const env = { ...process.env, HAMALOG_BENCH_PASSWORD: PASSWORD, DOCKER_CONFIG: dockerConfig };
    const commands: Record<string, [string, string[]]> = {
      "hamalog verify-manifest": [
        process.execPath,
        [
          join(ROOT, "ci/bin/hamalog.mjs"),
          "verify-manifest",
          "--image",
          `${registry.host}/${REPO}`,
          "--tag",
          SHA,
          "--username",
          USER,
          "--password-env",
          "HAMALOG_BENCH_PASSWORD",
        ],
      ],
      "skopeo inspect --raw": [
        "skopeo",
        ["inspect", "--raw", "--tls-verify=false", "--authfile", authfile, `docker://${registry.host}/${REPO}:${SHA}`],
      ],
      "docker manifest inspect": ["docker", ["manifest", "inspect", "--insecure", `${registry.host}/${REPO}:${SHA}`]],
      "node -e '' (start-up floor)": [process.execPath, ["-e", ""]],
    };
    const wall: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
    for (const [name, [cmd, args]] of Object.entries(commands)) {
      const r = await timedSpawn(cmd, args, env); // warm-up (the CLI rebuilds itself first if ci/src changed since `npm ci`)
      if (r.code !== 0) throw new Error(`${name} failed: ${r.stderr}`);
      if (name.startsWith("hamalog") && r.stdout.trim() !== pushed) throw new Error(`hamalog printed ${r.stdout}`);
    }
    for (let i = 0; i < N; i++) {
      for (const [name, [cmd, args]] of Object.entries(commands))
        wall[name]!.push((await timedSpawn(cmd, args, env)).ms);
    }

    const skopeo = median(wall["skopeo inspect --raw"]!);
    const lines = [
      `verify-manifest benchmark — token-auth distribution 2.8 on ${registry.host}, N=${N} (in-process: ${N * 10}), node ${process.version}`,
      "",
      "(a) HTTP requests per verification",
      `    cold (new client):   median ${median(cold)}, max ${Math.max(...cold)}   [challenge 401, token, manifest GET]`,
      `    warm (token cached): median ${median(warm)}, max ${Math.max(...warm)}`,
      "",
      "(b) in-process latency (medians)",
      `    raw HEAD with a token:        ${ms(median(headMs))}`,
      `    verification, warm:           ${ms(median(warmMs))}   ratio ${(median(warmMs) / median(headMs)).toFixed(2)}× the raw HEAD`,
      `    verification, cold:           ${ms(median(coldMs))}`,
      "",
      "(c) whole-process wall time (medians)",
      ...Object.entries(wall).map(
        ([name, xs]) =>
          `    ${name.padEnd(28)} ${ms(median(xs)).padStart(9)}   ${(median(xs) / skopeo).toFixed(2)}× skopeo`,
      ),
    ];
    console.log(lines.join("\n"));
  } finally {
    await registry.stop();
    await tokens.stop();
    rmSync(work, { recursive: true, force: true });
    try {
      docker(["rmi", "-f", LOCAL]);
    } catch {
      /* gone */
    }
  }
}

await main();
