import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, describe, expect, it } from "vitest";

import { EntrypointError } from "../src/errors.ts";
import { formatEnvFile, parseEnvFile } from "../src/env-file.ts";

// Strings that break naive quoting: every shell metacharacter, both quotes
// and their escapes, line ends, comment and assignment signs, expansions.
const tricky = [
  "",
  " ",
  "plain",
  "it's",
  "'",
  "''",
  "'\\''",
  '"',
  "\"double\" and 'single'",
  "a=b=c",
  "#not a comment",
  "value # with hash",
  "$HOME ${HOME} $(id) `id` $1 $$ $",
  "back\\slash\\",
  "\\n is not a newline",
  "line1\nline2\n",
  "\n\nleading newlines",
  "trailing spaces   ",
  "\ttab\t",
  "cr\r\nlf",
  "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
  "ünïcödé ✓ 日本語 🔑",
  "; & | < > ( ) { } [ ] * ? ~ !",
  "export X=1",
  "!history",
];

// A small deterministic generator, so a failure can be reproduced.
function* randomStrings(count: number): Generator<string> {
  const alphabet = [
    "a",
    "'",
    '"',
    "\\",
    "$",
    "`",
    "\n",
    " ",
    "#",
    "=",
    "é",
    "🔑",
    "\t",
    "\r",
    "{",
    "}",
    "(",
    ")",
  ];
  let seed = 42;
  for (let i = 0; i < count; i++) {
    let text = "";
    const length = i % 24;
    for (let j = 0; j < length; j++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      text += alphabet[seed % alphabet.length];
    }
    yield text;
  }
}

const allTricky = [...tricky, ...randomStrings(400)];

function trickyValues(): Map<string, string> {
  return new Map(allTricky.map((value, i) => [`V_${i}`, value]));
}

function parseError(text: string): EntrypointError {
  try {
    parseEnvFile(text, "/run/app.env");
  } catch (error) {
    if (error instanceof EntrypointError) {
      return error;
    }
    throw error;
  }
  throw new Error("expected the env file to be refused");
}

// /bin/sh (dash on Debian), bash in POSIX mode and busybox's ash, when
// installed: the format must mean the same to each.
const shells = [["sh"], ["bash", "--posix"], ["busybox", "sh"]].filter(
  ([program]) =>
    execFileSync("sh", ["-c", `command -v ${program} || true`]).length > 0,
);

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "env-file-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe("formatEnvFile", () => {
  it("single-quotes every value and escapes quotes as '\\''", () => {
    const text = formatEnvFile(
      new Map([
        ["A", "it's"],
        ["B", ""],
        ["C", "x\ny"],
      ]),
    );
    expect(text).toBe("A='it'\\''s'\nB=''\nC='x\ny'\n");
  });

  it("round-trips tricky values through parseEnvFile", () => {
    const values = trickyValues();
    expect(parseEnvFile(formatEnvFile(values), "rendered")).toEqual(values);
  });

  it("round-trips each value on its own", () => {
    for (const value of allTricky) {
      const values = new Map([["X", value]]);
      expect(parseEnvFile(formatEnvFile(values), "one")).toEqual(values);
    }
  });

  it.each(shells)("is read back exactly by %s with set -a", (...shell) => {
    const values = trickyValues();
    const file = path.join(scratch, "tricky.env");
    fs.writeFileSync(file, formatEnvFile(values));
    const names = [...values.keys()];
    // printf of each exported variable, NUL-separated: command substitution
    // would strip trailing newlines, so the bytes come straight from stdout.
    const script = `set -a; . "$1"; shift; for n in "$@"; do printenv "$n"; printf '\\0'; done`;
    const [program, ...args] = shell;
    const output = execFileSync(
      program!,
      [...args, "-c", script, "sh", file, ...names],
      {
        // A HOME without rc files: bash may source ~/.bashrc when it guesses it
        // runs over ssh.
        env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent" },
      },
    );
    const printed = output.toString("utf8").split("\0").slice(0, -1);
    // printenv adds a newline after each value.
    expect(printed).toEqual(names.map((name) => `${values.get(name)}\n`));
  });

  it("refuses names that are not shell identifiers", () => {
    expect(() => formatEnvFile(new Map([["1A", "x"]]))).toThrow(
      'cannot write variable "1A" to an env file: a name must match [A-Za-z_][A-Za-z0-9_]*; use the files or json format',
    );
  });

  it("refuses a NUL byte and names the variable, not the value", () => {
    const error = (() => {
      try {
        formatEnvFile(new Map([["KEY", "sec\0ret"]]));
      } catch (caught) {
        return caught as EntrypointError;
      }
    })();
    expect(error?.exitCode).toBe(65);
    expect(error?.message).toBe(
      "cannot write variable KEY to an env file: its value holds a NUL byte or is not valid text; use the files format",
    );
  });

  it("refuses a lone surrogate", () => {
    expect(() => formatEnvFile(new Map([["KEY", "\ud800"]]))).toThrow(
      /not valid text/,
    );
  });
});

describe("parseEnvFile", () => {
  const rows: Array<[string, string, Record<string, string>]> = [
    ["empty file", "", {}],
    ["comments and blank lines", "# c\n\n   \n  # indented\nA=1\n", { A: "1" }],
    ["no final newline", "A=1", { A: "1" }],
    ["export prefix", "export A=1\nexport\tB='2'\n", { A: "1", B: "2" }],
    ["a variable named export", "export=1\n", { export: "1" }],
    ["unquoted", "A=hello\n", { A: "hello" }],
    ["unquoted with = and #", "A=a=b#c\n", { A: "a=b#c" }],
    ["unquoted with escapes", "A=a\\ b\\'c\n", { A: "a b'c" }],
    ["unquoted line continuation", "A=ab\\\ncd\n", { A: "abcd" }],
    ["empty value", "A=\nB=''\nC=\"\"\n", { A: "", B: "", C: "" }],
    ["empty value then comment", "A= # nothing\n", { A: "" }],
    ["trailing comment", "A=1 # one\nB='2'\t# two\n", { A: "1", B: "2" }],
    ["leading blanks", "  \tA=1\n", { A: "1" }],
    ["single quotes are literal", "A='$x \\n \"'\n", { A: '$x \\n "' }],
    ["single quotes span lines", "A='l1\nl2'\nB=3\n", { A: "l1\nl2", B: "3" }],
    ["quote escape", "A='it'\\''s'\n", { A: "it's" }],
    ["adjacent parts join", "A=a'b'\"c\"d\n", { A: "abcd" }],
    [
      "double-quote escapes",
      'A="q\\" b\\\\ d\\$ n\\n t\\`"\n',
      { A: 'q" b\\ d$ n\n t`' },
    ],
    ["other escapes stay", 'A="\\t\\x"\n', { A: "\\t\\x" }],
    ["double quotes span lines", 'A="l1\nl2"\n', { A: "l1\nl2" }],
    ["double-quoted continuation", 'A="ab\\\ncd"\n', { A: "abcd" }],
    [
      "lone $ is literal",
      'A=a$\nB="$ x"\nC=$%\n',
      { A: "a$", B: "$ x", C: "$%" },
    ],
    ["later assignment wins", "A=1\nA=2\n", { A: "2" }],
    ["unicode", "A=ünï🔑\nB='日本'\n", { A: "ünï🔑", B: "日本" }],
    ["CR inside quotes is kept", "A='x\r'\n", { A: "x\r" }],
    ["~ inside a word", "A=a~b\n", { A: "a~b" }],
  ];

  it.each(rows)("%s", (_, text, expected) => {
    expect(Object.fromEntries(parseEnvFile(text, "hand.env"))).toEqual(
      expected,
    );
  });

  const badRows: Array<[string, string, string]> = [
    [
      "no =",
      "JUST_A_NAME\n",
      "line 1: expected NAME=value with NAME matching [A-Za-z_][A-Za-z0-9_]*",
    ],
    [
      "space before =",
      "A =1\n",
      "line 1: expected NAME=value with NAME matching [A-Za-z_][A-Za-z0-9_]*",
    ],
    [
      "bad name",
      "\n1A=1\n",
      "line 2: expected NAME=value with NAME matching [A-Za-z_][A-Za-z0-9_]*",
    ],
    [
      "bare export",
      "export A\n",
      "line 1: expected NAME=value with NAME matching [A-Za-z_][A-Za-z0-9_]*",
    ],
    [
      "two words",
      "A=secret value\n",
      "line 1: unexpected text after the value of A; quote a value that holds spaces",
    ],
    [
      "value after a space",
      "A= secret\n",
      "line 1: unexpected text after the value of A; quote a value that holds spaces",
    ],
    [
      "unclosed single quote",
      "A=1\nB='secret\nmore\n",
      "line 2: the value of B has no closing single quote",
    ],
    [
      "unclosed double quote",
      'B="secret\n',
      "line 1: the value of B has no closing double quote",
    ],
    [
      "expansion unquoted",
      "A=$HOME\n",
      "line 1: the value of A has a $ expansion, which is not supported; write \\$ or use single quotes",
    ],
    [
      "expansion quoted",
      'A="x${Y}"\n',
      "line 1: the value of A has a $ expansion, which is not supported; write \\$ or use single quotes",
    ],
    [
      "command substitution",
      'A="`id`"\n',
      "line 1: the value of A has a command substitution, which is not supported; escape it as \\`",
    ],
    [
      "unquoted ;",
      "A=a;b\n",
      "line 1: the value of A has an unquoted ;, which sh reads as syntax; put the value in single quotes",
    ],
    [
      "unquoted &",
      "A=x?a=1&b=2\n",
      "line 1: the value of A has an unquoted &, which sh reads as syntax; put the value in single quotes",
    ],
    [
      "unquoted ~",
      "A=~/x\n",
      "line 1: the value of A starts with an unquoted ~, which sh expands to a home directory; put the value in single quotes",
    ],
    [
      "CRLF",
      "A=1\r\n",
      "line 1: carriage return outside quotes; save the file with LF line endings",
    ],
    [
      "lone backslash",
      "A=x\\",
      "line 1: the value of A ends with a lone backslash",
    ],
    [
      "line after multi-line value",
      "A='x\ny' z\n",
      "line 2: unexpected text after the value of A; quote a value that holds spaces",
    ],
  ];

  it.each(badRows)("refuses %s", (_, text, problem) => {
    const error = parseError(text);
    expect(error.exitCode).toBe(65);
    expect(error.message).toBe(
      `failed to read env file /run/app.env: ${problem}`,
    );
    expect(error.message).not.toContain("secret");
  });
});
