// The `dagger` CLI's reading of a [String] argument (test/helpers/dagger-cli.ts: pflag's StringSlice over Go's
// encoding/csv), checked against the behaviour of those Go functions, then what it means for `--set`.
import { describe, expect, it } from "vitest";
import { readAsCSV, stringSliceFlag } from "../helpers/dagger-cli.js";

describe("pflag StringSlice → encoding/csv, one record", () => {
  it.each([
    ["a", ["a"]],
    ["a,b", ["a", "b"]],
    ["", []],
    ["a,", ["a", ""]],
    [",a", ["", "a"]],
    [" a , b ", [" a ", " b "]], // no trimming
    ['"PATH=a,b"', ["PATH=a,b"]],
    ['"PATH=a,b",X=1', ["PATH=a,b", "X=1"]],
    ['"say ""hi"", ok"', ['say "hi", ok']],
    ['""', [""]],
    ["a,b\nc,d", ["a", "b"]], // only the first record is read
    ["\n\na,b", ["a", "b"]], // empty lines are skipped
    ['"a\nb",c', ["a\nb", "c"]], // a quoted field spans lines
    ["a\r\n", ["a"]],
  ])("%j → %j", (input, want) => {
    expect(readAsCSV(input)).toEqual(want);
  });

  it.each([
    ['PATH="a,b"', 'parse error on line 1, column 6: bare " in non-quoted-field'],
    [' "a,b"', 'parse error on line 1, column 2: bare " in non-quoted-field'],
    ['"a"b', 'extraneous or missing " in quoted-field'],
    ['"abc', 'extraneous or missing " in quoted-field'],
  ])("%j is refused: %s", (input, error) => {
    expect(() => readAsCSV(input)).toThrow(error);
  });

  it("repeats append; the CLI names the flag and the value it could not read", () => {
    expect(stringSliceFlag("set", ["a=1", "b=2,c=3"])).toEqual(["a=1", "b=2", "c=3"]);
    expect(() => stringSliceFlag("set", ['deploy/x="a,b"'])).toThrow(
      'invalid argument "deploy/x=\\"a,b\\"" for "--set" flag: parse error on line 1, column 10: bare " in non-quoted-field',
    );
  });
});
