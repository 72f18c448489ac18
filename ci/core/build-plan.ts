// build/prepare: the step an app's CI runs before `docker build` — Hamalog's `./gradlew bootJar` on JDK 21 —
// described engine-free, so the Dagger door only translates it into calls (container().from, withMountedCache,
// withExec, directory). Its outputs replace those paths of the build context: whatever a laptop has in
// build/libs is removed before the step runs and never reaches the image.
import { z } from "zod";
import type { PrepareSpec } from "./dagger/api.js";

/** `name@sha256:<64 hex>`: a builder whose tag moves would change the jar under an unchanged commit. */
const PINNED = /^[A-Za-z0-9][A-Za-z0-9._\/:-]*@sha256:[0-9a-f]{64}$/;
const ABSOLUTE = /^\/(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]*$/;
const RELATIVE = /^(?!\.\.?(?:\/|$))[A-Za-z0-9_.-]+(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9_.-]+)*$/;
const CACHE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const PrepareSchema = z.strictObject({
  image: z.string().trim().regex(PINNED, {
    message:
      "must be pinned by digest, e.g. eclipse-temurin:21-jdk@sha256:… (read the digest with `docker buildx imagetools inspect eclipse-temurin:21-jdk` or `skopeo inspect`)",
  }),
  /** argv, not a shell line: `["./gradlew", "bootJar", "-x", "test", "--no-daemon"]`. */
  command: z
    .array(z.string().min(1))
    .min(1, { message: "must name the command, e.g. [./gradlew, bootJar, --no-daemon]" }),
  /** Where the build context is mounted in the builder, and the command's working directory. */
  workdir: z
    .string()
    .trim()
    .regex(ABSOLUTE, { message: "must be an absolute path of letters, digits, . _ - and /, e.g. /src" })
    .refine((p) => p !== "/" && !p.split("/").includes(".."), { message: "must not be / or contain `..`" })
    .default("/src"),
  /** Engine cache volumes by name (the volume's key), mounted at a path: Gradle's caches and wrapper. */
  caches: z
    .record(
      z.string().regex(CACHE, { message: "must be a cache name of lowercase letters, digits, . _ -" }),
      z
        .string()
        .trim()
        .regex(ABSOLUTE, { message: "must be an absolute path in the builder, e.g. /root/.gradle/caches" }),
    )
    .default({}),
  /** Directories of the context the command writes (build/libs): removed before it runs, its results after. */
  outputs: z
    .array(
      z.string().trim().regex(RELATIVE, { message: "must be a relative path in the build context, e.g. build/libs" }),
    )
    .min(1, { message: "must name what the command writes into the build context, e.g. [build/libs]" })
    .refine((os) => !os.some((a) => os.some((b) => a !== b && b.startsWith(`${a}/`))), {
      message: "must not name a directory inside another one of the list (keep the outer one)",
    }),
  /** Plain environment for the command (never a secret: it is part of the cached step's definition). */
  env: z
    .record(z.string().regex(ENV_NAME, { message: "must be an environment variable name" }), z.string())
    .default({}),
});

export type PrepareConfig = z.infer<typeof PrepareSchema>;

/** What the door runs (the door's own type: ../dagger/api.ts imports nothing, so the class can load it free). */
export type PreparePlan = PrepareSpec;

export function preparePlan(p: PrepareConfig): PreparePlan {
  return {
    image: p.image,
    command: [...p.command],
    workdir: p.workdir,
    env: Object.entries(p.env).map(([name, value]) => ({ name, value })),
    caches: Object.entries(p.caches).map(([volume, path]) => ({ volume, path })),
    outputs: p.outputs.map((path) => ({ path, from: `${p.workdir.replace(/\/$/, "")}/${path}` })),
  };
}
