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

  test("starts nothing even with a command", async () => {
    const marker = path.join(scratch(), "ran");
    const result = await runEntrypoint([
      "--check",
      "--log-level=error",
      "--",
      "touch",
      marker,
    ]);

    expect(result.code).toBe(0);
    expect(result.stdout).toBe("no references found\n");
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe("--mock", () => {
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
