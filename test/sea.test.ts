/**
 * The single executable: the same program as the bundle, which ignores
 * NODE_OPTIONS and keeps the pid across exec.
 */
import fs from "node:fs";
import path from "node:path";

import { describe, expect, test } from "vitest";

import {
  baseEnv,
  logLines,
  reportCommand,
  root,
  runEntrypoint,
  type Report,
} from "./support/run.ts";
import { readReport, scratchFolders } from "./support/scratch.ts";

const scratch = scratchFolders("sea");
const { version } = JSON.parse(
  fs.readFileSync(path.join(root, "package.json"), "utf8"),
) as { version: string };

describe("the single executable", () => {
  test("prints its version", async () => {
    const result = await runEntrypoint(["--version"], { sea: true });

    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`secret-entrypoint ${version}\n`);
    expect(result.stderr).toBe("");
  });

  test("ignores NODE_OPTIONS, which the bundle under node would obey", async () => {
    const env = baseEnv({ NODE_OPTIONS: "--require /nonexistent/preload.js" });
    const sea = await runEntrypoint(["--version"], { sea: true, env });
    const bundle = await runEntrypoint(["--version"], { env });

    expect(sea.code).toBe(0);
    expect(bundle.code).not.toBe(0);
  });

  test("becomes the command with the pid it had", async () => {
    const dir = scratch();
    const mock = path.join(dir, "mock.yaml");
    fs.writeFileSync(
      mock,
      "vault:secret/app: { password: sea-secret-value }\n",
    );
    const { command, reportPath } = reportCommand(dir);
    const env = baseEnv({ DB: "vault:secret/app#password" });
    const result = await runEntrypoint(["--mock", mock, "--", ...command], {
      sea: true,
      env,
    });

    expect(result.code).toBe(0);
    const report = readReport<Report>(reportPath)!;
    expect(report.pid).toBe(result.pid);
    expect(report.env.DB).toBe("sea-secret-value");
    expect(logLines(result.stderr).map((line) => line.event)).toEqual([
      "mock.active",
      "privileges.root",
      "exec",
    ]);
    expect(result.stderr).not.toContain("sea-secret-value");
  });
});
