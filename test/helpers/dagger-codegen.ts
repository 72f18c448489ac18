// What `dagger develop` writes into a caller module's sdk/ for this module, replayed from the SDK's offline
// introspection of ci/src (no engine here: the real client.gen.ts comes from the engine's Go codegen and its full
// GraphQL schema). It follows cmd/codegen/generator/typescript/templates at dagger v0.21.8 for what a caller's code
// touches — names, which arguments are positional, the `<Parent><Function>Opts` types, return types, enums — and
// re-exports the installed SDK (the core API and the decorators) for the rest:
//   core/gqlformat.go namespaceObject      module types are namespaced: Shipment → HamalogShipment
//   templates/functions.go splitRequiredOptionalArgs   positional up to the first optional argument, the rest in opts
//   templates/functions.go solve + method_solve.ts.gtpl  scalars, enums and lists return a Promise; objects chain
//   templates/src/types.ts.gtpl + formatEnum   enum keys strcase.ToCamel(member name), values the members' values
//   templates/src/method.ts.gtpl         Query's fields are the Client's: dag.hamalog(opts?: ClientHamalogOpts)
// It is a type-level stand-in for the generated client, checked for call shapes, not byte for byte.
import { gqlEnumMemberName, toCamel } from "../../ci/core/dagger/enum-names.js";
import type { IntrospectedArg, IntrospectedType as TypeDef, Introspection } from "./introspect.js";

/** core/gqlformat.go namespaceObject: a module type's name in the schema (the main object keeps the module's). */
export function namespaceObject(objName: string, moduleName: string): string {
  const obj = toCamel(objName);
  const mod = toCamel(moduleName);
  if (obj.startsWith(mod)) {
    const rest = obj.slice(mod.length);
    if (rest === "") return mod;
    if (/^[A-Z]/.test(rest)) return toCamel(moduleName + rest);
  }
  return toCamel(`${moduleName}_${obj}`);
}

/** An argument is optional in the schema when it may be omitted: optional, or with a default value or path. */
export const isOptionalArg = (a: IntrospectedArg): boolean =>
  a.isOptional || a.defaultValue !== undefined || a.defaultPath !== undefined;

/** templates/functions.go splitRequiredOptionalArgs: everything from the first optional argument on goes in opts. */
export function splitArgs(args: IntrospectedArg[]): { required: IntrospectedArg[]; optional: IntrospectedArg[] } {
  const i = args.findIndex(isOptionalArg);
  return i < 0 ? { required: args, optional: [] } : { required: args.slice(0, i), optional: args.slice(i) };
}

/** The caller's sdk/index.ts for a dependency, importing the SDK (core API, decorators) from `sdk`. */
export function callerSdk(intro: Introspection, moduleName: string, sdk: string): string {
  const objects = new Set(Object.keys(intro.objects));
  const enums = new Set(Object.keys(intro.enums));
  const core = new Set<string>();
  const name = (n: string) => namespaceObject(n, moduleName);
  const type = (t: TypeDef): string => {
    switch (t.kind) {
      case "STRING_KIND":
        return "string";
      case "INTEGER_KIND":
        return "number";
      case "FLOAT_KIND":
        core.add("float");
        return "float";
      case "BOOLEAN_KIND":
        return "boolean";
      case "VOID_KIND":
        return "void";
      case "LIST_KIND":
        return `${type(t.typeDef!)}[]`;
      case "OBJECT_KIND":
      case "ENUM_KIND":
      case "SCALAR_KIND":
        if (objects.has(t.name!) || enums.has(t.name!)) return name(t.name!);
        core.add(t.name!);
        return t.name!;
      default:
        throw new Error(`codegen replay: unsupported type ${JSON.stringify(t)}`);
    }
  };
  const solves = (t: TypeDef) => t.kind !== "OBJECT_KIND";
  const optsType = (parent: string, fn: string, optional: IntrospectedArg[]) =>
    `export type ${parent}${toCamel(fn)}Opts = {\n${optional.map((a) => `  ${a.name}?: ${type(a.type)}`).join("\n")}\n}\n`;
  const signature = (parent: string, fn: string, args: IntrospectedArg[], ret: TypeDef) => {
    const { required, optional } = splitArgs(args);
    const params = [
      ...required.map((a) => `${a.name}: ${type(a.type)}`),
      ...(optional.length ? [`opts?: ${parent}${toCamel(fn)}Opts`] : []),
    ];
    const out = solves(ret) ? `Promise<${type(ret)}>` : type(ret);
    return { text: `(${params.join(", ")}) => ${out}`, opts: optional.length ? optsType(parent, fn, optional) : "" };
  };

  const out: string[] = [];
  for (const [enumName, e] of Object.entries(intro.enums)) {
    const members = Object.values(e.values).map(
      (v) => `  ${toCamel(gqlEnumMemberName(v.name))} = ${JSON.stringify(v.value)},`,
    );
    out.push(`export enum ${name(enumName)} {\n${members.join("\n")}\n}\n`);
  }
  let root = "";
  for (const [objName, o] of Object.entries(intro.objects)) {
    const cls = name(objName);
    const fields: string[] = [`  id: () => Promise<string>`, `  sync: () => Promise<${cls}>`];
    for (const p of Object.values(o.properties).filter((p) => p.isExposed)) {
      fields.push(`  ${p.name}: ${signature(cls, p.name, [], p.type).text}`);
    }
    for (const f of Object.values(o.methods)) {
      const s = signature(cls, f.name, Object.values(f.arguments), f.returnType);
      if (s.opts) out.push(s.opts);
      fields.push(`  ${f.name}: ${s.text}`);
    }
    out.push(`export declare class ${cls} {\n${fields.join("\n")}\n}\n`);
    if (cls === toCamel(moduleName)) {
      const ctor = signature("Client", moduleName, Object.values(o.constructor?.arguments ?? {}), {
        kind: "OBJECT_KIND",
        name: objName,
      });
      if (ctor.opts) out.push(ctor.opts);
      root = `declare module "${sdk}/api/client.gen.js" {\n  interface Client {\n    ${toCamel(moduleName).replace(/^./, (c) => c.toLowerCase())}: ${ctor.text}\n  }\n}\n`;
    }
  }
  return [
    `// A replay of the client \`dagger develop\` generates for the dependency \`${moduleName}\` (test/helpers/dagger-codegen.ts).`,
    `export * from "${sdk}/index.js";`,
    ...(core.size ? [`import type { ${[...core].sort().join(", ")} } from "${sdk}/index.js";`] : []),
    "",
    ...out,
    root,
  ].join("\n");
}
