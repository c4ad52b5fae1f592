import fs from "node:fs";

import { describe, expect, test } from "vitest";

import {
  helpText,
  optionSpecs,
  parseDuration,
  parseOptions,
} from "../src/options.ts";

describe("parseOptions", () => {
  test("defaults", () => {
    expect(parseOptions(["app"], {})).toEqual({
      check: false,
      supervise: false,
      format: "table",
      renderFormat: "files",
      renderMode: 0o400,
      timeoutMs: 30_000,
      filesDir: "/dev/shm/secret-entrypoint",
      fileRoots: ["/run/secrets"],
      fileTrim: true,
      fileVars: [],
      skip: [],
      keepEnv: [],
      logLevel: "info",
      logFormat: "json",
      help: false,
      version: false,
      command: ["app"],
    });
  });

  test("options end at -- or at the first word that is not an option", () => {
    expect(
      parseOptions(["--user", "app", "--", "--check"], {}).command,
    ).toEqual(["--check"]);
    expect(
      parseOptions(["--timeout", "5s", "node", "--user", "x"], {}),
    ).toMatchObject({
      timeoutMs: 5_000,
      command: ["node", "--user", "x"],
    });
    expect(parseOptions(["--user=app", "-"], {})).toMatchObject({
      user: "app",
      command: ["-"],
    });
  });

  test("every option has an environment form, and a flag wins over it", () => {
    const env = {
      SECRET_ENTRYPOINT_USER: "from-env",
      SECRET_ENTRYPOINT_TIMEOUT: "1m30s",
      SECRET_ENTRYPOINT_SKIP: "A, B,,C",
      SECRET_ENTRYPOINT_FILE_ROOTS: "/etc/secrets/,/vault/secrets",
      SECRET_ENTRYPOINT_FILE_TRIM: "0",
      SECRET_ENTRYPOINT_RENDER_MODE: "0440",
      SECRET_ENTRYPOINT_CHECK: "true",
    };
    expect(parseOptions(["--user", "from-flag"], env)).toMatchObject({
      user: "from-flag",
      timeoutMs: 90_000,
      skip: ["A", "B", "C"],
      fileRoots: ["/run/secrets", "/etc/secrets", "/vault/secrets"],
      fileTrim: false,
      renderMode: 0o440,
      check: true,
    });
    expect(parseOptions(["--check=false"], env).check).toBe(false);
  });

  test("--help and --version exist only on the command line", () => {
    expect(() => parseOptions([], { SECRET_ENTRYPOINT_HELP: "true" })).toThrow(
      "SECRET_ENTRYPOINT_HELP is not a setting of secret-entrypoint; valid settings: SECRET_ENTRYPOINT_USER,",
    );
    expect(parseOptions(["-h"], {}).help).toBe(true);
    expect(parseOptions(["--version"], {}).version).toBe(true);
  });

  test.each([
    [
      ["--env-file", "x"],
      {},
      "unknown option --env-file; use --env-from FILE; valid options:",
    ],
    [
      ["--check", "app"],
      {},
      "--check starts nothing, but a command was given (app); drop the command or --check (SECRET_ENTRYPOINT_CHECK)",
    ],
    [
      ["--check", "--render", "/r"],
      {},
      "--check and --render cannot be combined: check mode writes nothing",
    ],
    [
      ["--refresh", "5s", "app"],
      {},
      "--refresh works with --render or --supervise only: add one, or drop --refresh",
    ],
    [
      ["--render-mode", "0660"],
      {},
      '--render-mode (SECRET_ENTRYPOINT_RENDER_MODE) has the value "0660"; give an octal mode that the owner can read and nobody else can write or execute',
    ],
    [
      ["--render-mode", "0500"],
      {},
      '--render-mode (SECRET_ENTRYPOINT_RENDER_MODE) has the value "0500"',
    ],
    [
      ["--render-mode", "0200"],
      {},
      '--render-mode (SECRET_ENTRYPOINT_RENDER_MODE) has the value "0200"',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_FILES_DIR: "tmp/files" },
      '--files-dir (SECRET_ENTRYPOINT_FILES_DIR) has the value "tmp/files"; give a plain absolute path, without ., .. or a trailing /',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_FILES_DIR: "/tmp/ww/sec/." },
      '--files-dir (SECRET_ENTRYPOINT_FILES_DIR) has the value "/tmp/ww/sec/."; give a plain absolute path, without ., .. or a trailing /',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_FILE_VARS: "D*" },
      '--file-vars (SECRET_ENTRYPOINT_FILE_VARS) holds "D*"; give variable names separated by commas, or * for every name',
    ],
    [
      ["--supervise", "--keep-env", "SECRET_ENTRYPOINT_SUPERVISE", "app"],
      {},
      "--supervise cannot keep the entrypoint's settings for the command (SECRET_ENTRYPOINT_SUPERVISE); drop it from --keep-env",
    ],
    [
      ["--supervise", "--refresh-signal", "HUP", "app"],
      {},
      "--refresh-signal works with --supervise --refresh only",
    ],
    [
      ["--supervise", "--check"],
      {},
      "--supervise runs a command: it cannot be combined with --check or --render",
    ],
    [
      ["--refresh-signal", "HUP", "app"],
      {},
      "--refresh-signal works with --supervise --refresh only",
    ],
    [
      ["--supervise", "--refresh", "1s", "--refresh-signal", "SIGNOPE", "app"],
      {},
      '--refresh-signal (SECRET_ENTRYPOINT_REFRESH_SIGNAL) has the value "SIGNOPE"; valid values: SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM',
    ],
    [
      ["--refresh", "597h", "--render", "/r"],
      {},
      '--refresh (SECRET_ENTRYPOINT_REFRESH) has the value "597h"; give a duration such as 500ms, 30s, 5m, 1h or 1m30s, at most 596h',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_USR: "app" },
      "SECRET_ENTRYPOINT_USR is not a setting of secret-entrypoint",
    ],
    [
      ["--bogus"],
      {},
      "unknown option --bogus; valid options: --user, --check,",
    ],
    [["-x"], {}, "unknown option -x; valid options:"],
    [["--user"], {}, "option --user needs a value: --user SPEC"],
    [["--help=yes"], {}, "option --help takes no value"],
    [["--user="], {}, "--user (SECRET_ENTRYPOINT_USER) is empty"],
    [
      ["--timeout", "30"],
      {},
      '--timeout (SECRET_ENTRYPOINT_TIMEOUT) has the value "30"; give a duration such as 500ms, 30s, 5m, 1h or 1m30s',
    ],
    [
      ["--timeout", "0s"],
      {},
      '--timeout (SECRET_ENTRYPOINT_TIMEOUT) has the value "0s"',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_REFRESH: "1.5m" },
      '--refresh (SECRET_ENTRYPOINT_REFRESH) has the value "1.5m"',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_CHECK: "yes" },
      '--check (SECRET_ENTRYPOINT_CHECK) has the value "yes"; valid values: true, false, 1, 0',
    ],
    [
      ["--check=maybe"],
      {},
      '--check (SECRET_ENTRYPOINT_CHECK) has the value "maybe"; valid values: true, false, 1, 0',
    ],
    [
      ["--format", "yaml"],
      {},
      '--format (SECRET_ENTRYPOINT_FORMAT) has the value "yaml"; valid values: table, json',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_LOG_LEVEL: "verbose" },
      '--log-level (SECRET_ENTRYPOINT_LOG_LEVEL) has the value "verbose"; valid values: trace, debug, info, warn, error, fatal, silent',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_RENDER_MODE: "644x" },
      '--render-mode (SECRET_ENTRYPOINT_RENDER_MODE) has the value "644x"; give an octal mode that the owner can read and nobody else can write or execute, such as 0400, 0440 or 0444',
    ],
    [
      [],
      { SECRET_ENTRYPOINT_FILE_ROOTS: "secrets" },
      '--file-roots (SECRET_ENTRYPOINT_FILE_ROOTS) holds "secrets"; give absolute folders separated by commas',
    ],
  ])("%j %j is a usage error", (argv, env, message) => {
    expect(() => parseOptions(argv, env)).toThrow(message);
    try {
      parseOptions(argv, env);
    } catch (error) {
      expect((error as { exitCode: number }).exitCode).toBe(64);
    }
  });
});

describe("parseDuration", () => {
  test.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1h2m3s4ms", 3_723_004],
  ])("%s", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(["", "30", "s", "1.5s", "-1s", "1d", " 1s", "1S"])(
    "rejects %j",
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

test("the help text lists every option and its environment form", () => {
  const help = helpText("1.2.3");
  for (const spec of optionSpecs) {
    expect(help).toContain(`--${spec.name}`);
    if (!("cliOnly" in spec)) {
      expect(help).toContain(
        `SECRET_ENTRYPOINT_${spec.name.toUpperCase().replaceAll("-", "_")}`,
      );
    }
  }
});

test("the README's option table lists every option and its environment form", () => {
  const readme = fs.readFileSync(
    new URL("../README.md", import.meta.url),
    "utf8",
  );
  for (const spec of optionSpecs) {
    const flag =
      "placeholder" in spec
        ? `--${spec.name} ${spec.placeholder}`
        : `--${spec.name}`;
    expect(readme).toContain(`| \`${flag}\``);
    if (!("cliOnly" in spec)) {
      expect(readme).toContain(
        `\`SECRET_ENTRYPOINT_${spec.name.toUpperCase().replaceAll("-", "_")}\``,
      );
    }
  }
});
