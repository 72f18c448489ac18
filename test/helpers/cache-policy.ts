// The `@func({ cache: ... })` policy of each Dagger function, read from ci/src/index.ts with the TypeScript
// parser: the SDK's introspector JSON does not carry it (see /work/shared/ENVIRONMENT.md).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { ROOT } from "./cli.js";

/** Method name → the `cache` value of its @func decorator (undefined when none is given). Only @func methods. */
export function cachePolicies(
  file = join(ROOT, "ci/src/index.ts"),
  className = "Hamalog",
): Record<string, string | undefined> {
  const src = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
  const out: Record<string, string | undefined> = {};
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node) && node.name?.text === className) {
      for (const m of node.members) {
        if (!ts.isMethodDeclaration(m) || !ts.isIdentifier(m.name)) continue;
        for (const d of ts.getDecorators(m) ?? []) {
          if (!ts.isCallExpression(d.expression) || d.expression.expression.getText(src) !== "func") continue;
          let cache: string | undefined;
          const arg = d.expression.arguments[0];
          if (arg && ts.isObjectLiteralExpression(arg)) {
            for (const p of arg.properties) {
              if (
                ts.isPropertyAssignment(p) &&
                p.name.getText(src) === "cache" &&
                ts.isStringLiteralLike(p.initializer)
              ) {
                cache = p.initializer.text;
              }
            }
          }
          out[m.name.text] = cache;
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return out;
}
