// Start-up benchmark of the CLI against Node's own floor, side by side in one run: `hamalog tag` and
// `hamalog verify-manifest` (against a real distribution registry on 127.0.0.1) each paired with `node -e ''`,
// run after run, A then B then B then A..., so a machine that speeds up or slows down moves both sides alike; the
// figure is the median of the per-pair ratios. Goals (issue 8): tag ≤ 1.5× the floor, verify-manifest ≤ 2×.
// Exits 1 when a goal is missed. Not a test: it prints the figures for docs/benchmarks.md.
//   (a) the two goals, warm: the CLI built (`npm ci` builds it), tag's config validation memoised
//   (b) what the warm figure leaves out: tag with a config it has not seen (validated: yaml + zod loaded), and the
//       one-off build the launcher runs when ci/src changed (esbuild, timed alone)
// Run: npx tsx ci/bench/startup.ts [--runs N]   (needs docker-registry; see docs/development.md)
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { CLI, ROOT } from "../../test/helpers/cli.js";
import { putManifest, startRegistry } from "../../test/integration/helpers/registry.js";
import { median, timedSpawn } from "./timing.js";

const runsArg = process.argv.indexOf("--runs");
const N = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 21;
if (!Number.isInteger(N) || N < 3) throw new Error(`--runs: expected an integer ≥ 3, got ${process.argv[runsArg + 1]}`);

const SHA = "453a6545b97fe240727c378291230abeb793d851";
const REPO = "daemin-kim/hamalog-backend";
const GOALS = { tag: 1.5, "verify-manifest": 2 } as const;
const FLOOR: [string, string[]] = [process.execPath, ["-e", ""]];

type Cmd = [string, string[]];

/** Run `a` and the floor N times each, alternating which goes first; per-pair ratios and both sides' medians. */
async function paired(a: Cmd, check: (stdout: string) => void): Promise<{ ratio: number; a: number; floor: number }> {
  const warm = await timedSpawn(...a);
  if (warm.code !== 0) throw new Error(`${a[1].slice(1).join(" ")} failed (exit ${warm.code}): ${warm.stderr}`);
  check(warm.stdout);
  await timedSpawn(...FLOOR);
  const as: number[] = [];
  const bs: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < N; i++) {
    const order = i % 2 === 0 ? [a, FLOOR] : [FLOOR, a];
    const [first, second] = [await timedSpawn(...order[0]!), await timedSpawn(...order[1]!)];
    const [ra, rb] = i % 2 === 0 ? [first, second] : [second, first];
    if (ra.code !== 0) throw new Error(`run ${i} failed (exit ${ra.code}): ${ra.stderr}`);
    as.push(ra.ms);
    bs.push(rb.ms);
    ratios.push(ra.ms / rb.ms);
  }
  return { ratio: median(ratios), a: median(as), floor: median(bs) };
}

/** A blob uploaded in one PUT (monolithic upload); returns its digest. */
async function putBlob(url: string, body: Buffer): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
  const start = await fetch(`${url}/v2/${REPO}/blobs/uploads/`, { method: "POST" });
  const location = new URL(start.headers.get("location")!, url);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", body: new Uint8Array(body) });
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status}`);
  return digest;
}

/** A one-layer linux/amd64 image under REPO:SHA, pushed through the registry API (no Docker needed). */
async function pushImage(url: string): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers" } }));
  const layer = Buffer.from("startup-bench layer");
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      size: config.length,
      digest: await putBlob(url, config),
    },
    layers: [
      {
        mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
        size: layer.length,
        digest: await putBlob(url, layer),
      },
    ],
  });
  return putManifest(url, REPO, SHA, manifest, "application/vnd.docker.distribution.manifest.v2+json");
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

let cleanup: (() => Promise<void>) | undefined;
// `on`, not `once`: Ctrl-C reaches this process twice (from the terminal's process group and relayed by tsx).
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, cleaning up`);
    void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const work = mkdtempSync(join(tmpdir(), "hamalog-startup-bench-"));
  let done: Promise<void> | undefined;
  cleanup = () =>
    (done ??= (async () => {
      await registry.stop();
      rmSync(work, { recursive: true, force: true });
    })());
  try {
    const digest = await pushImage(registry.url);
    const tag: Cmd = [process.execPath, [CLI, "tag", "--sha", SHA, "--branch", "main"]];
    const verify: Cmd = [
      process.execPath,
      [CLI, "verify-manifest", "--image", `${registry.host}/${REPO}`, "--sha", SHA],
    ];
    const tagRun = await paired(tag, (out) => {
      if (out !== `${SHA}\nlatest\n`) throw new Error(`tag printed ${JSON.stringify(out)}`);
    });
    const verifyRun = await paired(verify, (out) => {
      if (out.trim() !== digest) throw new Error(`verify-manifest printed ${out}, the registry has ${digest}`);
    });

    // (b) tag on a config it has not validated before: a copy of pipeline.yaml with a new comment each run.
    const base = readFileSync(join(ROOT, "pipeline.yaml"), "utf8");
    const unseen: number[] = [];
    const floorB: number[] = [];
    for (let i = 0; i < Math.min(N, 11); i++) {
      const file = join(work, `pipeline-${i}.yaml`);
      writeFileSync(file, `${base}# startup bench ${process.pid} ${i} ${performance.now()}\n`);
      const r = await timedSpawn(process.execPath, [CLI, "tag", "--sha", SHA, "--branch", "main", "--config", file]);
      if (r.code !== 0) throw new Error(`tag --config ${file} failed: ${r.stderr}`);
      unseen.push(r.ms);
      floorB.push((await timedSpawn(...FLOOR)).ms);
    }
    const { bundle } = (await import(pathToFileURL(join(ROOT, "ci/bin/build.mjs")).href)) as {
      bundle: (esbuild: unknown, outdir: string) => Promise<void>;
    };
    const esbuild = await import("esbuild");
    const t0 = performance.now();
    await bundle(esbuild, join(work, "build"));
    const buildMs = performance.now() - t0;

    const verdict = (name: keyof typeof GOALS, r: { ratio: number }) =>
      `${r.ratio.toFixed(2)}× (goal ≤ ${GOALS[name]}×: ${r.ratio <= GOALS[name] ? "met" : "MISSED"})`;
    console.log(
      [
        `start-up benchmark — node ${process.version}, N=${N} pairs, registry ${registry.host} (distribution, no auth)`,
        "",
        "(a) warm, each paired with `node -e ''` (medians; ratio = median of per-pair ratios)",
        `    hamalog tag              ${ms(tagRun.a).padStart(9)} vs ${ms(tagRun.floor).padStart(9)}   ${verdict("tag", tagRun)}`,
        `    hamalog verify-manifest  ${ms(verifyRun.a).padStart(9)} vs ${ms(verifyRun.floor).padStart(9)}   ${verdict("verify-manifest", verifyRun)}`,
        "",
        "(b) what (a) leaves out",
        `    tag, config not seen before (validated)  ${ms(median(unseen))} vs ${ms(median(floorB))} → ${(median(unseen) / median(floorB)).toFixed(2)}×`,
        `    the build after a change to ci/src      ${ms(buildMs)} (esbuild, once; \`npm ci\` runs it as prepare)`,
      ].join("\n"),
    );
    const missed = (["tag", "verify-manifest"] as const).filter(
      (n) => (n === "tag" ? tagRun : verifyRun).ratio > GOALS[n],
    );
    if (missed.length > 0) {
      console.error(`goal missed: ${missed.join(", ")}`);
      process.exitCode = 1;
    }
  } finally {
    await cleanup();
  }
}

await main();
