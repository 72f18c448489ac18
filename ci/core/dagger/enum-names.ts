// What the Dagger engine and CLI make of an enum member's name, ported so tests can derive the exact spellings
// `dagger call` accepts and prints from this module's introspection (no engine runs on the machines this is built on):
//   dagger/dagger v0.21.8 core/gqlformat.go:73-95   gqlEnumMemberName: conventional names kept, others SCREAMING_SNAKE
//   dagger/dagger v0.21.8 cmd/dagger/flags.go:235-255 the CLI's enum flag: a value equal to a member name, any case
//   iancoleman/strcase v0.3.0 snake.go, camel.go    ToScreamingSnake (the engine), ToCamel (the TypeScript codegen's
//                                                   enum keys, cmd/codegen/generator/typescript/templates/functions.go)
// Go walks bytes where this walks UTF-16 units: they agree on ASCII, and the engine refuses any other member name
// (core/typedef.go: ^[a-zA-Z_][a-zA-Z0-9_]*$).

const isUpper = (c: number) => c >= 65 && c <= 90;
const isLower = (c: number) => c >= 97 && c <= 122;
const isDigit = (c: number) => c >= 48 && c <= 57;
const SEPARATORS = " _-.";

/** strcase.ToScreamingDelimited: words split at case changes, digits and ` _-.`, joined by `delimiter`. */
export function toScreamingDelimited(input: string, delimiter: string, ignore: string, screaming: boolean): string {
  const s = input.trim();
  let out = "";
  for (let i = 0; i < s.length; i++) {
    let v = s.charCodeAt(i);
    const vIsCap = isUpper(v);
    const vIsLow = isLower(v);
    if (vIsLow && screaming) v -= 32;
    else if (vIsCap && !screaming) v += 32;
    if (i + 1 < s.length) {
      // Acronyms are words: JSONData → JSON_DATA. The digit test is on the converted byte, as in Go.
      const next = s.charCodeAt(i + 1);
      const vIsNum = isDigit(v);
      const caseChanges =
        (vIsCap && (isLower(next) || isDigit(next))) ||
        (vIsLow && (isUpper(next) || isDigit(next))) ||
        (vIsNum && (isUpper(next) || isLower(next)));
      if (caseChanges && !(ignore !== "" && i > 0 && ignore.includes(s[i - 1]!))) {
        if (vIsCap && isLower(next) && i > 0 && isUpper(s.charCodeAt(i - 1))) out += delimiter;
        out += String.fromCharCode(v);
        if (vIsLow || vIsNum || isDigit(next)) out += delimiter;
        continue;
      }
    }
    const c = String.fromCharCode(v);
    out += SEPARATORS.includes(c) && !ignore.includes(c) ? delimiter : c;
  }
  return out;
}

export const toScreamingSnake = (s: string): string => toScreamingDelimited(s, "_", "", true);
export const toSnake = (s: string): string => toScreamingDelimited(s, "_", "", false);

/** strcase.ToCamel (v0.3.0, no acronyms configured): `CONSTANT_CASE` → `ConstantCase`. */
export function toCamel(input: string): string {
  const s = input.trim();
  let out = "";
  let capNext = true;
  let prevIsCap = false;
  for (let i = 0; i < s.length; i++) {
    let v = s.charCodeAt(i);
    const vIsCap = isUpper(v);
    const vIsLow = isLower(v);
    if (capNext) {
      if (vIsLow) v -= 32;
    } else if (i === 0) {
      if (vIsCap) v += 32;
    } else if (prevIsCap && vIsCap) {
      v += 32;
    }
    prevIsCap = vIsCap;
    if (vIsCap || vIsLow) {
      out += String.fromCharCode(v);
      capNext = false;
    } else if (isDigit(v)) {
      out += String.fromCharCode(v);
      capNext = true;
    } else {
      capNext = SEPARATORS.includes(String.fromCharCode(v));
    }
  }
  return out;
}

/** Already a GraphQL-style member name (A-Z first, then A-Z, 0-9, _): the engine keeps it as it is. */
export function isConventionalEnumMemberName(name: string): boolean {
  if (name === "" || name.startsWith("__")) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (isUpper(c)) continue;
    if (i > 0 && (isDigit(c) || c === 95)) continue;
    return false;
  }
  return true;
}

/** The name the engine gives a TypeScript enum member: what `dagger call` prints and matches input against. */
export function gqlEnumMemberName(name: string): string {
  return isConventionalEnumMemberName(name) ? name : toScreamingSnake(name);
}

/** The CLI's enum flag type as `--help` and its errors show it: the member names, sorted, joined by commas. */
export function enumFlagType(memberNames: readonly string[]): string {
  return [...memberNames].sort().join(",");
}

/**
 * What `dagger call --FLAG=value` does with an enum argument: the member name it sends, or the CLI's own error
 * (`value should be one of BLUE_GREEN,RECREATE`). Go's strings.EqualFold, for ASCII.
 */
export function cliEnumValue(value: string, memberNames: readonly string[]): string {
  const hit = memberNames.find((m) => m.toLowerCase() === value.toLowerCase());
  if (hit === undefined) throw new Error(`value should be one of ${enumFlagType(memberNames)}`);
  return hit;
}
