/**
 * Env files: the dotenv format that `--render` writes with the `env` format
 * and that `--env-file FILE` reads before references are resolved.
 *
 * What we write is meant for two readers that must agree byte for byte: a
 * POSIX shell (`set -a; . FILE`) and `parseEnvFile`. Every value is put in
 * single quotes, the only quoting in which sh(1) changes nothing (XCU 2.2.2),
 * and a quote inside is written `'\''`: close, escaped quote, reopen.
 *
 * What we read is a subset of sh word syntax that covers what people write
 * by hand:
 *
 *   # a comment               blank lines
 *   NAME=value                unquoted: no spaces, `\x` is `x`
 *   export NAME=value         `export ` is ignored
 *   NAME='single quoted'      literal, may span lines
 *   NAME="double quoted"      may span lines; `\n` is a newline (as in
 *                             dotenv), `\"` `\\` `\$` `` \` `` are the
 *                             character, other `\x` stay as typed
 *   NAME='it'\''s'            adjacent parts join, as in sh
 *   NAME=value # comment      a comment after a space
 *
 * Where sh would do something else than assign the text (expansion with `$`,
 * command substitution, `;`, `&`, `|`, redirection, a second word), the line
 * is refused instead of read differently: the file must mean the same to both
 * readers. The only deliberate difference is `\n` in double quotes, which
 * people copy from dotenv files; our writer never uses double quotes.
 */
import { invalidError } from "./errors.ts";

const namePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

// Unquoted characters that end a word or mean something else to sh.
const shellSpecial = new Set([";", "&", "|", "<", ">", "(", ")", "`"]);

// After `$`, these start an expansion in sh; `$` before anything else is
// literal there too.
const expansionStart = /[A-Za-z0-9_{(@*#?$!-]/;

/**
 * Formats variables as an env file that sh and `parseEnvFile` both read back
 * exactly. Names must be shell identifiers, and values cannot hold NUL
 * (no shell variable can): both are errors naming the variable.
 */
export function formatEnvFile(values: ReadonlyMap<string, string>): string {
  let text = "";
  for (const [name, value] of values) {
    checkFormattable(name, value);
    text += `${name}=${singleQuote(value)}\n`;
  }
  return text;
}

/** Whether `name` can be a variable in an env file (a shell identifier). */
export function isEnvFileName(name: string): boolean {
  return namePattern.test(name);
}

function checkFormattable(name: string, value: string): void {
  if (!isEnvFileName(name)) {
    throw invalidError(
      `cannot write variable ${JSON.stringify(name)} to an env file: a name must match [A-Za-z_][A-Za-z0-9_]*; use the files or json format`,
    );
  }
  if (value.includes("\0") || !isWellFormed(value)) {
    throw invalidError(
      `cannot write variable ${name} to an env file: its value holds a NUL byte or is not valid text; use the files format`,
    );
  }
}

// A lone UTF-16 surrogate has no UTF-8 form; writing would replace it.
function isWellFormed(value: string): boolean {
  return Buffer.from(value, "utf8").toString("utf8") === value;
}

function singleQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Reads an env file. `source` names the file in errors. A malformed line is
 * an error (exit 65) that gives the file and line number but never the text,
 * since the text may be a secret. A name set twice keeps the last value, as
 * in sh.
 */
export function parseEnvFile(
  text: string,
  source: string,
): Map<string, string> {
  const values = new Map<string, string>();
  const nul = text.indexOf("\u0000");
  if (nul !== -1) {
    const line = text.slice(0, nul).split("\n").length;
    throw invalidError(
      `failed to read env file ${source}: line ${line}: a NUL byte, which no variable can hold`,
    );
  }
  const cursor = new Cursor(text, source);
  while (!cursor.atEnd()) {
    const assignment = parseLine(cursor);
    if (assignment) {
      values.set(assignment.name, assignment.value);
    }
  }
  return values;
}

/** A position in the text, and the line it is on, for error messages. */
class Cursor {
  readonly text: string;
  readonly source: string;
  pos = 0;
  line = 1;

  constructor(text: string, source: string) {
    this.text = text;
    this.source = source;
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(offset = 0): string {
    return this.text[this.pos + offset] ?? "";
  }

  next(): string {
    const char = this.text[this.pos++] ?? "";
    if (char === "\n") {
      this.line++;
    }
    return char;
  }

  /** Moves to `pos`, counting the lines passed. */
  advanceTo(pos: number): void {
    while (this.pos < pos) {
      this.next();
    }
  }

  skipBlanks(): void {
    while (this.peek() === " " || this.peek() === "\t") {
      this.next();
    }
  }

  skipComment(): void {
    while (!this.atEnd() && this.peek() !== "\n") {
      this.next();
    }
  }

  fail(line: number, problem: string): never {
    throw invalidError(
      `failed to read env file ${this.source}: line ${line}: ${problem}`,
    );
  }
}

/** Reads one line (or more, for a quoted value); null for no assignment. */
function parseLine(cursor: Cursor): { name: string; value: string } | null {
  const line = cursor.line;
  cursor.skipBlanks();
  if (cursor.peek() === "#") {
    cursor.skipComment();
  }
  if (endOfLine(cursor)) {
    return null;
  }
  const name = parseAssignedName(cursor, line);
  const value = parseWord(cursor, name, line);
  cursor.skipBlanks();
  if (cursor.peek() === "#") {
    cursor.skipComment();
  }
  if (!endOfLine(cursor)) {
    cursor.fail(
      cursor.line,
      `unexpected text after the value of ${name}; quote a value that holds spaces`,
    );
  }
  return { name, value };
}

/** Consumes the end of a line and says whether it was there. */
function endOfLine(cursor: Cursor): boolean {
  if (cursor.peek() === "\r") {
    cursor.fail(
      cursor.line,
      "carriage return outside quotes; save the file with LF line endings",
    );
  }
  if (cursor.atEnd()) {
    return true;
  }
  if (cursor.peek() === "\n") {
    cursor.next();
    return true;
  }
  return false;
}

/** Reads `[export ]NAME=` and returns NAME. */
function parseAssignedName(cursor: Cursor, line: number): string {
  let name = readIdentifier(cursor);
  if (name === "export" && (cursor.peek() === " " || cursor.peek() === "\t")) {
    cursor.skipBlanks();
    name = readIdentifier(cursor);
  }
  if (name === "" || cursor.peek() !== "=") {
    cursor.fail(
      line,
      "expected NAME=value with NAME matching [A-Za-z_][A-Za-z0-9_]*",
    );
  }
  cursor.next();
  return name;
}

function readIdentifier(cursor: Cursor): string {
  const start = cursor.pos;
  while (/[A-Za-z0-9_]/.test(cursor.peek())) {
    cursor.next();
  }
  const word = cursor.text.slice(start, cursor.pos);
  return namePattern.test(word) ? word : "";
}

/** Reads the value: quoted and unquoted parts up to a blank or line end. */
function parseWord(cursor: Cursor, name: string, line: number): string {
  let value = "";
  for (;;) {
    const char = cursor.peek();
    if (char === "'") {
      value += parseSingleQuoted(cursor, name);
    } else if (char === '"') {
      value += parseDoubleQuoted(cursor, name);
    } else if (char === "\\") {
      value += parseUnquotedEscape(cursor, name);
    } else if (char === "$") {
      value += parseDollar(cursor, name);
    } else if (shellSpecial.has(char)) {
      cursor.fail(
        line,
        `the value of ${name} has an unquoted ${char}, which sh reads as syntax; put the value in single quotes`,
      );
    } else if (char === "~" && (value === "" || value.endsWith(":"))) {
      cursor.fail(
        line,
        `the value of ${name} starts with an unquoted ~, which sh expands to a home directory; put the value in single quotes`,
      );
    } else if (char === "" || /[ \t\r\n]/.test(char)) {
      return value;
    } else {
      value += cursor.next();
    }
  }
}

function parseSingleQuoted(cursor: Cursor, name: string): string {
  const line = cursor.line;
  cursor.next();
  const end = cursor.text.indexOf("'", cursor.pos);
  if (end < 0) {
    cursor.fail(line, `the value of ${name} has no closing single quote`);
  }
  const value = cursor.text.slice(cursor.pos, end);
  cursor.advanceTo(end + 1);
  return value;
}

function parseDoubleQuoted(cursor: Cursor, name: string): string {
  const line = cursor.line;
  cursor.next();
  let value = "";
  for (;;) {
    if (cursor.atEnd()) {
      cursor.fail(line, `the value of ${name} has no closing double quote`);
    }
    const char = cursor.peek();
    if (char === '"') {
      cursor.next();
      return value;
    }
    if (char === "\\") {
      value += parseQuotedEscape(cursor);
    } else if (char === "$") {
      value += parseDollar(cursor, name);
    } else if (char === "`") {
      cursor.fail(
        cursor.line,
        `the value of ${name} has a command substitution, which is not supported; escape it as \\\``,
      );
    } else {
      value += cursor.next();
    }
  }
}

// XCU 2.2.3: in double quotes a backslash escapes only $ ` " \ and newline;
// before anything else it stays. `\n` is dotenv's newline.
function parseQuotedEscape(cursor: Cursor): string {
  cursor.next();
  const char = cursor.next();
  switch (char) {
    case "n":
      return "\n";
    case "\n":
      return "";
    case '"':
    case "\\":
    case "$":
    case "`":
      return char;
    default:
      return `\\${char}`;
  }
}

// XCU 2.2.1: unquoted, a backslash keeps the next character literal, and a
// backslash before a newline joins the lines.
function parseUnquotedEscape(cursor: Cursor, name: string): string {
  const line = cursor.line;
  cursor.next();
  if (cursor.atEnd()) {
    cursor.fail(line, `the value of ${name} ends with a lone backslash`);
  }
  const char = cursor.next();
  return char === "\n" ? "" : char;
}

function parseDollar(cursor: Cursor, name: string): string {
  if (expansionStart.test(cursor.peek(1))) {
    cursor.fail(
      cursor.line,
      `the value of ${name} has a $ expansion, which is not supported; write \\$ or use single quotes`,
    );
  }
  return cursor.next();
}
