/**
 * The command line. Every option has an environment form,
 * `--files-dir DIR` is also `SECRET_ENTRYPOINT_FILES_DIR=DIR`, and a flag
 * wins over the environment. Options end at `--` or at the first word that
 * is not an option; the rest is the command.
 */
import path from "node:path";

import {
  awsSettingNames,
  vaultSettingNames,
} from "../providers/setting-names.ts";
import { usageError } from "./errors.ts";

type Kind = "flag" | "boolean" | "string" | "duration" | "list" | "mode";

interface OptionSpec {
  name: string;
  kind: Kind;
  /** The value's placeholder in the help text. */
  placeholder?: string;
  /** For string options with a closed set of values. */
  choices?: readonly string[];
  help: string;
  /** Flags that exist only on the command line. */
  cliOnly?: boolean;
}

/** Every option, in the order `--help` lists them. */
export const optionSpecs = [
  {
    name: "user",
    kind: "string",
    placeholder: "SPEC",
    help: "run the command as SPEC: name, uid, name:group or uid:gid",
  },
  {
    name: "check",
    kind: "boolean",
    help: "resolve every reference, print a redacted report, start nothing",
  },
  {
    name: "format",
    kind: "string",
    placeholder: "FORMAT",
    choices: ["table", "json"],
    help: "report format of --check (default table)",
  },
  {
    name: "mock",
    kind: "string",
    placeholder: "FILE",
    help: "answer vault: and awssm: references (and file: ones it lists) from FILE, JSON or YAML",
  },
  {
    name: "render",
    kind: "string",
    placeholder: "DIR",
    help: "write the resolved values into DIR instead of the environment",
  },
  {
    name: "render-format",
    kind: "string",
    placeholder: "FORMAT",
    choices: ["files", "env", "json"],
    help: "what --render writes: a file per variable, a dotenv file or a JSON file (default files)",
  },
  {
    name: "render-mode",
    kind: "mode",
    placeholder: "MODE",
    help: "octal mode of rendered files (default 0400)",
  },
  {
    name: "supervise",
    kind: "boolean",
    help: "stay as the command's parent: forward signals, exit with its status",
  },
  {
    name: "refresh",
    kind: "duration",
    placeholder: "DURATION",
    help: "with --render or --supervise, resolve again every DURATION and act on what changed",
  },
  {
    name: "refresh-signal",
    kind: "string",
    placeholder: "SIGNAL",
    help: "with --supervise --refresh, send SIGNAL to the command on a change instead of restarting it",
  },
  {
    // Not --env-file: Node itself reads `--env-file FILE` wherever it
    // stands before `--`, even after the script, and would load the file
    // (NODE_OPTIONS included) before this program runs.
    name: "env-from",
    kind: "string",
    placeholder: "FILE",
    help: "load variables from a dotenv FILE before resolving references",
  },
  {
    name: "timeout",
    kind: "duration",
    placeholder: "DURATION",
    help: "deadline for resolving every reference (default 30s)",
  },
  {
    name: "files-dir",
    kind: "string",
    placeholder: "DIR",
    help: "where as=file values are written (default /dev/shm/secret-entrypoint)",
  },
  {
    name: "file-roots",
    kind: "list",
    placeholder: "DIR,...",
    help: "folders that file: references may read, besides /run/secrets",
  },
  {
    name: "file-trim",
    kind: "boolean",
    placeholder: "BOOL",
    help: "remove trailing newlines from file contents (default true)",
  },
  {
    name: "file-vars",
    kind: "list",
    placeholder: "NAME,...",
    help: "set NAME from the file named by NAME_FILE, for these names or * for all",
  },
  {
    name: "skip",
    kind: "list",
    placeholder: "NAME,...",
    help: "variables that are never scanned for references",
  },
  {
    name: "keep-env",
    kind: "list",
    placeholder: "NAME,...",
    help: "entrypoint and Vault variables to pass on to the command",
  },
  {
    name: "log-level",
    kind: "string",
    placeholder: "LEVEL",
    choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    help: "least level logged on stderr (default info)",
  },
  {
    name: "log-format",
    kind: "string",
    placeholder: "FORMAT",
    choices: ["json", "pretty"],
    help: "log lines as JSON or for people (default json)",
  },
  {
    name: "help",
    kind: "flag",
    cliOnly: true,
    help: "print this help and exit",
  },
  {
    name: "version",
    kind: "flag",
    cliOnly: true,
    help: "print the version and exit",
  },
] as const satisfies readonly OptionSpec[];

type Spec = (typeof optionSpecs)[number];
type Name = Spec["name"];

/** The parsed options: strings, booleans, milliseconds, lists or modes. */
export interface Options {
  user?: string;
  check: boolean;
  format: "table" | "json";
  mock?: string;
  render?: string;
  renderFormat: "files" | "env" | "json";
  renderMode: number;
  supervise: boolean;
  refreshMs?: number;
  refreshSignal?: NodeJS.Signals;
  envFrom?: string;
  timeoutMs: number;
  filesDir: string;
  fileRoots: string[];
  fileTrim: boolean;
  /** Names whose NAME_FILE is read; `["*"]` for every name. */
  fileVars: string[];
  skip: string[];
  keepEnv: string[];
  logLevel: string;
  logFormat: "json" | "pretty";
  help: boolean;
  version: boolean;
  /** The command and its arguments; empty when none was given. */
  command: string[];
}

export const envPrefix = "SECRET_ENTRYPOINT_";

/** The environment variable of an option: `files-dir` -> `..._FILES_DIR`. */
export function envName(name: string): string {
  return envPrefix + name.toUpperCase().replaceAll("-", "_");
}

/**
 * Parses the arguments after the program name and the environment into
 * options. Throws an exit-64 error that names the option and its valid forms.
 */
export function parseOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Options {
  checkSettingNames(env);
  const { given, command } = splitArguments(argv);
  const raw = new Map<Name, string>();
  for (const spec of optionSpecs) {
    const value = given.get(spec.name) ?? fromEnv(spec, env);
    if (value !== undefined) raw.set(spec.name, value);
  }
  const options = toOptions(raw, command);
  checkCombinations(options);
  return options;
}

// A misspelt setting would otherwise pass in silence: SECRET_ENTRYPOINT_USR
// would run the command as root.
function checkSettingNames(env: NodeJS.ProcessEnv) {
  const own = optionSpecs
    .filter((spec) => !("cliOnly" in spec))
    .map((spec) => envName(spec.name));
  const known = new Set([...own, ...vaultSettingNames, ...awsSettingNames]);
  for (const name of Object.keys(env)) {
    if (!name.startsWith(envPrefix) || known.has(name)) continue;

    throw usageError(
      `${name} is not a setting of secret-entrypoint; valid settings: ${[...known].join(", ")}`,
    );
  }
}

function checkCombinations(options: Options) {
  const conflict = (message: string) => {
    throw usageError(message);
  };
  if (options.check && options.render !== undefined) {
    conflict(
      "--check and --render cannot be combined: check mode writes nothing",
    );
  }
  if (
    options.check &&
    options.command.length > 0 &&
    !options.help &&
    !options.version
  ) {
    conflict(
      `--check starts nothing, but a command was given (${options.command[0]}); drop the command or --check (SECRET_ENTRYPOINT_CHECK)`,
    );
  }
  if (options.supervise && (options.check || options.render !== undefined)) {
    conflict(
      "--supervise runs a command: it cannot be combined with --check or --render",
    );
  }
  if (
    options.refreshSignal !== undefined &&
    (!options.supervise || options.refreshMs === undefined)
  ) {
    conflict("--refresh-signal works with --supervise --refresh only");
  }
  // The supervisor hands kept variables to the entrypoint that starts the
  // command, which would take a kept SECRET_ENTRYPOINT_SUPERVISE as its own.
  const keptSetting = options.keepEnv.find((name) =>
    name.startsWith(envPrefix),
  );
  if (options.supervise && keptSetting !== undefined) {
    conflict(
      `--supervise cannot keep the entrypoint's settings for the command (${keptSetting}); drop it from --keep-env`,
    );
  }
  if (
    options.refreshMs !== undefined &&
    options.render === undefined &&
    !options.supervise
  ) {
    conflict(
      "--refresh works with --render or --supervise only: add one, or drop --refresh",
    );
  }
}

function fromEnv(spec: Spec, env: NodeJS.ProcessEnv): string | undefined {
  if ("cliOnly" in spec) return undefined;

  return env[envName(spec.name)];
}

function splitArguments(argv: readonly string[]) {
  const given = new Map<Name, string>();
  let index = 0;
  while (index < argv.length) {
    const word = argv[index]!;
    if (word === "--") return { given, command: argv.slice(index + 1) };
    if (!word.startsWith("-") || word === "-") break;

    index += readOption(word, argv[index + 1], given);
  }
  return { given, command: argv.slice(index) };
}

// Returns how many words the option used.
function readOption(
  word: string,
  next: string | undefined,
  given: Map<Name, string>,
): number {
  const short: Record<string, Name> = { "-h": "help", "-v": "version" };
  const equals = word.indexOf("=");
  const flag = equals === -1 ? word : word.slice(0, equals);
  const name = short[flag] ?? flag.slice(2);
  const spec = optionSpecs.find((candidate) => candidate.name === name);
  if (spec === undefined || (!flag.startsWith("--") && !short[flag])) {
    const hint = flag === "--env-file" ? "; use --env-from FILE" : "";
    throw usageError(
      `unknown option ${flag}${hint}; valid options: ${optionSpecs.map((s) => `--${s.name}`).join(", ")} (see --help)`,
    );
  }

  const takesValue = spec.kind !== "flag" && spec.kind !== "boolean";
  if (equals !== -1) {
    if (spec.kind === "flag")
      throw usageError(`option --${name} takes no value`);
    given.set(spec.name, word.slice(equals + 1));
    return 1;
  }
  if (!takesValue) {
    given.set(spec.name, "true");
    return 1;
  }
  if (next === undefined) {
    throw usageError(
      `option --${name} needs a value: --${name} ${spec.placeholder}`,
    );
  }
  given.set(spec.name, next);
  return 2;
}

function toOptions(raw: Map<Name, string>, command: string[]): Options {
  const text = (name: Name) => nonEmpty(name, raw.get(name));
  const choice = <T extends string>(name: Name, fallback: T) =>
    oneOf(name, raw.get(name), fallback) as T;

  return {
    ...optionalField("user", text("user")),
    check: parseBoolean("check", raw.get("check"), false),
    format: choice("format", "table"),
    ...optionalField("mock", text("mock")),
    ...optionalField("render", text("render")),
    renderFormat: choice("render-format", "files"),
    renderMode: parseMode("render-mode", raw.get("render-mode"), 0o400),
    supervise: parseBoolean("supervise", raw.get("supervise"), false),
    ...optionalField(
      "refreshSignal",
      parseSignal("refresh-signal", raw.get("refresh-signal")),
    ),
    ...optionalField(
      "refreshMs",
      parseDurationOption("refresh", raw.get("refresh")),
    ),
    ...optionalField("envFrom", text("env-from")),
    timeoutMs: parseDurationOption("timeout", raw.get("timeout")) ?? 30_000,
    filesDir:
      absolutePath("files-dir", text("files-dir")) ??
      "/dev/shm/secret-entrypoint",
    fileRoots: ["/run/secrets", ...parseRoots(raw.get("file-roots"))],
    fileTrim: parseBoolean("file-trim", raw.get("file-trim"), true),
    fileVars: parseNames("file-vars", raw.get("file-vars"), true),
    skip: parseNames("skip", raw.get("skip"), true),
    keepEnv: parseNames("keep-env", raw.get("keep-env"), false),
    logLevel: choice("log-level", "info"),
    logFormat: choice("log-format", "json"),
    help: raw.get("help") === "true",
    version: raw.get("version") === "true",
    command,
  };
}

function optionalField<K extends string, V>(key: K, value: V | undefined) {
  return (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;
}

function describe(name: Name): string {
  return `--${name} (${envName(name)})`;
}

function nonEmpty(name: Name, value: string | undefined) {
  if (value === "") throw usageError(`${describe(name)} is empty`);
  return value;
}

function oneOf(name: Name, value: string | undefined, fallback: string) {
  if (value === undefined) return fallback;

  const spec = optionSpecs.find((candidate) => candidate.name === name)!;
  const choices: readonly string[] = "choices" in spec ? spec.choices : [];
  if (!choices.includes(value)) {
    throw usageError(
      `${describe(name)} has the value "${value}"; valid values: ${choices.join(", ")}`,
    );
  }
  return value;
}

const booleans: Record<string, boolean> = {
  true: true,
  false: false,
  "1": true,
  "0": false,
};

function parseBoolean(
  name: Name,
  value: string | undefined,
  fallback: boolean,
) {
  if (value === undefined) return fallback;

  const parsed = booleans[value];
  if (parsed === undefined) {
    throw usageError(
      `${describe(name)} has the value "${value}"; valid values: true, false, 1, 0`,
    );
  }
  return parsed;
}

// Secret files may be readable by more than their owner, but never writable
// or executable by anyone else.
function parseMode(name: Name, value: string | undefined, fallback: number) {
  if (value === undefined) return fallback;

  const mode = /^0?[0-7]{3}$/.test(value) ? Number.parseInt(value, 8) : -1;
  if (mode < 0 || (mode & 0o133) !== 0 || (mode & 0o400) === 0) {
    throw usageError(
      `${describe(name)} has the value "${value}"; give an octal mode that the owner can read and nobody else can write or execute, such as 0400, 0440 or 0444`,
    );
  }
  return mode;
}

// Signals a program may take as "read your files again"; TERM, INT and the
// like would stop it instead.
const reloadSignals = ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGALRM"];

function parseSignal(name: Name, value: string | undefined) {
  if (value === undefined) return undefined;

  const signal = value.startsWith("SIG") ? value : `SIG${value}`;
  if (!reloadSignals.includes(signal)) {
    throw usageError(
      `${describe(name)} has the value "${value}"; valid values: ${reloadSignals.join(", ")}`,
    );
  }
  return signal as NodeJS.Signals;
}

// A plain path: /a/./b, /a/../b or a trailing slash would let the folder's
// checks look at another folder than the one written.
function absolutePath(name: Name, value: string | undefined) {
  const plain =
    value === undefined ||
    (value.startsWith("/") &&
      value !== "/" &&
      !value.endsWith("/") &&
      path.posix.normalize(value) === value);
  if (!plain) {
    throw usageError(
      `${describe(name)} has the value "${value}"; give a plain absolute path, without ., .. or a trailing /`,
    );
  }
  return value;
}

// Variable names, and for --file-vars also "*"; a pattern such as D* is not
// supported and would otherwise match nothing without a word.
function parseNames(name: Name, value: string | undefined, star: boolean) {
  const names = parseList(value);
  for (const item of names) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(item) || (star && item === "*"))
      continue;

    throw usageError(
      `${describe(name)} holds "${item}"; give variable names separated by commas${star ? ", or * for every name" : ""}`,
    );
  }
  return names;
}

function parseDurationOption(name: Name, value: string | undefined) {
  if (value === undefined) return undefined;

  const ms = parseDuration(value);
  if (ms === undefined || ms === 0 || ms > maxTimerMs) {
    throw usageError(
      `${describe(name)} has the value "${value}"; give a duration such as 500ms, 30s, 5m, 1h or 1m30s, at most 596h`,
    );
  }
  return ms;
}

// Node's timers take at most 2^31-1 ms (24.8 days); a longer one fires at
// once.
const maxTimerMs = 2 ** 31 - 1;

const unitMs: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration in Go's notation without fractions: one or more
 * number-unit pairs with units ms, s, m, h. Returns milliseconds, or
 * undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+(ms|s|m|h))+$/.test(text)) return undefined;

  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h)/g)) {
    total += Number(amount) * unitMs[unit!]!;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

function parseList(value: string | undefined): string[] {
  if (value === undefined) return [];

  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

function parseRoots(value: string | undefined): string[] {
  const roots = parseList(value);
  for (const root of roots) {
    if (
      !root.startsWith("/") ||
      root.includes("/../") ||
      root.endsWith("/..")
    ) {
      throw usageError(
        `${describe("file-roots")} holds "${root}"; give absolute folders separated by commas`,
      );
    }
  }
  return roots.map((root) =>
    root.length > 1 ? root.replace(/\/+$/, "") : root,
  );
}

/** The text of `--help`, made from the option table. */
export function helpText(version: string): string {
  const lines = optionSpecs.map((spec) => {
    const value = "placeholder" in spec ? ` ${spec.placeholder}` : "";
    const env =
      "cliOnly" in spec ? "" : `\n${" ".repeat(30)}env ${envName(spec.name)}`;
    return `  --${`${spec.name}${value}`.padEnd(24)}  ${spec.help}${env}`;
  });
  return [
    `secret-entrypoint ${version}`,
    "",
    "Usage: secret-entrypoint [options] [--] command [args...]",
    "       secret-entrypoint --check [options]",
    "       secret-entrypoint --render DIR [options] [--] [command [args...]]",
    "",
    "Resolves vault:, awssm: and file: references in the environment, drops",
    "privileges to --user and replaces itself with the command.",
    "",
    "Options:",
    ...lines,
    "",
    "Exit codes: 64 usage, 65 malformed reference or value, 66 secret not",
    "found, 67 unknown user or group, 69 provider unavailable, 77 permission",
    "denied, 78 configuration, 126 command not executable, 127 command not",
    "found; otherwise the command's own.",
    "",
  ].join("\n");
}
