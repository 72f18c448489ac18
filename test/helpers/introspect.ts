// Run the Dagger SDK's own offline introspector over ci/src: the same data `dagger functions` shows.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./cli.js";

/** A type as the introspector writes it: a kind, a name for objects, enums and scalars, the element of a list. */
export interface IntrospectedType {
  kind: string;
  name?: string;
  typeDef?: IntrospectedType;
}

export interface IntrospectedArg {
  name: string;
  description: string;
  type: IntrospectedType;
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
  returnType: IntrospectedType;
}
export interface IntrospectedProperty {
  name: string;
  description: string;
  type: IntrospectedType;
  isExposed: boolean;
}
export interface IntrospectedObject {
  name: string;
  description: string;
  /** The constructor's arguments: what `dagger call --ARG ... FUNCTION` and `dag.hamalog({ ... })` take. */
  constructor?: { arguments: Record<string, IntrospectedArg> };
  methods: Record<string, IntrospectedFunction>;
  properties: Record<string, IntrospectedProperty>;
}
export interface Introspection {
  name: string;
  description: string;
  objects: Record<string, IntrospectedObject>;
  enums: Record<string, { name: string; description: string; values: Record<string, { name: string; value: string }> }>;
}

const cached = new Map<string, Introspection>();

/** Introspect a module's source directory (default: this module, `hamalog` in ci/src). */
export function introspect(srcDir = "ci/src", moduleName = "hamalog"): Introspection {
  const key = `${moduleName}:${srcDir}`;
  if (cached.has(key)) return cached.get(key)!;
  const dir = mkdtempSync(join(tmpdir(), "hamalog-introspect-"));
  try {
    const sdk = join(ROOT, "node_modules/@dagger.io/dagger/dist/src");
    // The introspector skips .d.ts files, so it needs the API types under the name client.gen.ts.
    copyFileSync(join(sdk, "api/client.gen.d.ts"), join(dir, "client.gen.ts"));
    const out = execFileSync(
      process.execPath,
      [
        join(sdk, "module/entrypoint/introspection_entrypoint.js"),
        moduleName,
        join(ROOT, srcDir),
        join(dir, "client.gen.ts"),
      ],
      { env: { ...process.env, DRY_RUN: "1" }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
    );
    const result = JSON.parse(out) as Introspection;
    cached.set(key, result);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The main object's functions marked `@check()`, in order, as the SDK's scan() sees them (its introspector's JSON
 * leaves the flag out): what `dagger check` runs.
 */
export function introspectChecks(srcDir = "ci/src", moduleName = "hamalog"): string[] {
  const dir = mkdtempSync(join(tmpdir(), "hamalog-checks-"));
  try {
    const sdk = join(ROOT, "node_modules/@dagger.io/dagger/dist/src");
    copyFileSync(join(sdk, "api/client.gen.d.ts"), join(dir, "client.gen.ts"));
    const script = `
      import { readdirSync } from "node:fs";
      import { join } from "node:path";
      const [sdk, src, client, name] = process.argv.slice(1);
      const { scan } = await import(join(sdk, "module/introspector/index.js"));
      const list = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? list(join(d, e.name)) : /\\.m?ts$/.test(e.name) ? [join(d, e.name)] : []);
      const m = await scan([...list(src), client], name, false);
      const main = Object.values(m.objects).find((o) => o.name.toLowerCase() === name.toLowerCase());
      console.log(JSON.stringify(Object.values(main.methods).filter((f) => f.isCheck).map((f) => f.name)));
    `;
    const out = execFileSync(
      process.execPath,
      ["--input-type=module", "-e", script, sdk, join(ROOT, srcDir), join(dir, "client.gen.ts"), moduleName],
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
    );
    return JSON.parse(out.trim().split("\n").pop()!) as string[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
