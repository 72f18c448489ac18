// What the `dagger` CLI does to a `[String]` argument before the module sees it, ported so tests can feed the
// module what a user's `--set …` really becomes (no engine or CLI runs here):
//   dagger/dagger v0.21.8 cmd/dagger/flags.go:741-748   a [String] argument is a pflag StringSlice
//   spf13/pflag v1.0.10 string_slice.go                 Set → readAsCSV: the value is ONE record of Go's
//                                                       encoding/csv (comma `,`, strict quotes); the first Set
//                                                       replaces the default, each repeat appends
//   Go encoding/csv reader.go readRecord (Go ≥ 1.17)    fields, "quoted" fields with "" for a quote, errors
//                                                       with 1-based columns (only the bare-quote one is tested)
// A module calling another passes a real list; only the CLI splits.

const ERR_BARE_QUOTE = 'bare " in non-quoted-field';
const ERR_QUOTE = 'extraneous or missing " in quoted-field';

/** encoding/csv's ParseError text. */
function parseError(startLine: number, line: number, column: number, err: string): Error {
  return new Error(
    startLine !== line
      ? `record on line ${startLine}; parse error on line ${line}, column ${column}: ${err}`
      : `parse error on line ${line}, column ${column}: ${err}`,
  );
}

/** pflag readAsCSV: the first CSV record of `val` ("" is an empty list). */
export function readAsCSV(val: string): string[] {
  if (val === "") return [];
  let pos = 0;
  let lineNo = 0;
  const readLine = (): string | null => {
    if (pos >= val.length) return null;
    const nl = val.indexOf("\n", pos);
    let line = nl < 0 ? val.slice(pos) : val.slice(pos, nl + 1);
    pos = nl < 0 ? val.length : nl + 1;
    lineNo++;
    if (line.endsWith("\r\n")) line = `${line.slice(0, -2)}\n`;
    else if (nl < 0 && line.endsWith("\r")) line = line.slice(0, -1);
    return line;
  };
  const lengthNL = (s: string) => (s.endsWith("\n") ? 1 : 0);
  let line = readLine();
  while (line !== null && line.length === lengthNL(line)) line = readLine(); // empty lines are skipped
  if (line === null) throw new Error("EOF");
  const start = lineNo;
  const fields: string[] = [];
  let col = 1;
  for (;;) {
    if (!line.startsWith('"')) {
      const i = line.indexOf(",");
      const field = i >= 0 ? line.slice(0, i) : line.slice(0, line.length - lengthNL(line));
      const q = field.indexOf('"');
      if (q >= 0) throw parseError(start, lineNo, col + q, ERR_BARE_QUOTE);
      fields.push(field);
      if (i < 0) return fields;
      line = line.slice(i + 1);
      col += i + 1;
      continue;
    }
    line = line.slice(1);
    col += 1;
    let field = "";
    for (;;) {
      const i: number = line.indexOf('"');
      if (i >= 0) {
        field += line.slice(0, i);
        line = line.slice(i + 1);
        col += i + 1;
        if (line.startsWith('"')) {
          field += '"';
          line = line.slice(1);
          col += 1;
        } else if (line.startsWith(",")) {
          line = line.slice(1);
          col += 1;
          fields.push(field);
          break;
        } else if (line.length === lengthNL(line)) {
          fields.push(field);
          return fields;
        } else {
          throw parseError(start, lineNo, col - 1, ERR_QUOTE); // the column of the quote that ended the field
        }
      } else if (line.length > 0) {
        field += line; // a quoted field goes on over a line break
        const next = readLine();
        if (next === null) throw parseError(start, lineNo, col + line.length, ERR_QUOTE);
        line = next;
        col = 1;
      } else {
        throw parseError(start, lineNo, col, ERR_QUOTE);
      }
    }
  }
}

/**
 * The list a `[String]` argument holds after `--flag=v` for each of `values` (each given as the shell hands it to
 * the CLI), or the CLI's error for the first value it cannot read.
 */
export function stringSliceFlag(flag: string, values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    try {
      out.push(...readAsCSV(v));
    } catch (e) {
      throw new Error(`invalid argument ${JSON.stringify(v)} for "--${flag}" flag: ${(e as Error).message}`);
    }
  }
  return out;
}
