// Run the Dagger SDK's own offline introspector over ci/src: the same data `dagger functions` shows.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./cli.js";

export interface IntrospectedArg {
  name: string;
  description: string;
  type: { kind: string; name?: string; typeDef?: unknown };
  isOptional: boolean;
  isNullable: boolean;
  defaultValue?: unknown;
  defaultPath?: string;
  ignore?: string[];
}
export interface IntrospectedFunction {
  name: string;
  description: string;
  arguments: Record<string, IntrospectedArg>;
  returnType: { kind: string; name?: string; typeDef?: unknown };
}
export interface Introspection {
  name: string;
  description: string;
  objects: Record<string, { name: string; description: string; methods: Record<string, IntrospectedFunction> }>;
}

let cached: Introspection | undefined;

export function introspect(): Introspection {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), "hamalog-introspect-"));
  try {
    const sdk = join(ROOT, "node_modules/@dagger.io/dagger/dist/src");
    // The introspector skips .d.ts files, so it needs the API types under the name client.gen.ts.
    copyFileSync(join(sdk, "api/client.gen.d.ts"), join(dir, "client.gen.ts"));
    const out = execFileSync(
      process.execPath,
      [
        join(sdk, "module/entrypoint/introspection_entrypoint.js"),
        "hamalog",
        join(ROOT, "ci/src"),
        join(dir, "client.gen.ts"),
      ],
      { env: { ...process.env, DRY_RUN: "1" }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
    );
    cached = JSON.parse(out) as Introspection;
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
