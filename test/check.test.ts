/**
 * Check mode and the mock through the bundle: a redacted report, an exit
 * status that says whether everything resolved, nothing started.
 */
import fs from "node:fs";
import path from "node:path";

import { describe, expect, test } from "vitest";

import {
  baseEnv,
  expectNoLeak,
  logLines,
  runEntrypoint,
} from "./support/run.ts";
import { scratchFolders } from "./support/scratch.ts";

const scratch = scratchFolders("check");
const secrets = ["correct-horse-battery", "tok-9f8e7d6c"];

function mockYaml() {
  const file = path.join(scratch(), "mock.yaml");
  fs.writeFileSync(
    file,
    [
      "# local development values",
      "vault:secret/app:",
      `  password: ${secrets[0]}`,
      "  port: 5432",
      `awssm:prod/api: "${secrets[1]}"`,
      "",
    ].join("\n"),
  );
  return file;
}

describe("--check", () => {
  test("prints a table with lengths, never values, and exits 0", async () => {
    const mock = mockYaml();
    const result = await runEntrypoint(["--check", "--mock", mock], {
      env: baseEnv({
        DB_PASSWORD: "vault:secret/app#password",
        API: "awssm:prod/api",
        OPT: "vault:secret/none?optional=true#x",
      }),
    });

    expect(result.code).toBe(0);
    const table = result.stdout.split("\n");
    expect(table[0]).toMatch(
      /^VARIABLE\s+PROVIDER\s+REFERENCE\s+STATUS\s+LENGTH$/,
    );
    expect(table).toContain(
      "DB_PASSWORD  mock      vault:secret/app#password          ok      21",
    );
    expect(table).toContain(
      "API          mock      awssm:prod/api                     ok      12",
    );
    expect(table).toContain(
      "OPT          mock      vault:secret/none?optional=true#x  absent  -",
    );
    expectNoLeak(result, secrets);
  });

  test("--format json reports every failure and exits with the first one's code", async () => {
    const mock = mockYaml();
    const result = await runEntrypoint(
      ["--check", "--format", "json", "--mock", mock],
      {
        env: baseEnv({
          A: "vault:secret/app#pasword",
          B: "vault:secret/app#port",
        }),
      },
    );

    expect(result.code).toBe(66);
    expect(JSON.parse(result.stdout)).toEqual({
      ok: false,
      references: [
        {
          variable: "A",
          provider: "mock",
          reference: "vault:secret/app#pasword",
          status: "failed",
          exitCode: 66,
          error:
            'failed to resolve A from vault:secret/app#pasword: the secret has no key "pasword"; its keys are "password", "port"',
        },
        {
          variable: "B",
          provider: "mock",
          reference: "vault:secret/app#port",
          status: "ok",
          length: 4,
        },
      ],
    });
    expectNoLeak(result, secrets);
  });

  test("with a command is a usage error, and the command never runs", async () => {
    const marker = path.join(scratch(), "ran");
    const result = await runEntrypoint(["--check", "--", "touch", marker]);

    expect(result.code).toBe(64);
    expect(fs.existsSync(marker)).toBe(false);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      "--check starts nothing, but a command was given (touch); drop the command or --check (SECRET_ENTRYPOINT_CHECK)",
    );
  });

  test("reports what exec mode would refuse: a NUL byte and a value over 128 KiB", async () => {
    const mock = write(
      "mock.json",
      JSON.stringify({
        "vault:secret/big": {
          nul: "a\u0000b",
          big: "x".repeat(140_000),
          ok: "fine",
        },
      }),
    );
    const result = await runEntrypoint(
      ["--check", "--format=json", "--mock", mock],
      {
        env: baseEnv({
          NUL: "vault:secret/big#nul",
          BIG: "vault:secret/big#big",
          OK: "vault:secret/big#ok",
          FILE: "vault:secret/big?as=file#nul",
        }),
      },
    );

    expect(result.code).toBe(65);
    const report = JSON.parse(result.stdout) as {
      references: Array<Record<string, unknown>>;
    };
    expect(
      report.references.map((row) => [row.variable, row.status, row.error]),
    ).toEqual([
      [
        "BIG",
        "failed",
        "BIG from vault:secret/big#big cannot be passed to the command: it is 140005 bytes, more than the 131072 bytes execve accepts for one variable; use the option as=file",
      ],
      ["FILE", "ok", undefined],
      [
        "NUL",
        "failed",
        "NUL from vault:secret/big#nul cannot be passed to the command: its value holds a NUL byte; use the option as=file",
      ],
      ["OK", "ok", undefined],
    ]);
  });

  test("rows come in the order of the variables' names", async () => {
    const result = await runEntrypoint(["--check", "--mock", mockYaml()], {
      env: baseEnv({
        ZED: "awssm:prod/api",
        ALPHA: "vault:secret/app#port",
        MID: "vault:secret/app#password",
      }),
    });

    expect(
      result.stdout
        .split("\n")
        .slice(1, 4)
        .map((line) => line.split(" ")[0]),
    ).toEqual(["ALPHA", "MID", "ZED"]);
  });
});

describe("--mock", () => {
  test("YAML integers keep every digit, as JSON numbers do", async () => {
    const mock = write(
      "big.yaml",
      "vault:secret/n: { big: 12345678901234567890, small: 7 }\n",
    );
    const result = await runEntrypoint(
      ["--check", "--format=json", "--mock", mock],
      {
        env: baseEnv({ BIG: "vault:secret/n#big", ALL: "vault:secret/n" }),
      },
    );

    const rows = (
      JSON.parse(result.stdout) as {
        references: Array<{ variable: string; length: number }>;
      }
    ).references;
    expect(rows.map((row) => [row.variable, row.length])).toEqual([
      ["ALL", '{"big":12345678901234567890,"small":7}'.length],
      ["BIG", "12345678901234567890".length],
    ]);
  });

  test("logs a warning at start", async () => {
    const result = await runEntrypoint(["--mock", mockYaml(), "--", "true"], {
      env: baseEnv({ DB: "vault:secret/app#password" }),
    });

    expect(result.code).toBe(0);
    const events = logLines(result.stderr).map((line) => [
      line.level,
      line.event,
    ]);
    expect(events).toContainEqual([40, "mock.active"]);
  });

  test.each([
    [
      "a missing file",
      () => "/nonexistent/mock.yaml",
      "cannot read the mock file /nonexistent/mock.yaml (ENOENT); check --mock",
    ],
    [
      "invalid YAML",
      () => write("mock.yaml", `a: [\n  b: "${secrets[0]}\n`),
      "the mock file FILE is not valid YAML near line 3",
    ],
    [
      "invalid JSON",
      () => write("mock.json", `{"vault:x": "${secrets[0]}",}`),
      "the mock file FILE is not valid JSON",
    ],
    [
      "a list",
      () => write("mock.yaml", "- a\n- b\n"),
      "the mock file FILE must hold a map of references to secrets",
    ],
  ])("%s is exit 78 and says which file", async (_name, makeFile, message) => {
    const file = makeFile();
    const result = await runEntrypoint(["--mock", file, "--", "true"], {
      env: baseEnv({ DB: "vault:secret/app#password" }),
    });

    expect(result.code).toBe(78);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      message.replace("FILE", file),
    );
    expectNoLeak(result, secrets);
  });
});

function write(name: string, content: string) {
  const file = path.join(scratch(), name);
  fs.writeFileSync(file, content);
  return file;
}
