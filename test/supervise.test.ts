/**
 * Supervise mode through the bundle: the entrypoint stays as the parent,
 * passes signals on, exits with the command's status and, with --refresh,
 * restarts or signals the command when a value changes.
 */
import fs from "node:fs";
import path from "node:path";

import { beforeAll, describe, expect, test } from "vitest";

import { accounts, ensureAccounts, isRoot } from "./support/accounts.ts";
import {
  baseEnv,
  expectNoLeak,
  logLines,
  reportCommand,
  runEntrypoint,
  startEntrypoint,
  waitFor,
  type Report,
} from "./support/run.ts";
import {
  privateFolder,
  readReport,
  scratchFolders,
} from "./support/scratch.ts";

const scratch = scratchFolders("supervise");

function mockFile(dir: string, password: string) {
  const file = path.join(dir, "mock.yaml");
  fs.writeFileSync(`${file}.tmp`, `vault:secret/app: { pw: ${password} }\n`);
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

function start(args: string[], env: Record<string, string>) {
  return startEntrypoint(args, { env, timeoutMs: 60_000 });
}

function lines(file: string): string[] {
  return fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").trim().split("\n")
    : [];
}

describe("--supervise", () => {
  test("runs the command as a child and exits with its status", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir, "42");
    const env = baseEnv({ PW: "vault:secret/app#pw" });
    const result = await runEntrypoint(
      ["--supervise", "--mock", mockFile(dir, "sv-secret-1"), "--", ...command],
      { env },
    );

    expect(result.code).toBe(42);
    const report = readReport<Report>(reportPath)!;
    expect(report.pid).not.toBe(result.pid);
    expect(report.env.PW).toBe("sv-secret-1");
    expect(report.env.SECRET_ENTRYPOINT_MOCK).toBeUndefined();
    expect(
      logLines(result.stderr)
        .filter((line) => line.level === 30)
        .map((line) => line.event),
    ).toEqual(["supervise.start"]);
    expectNoLeak(result, ["sv-secret-1"]);
  });

  test("exits with 128+n when the command dies of signal n", async () => {
    const result = await runEntrypoint([
      "--supervise",
      "--log-level=error",
      "--",
      "sh",
      "-c",
      "kill -KILL $$",
    ]);

    expect(result.code).toBe(137);
  });

  test("passes SIGTERM on to the command", async () => {
    const dir = scratch();
    const ready = path.join(dir, "ready");
    const script = `trap 'exit 7' TERM; echo > ${ready}; while :; do sleep 0.05; done`;
    const { child, done } = start(
      ["--supervise", "--log-level=error", "--", "sh", "-c", script],
      baseEnv(),
    );
    await waitFor(() => fs.existsSync(ready));
    child.kill("SIGTERM");

    expect((await done).code).toBe(7);
  });

  test("never starts the command when a reference fails", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypoint(
      ["--supervise", "--mock", mockFile(dir, "x"), "--", ...command],
      {
        env: baseEnv({ PW: "vault:secret/app#nope" }),
      },
    );

    expect(result.code).toBe(66);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  test("with --refresh, restarts the command when a value changes", async () => {
    const dir = scratch();
    const mock = mockFile(dir, "sv-first");
    const seen = path.join(dir, "seen");
    const script = `echo "$$ $PW" >> ${seen}; trap 'exit 0' TERM; while :; do sleep 0.05; done`;
    const { child, done } = start(
      [
        "--supervise",
        "--refresh",
        "200ms",
        "--mock",
        mock,
        "--",
        "sh",
        "-c",
        script,
      ],
      baseEnv({ PW: "vault:secret/app#pw" }),
    );
    await waitFor(() => lines(seen).length === 1);
    mockFile(dir, "sv-second");
    await waitFor(() => lines(seen).length === 2);
    child.kill("SIGTERM");
    const result = await done;

    expect(result.code).toBe(0);
    const [first, second] = lines(seen).map((line) => line.split(" "));
    expect([first![1], second![1]]).toEqual(["sv-first", "sv-second"]);
    expect(first![0]).not.toBe(second![0]);
    expect(
      logLines(result.stderr)
        .filter((line) => line.event === "supervise.refresh")
        .map((line) => line.msg),
    ).toEqual(["values changed; restarting the command"]);
    expectNoLeak(result, ["sv-first", "sv-second"]);
  });

  test("with --refresh-signal, rewrites as=file files and signals the command instead", async () => {
    const dir = scratch();
    const mock = mockFile(dir, "sv-file-1");
    const filesDir = path.join(privateFolder(dir), "files");
    const seen = path.join(dir, "seen");
    const script = `trap 'echo "$$ $(cat "$KEY")" >> ${seen}' HUP; trap 'exit 0' TERM; echo "$$ $(cat "$KEY")" >> ${seen}; while :; do sleep 0.05; done`;
    const { child, done } = start(
      [
        "--supervise",
        "--refresh",
        "200ms",
        "--refresh-signal",
        "HUP",
        "--files-dir",
        filesDir,
        "--mock",
        mock,
        "--",
        "sh",
        "-c",
        script,
      ],
      baseEnv({ KEY: "vault:secret/app?as=file#pw" }),
    );
    await waitFor(() => lines(seen).length === 1);
    mockFile(dir, "sv-file-2");
    await waitFor(() => lines(seen).length === 2);
    child.kill("SIGTERM");
    expect((await done).code).toBe(0);

    const [first, second] = lines(seen).map((line) => line.split(" "));
    expect([first![1], second![1]]).toEqual(["sv-file-1", "sv-file-2"]);
    expect(first![0]).toBe(second![0]);
  });
});

describe("--supervise and signals while the command starts", () => {
  test("the bundle runs itself again with --disable-sigusr1, so SIGUSR1 opens no debugger", async () => {
    const dir = scratch();
    const ready = path.join(dir, "ready");
    const script = `echo > ${ready}; trap 'exit 0' TERM; while :; do sleep 0.05; done`;
    const { child, done } = start(
      ["--supervise", "--log-level=error", "--", "sh", "-c", script],
      baseEnv(),
    );
    await waitFor(() => fs.existsSync(ready));
    const cmdline = fs
      .readFileSync(`/proc/${child.pid}/cmdline`, "latin1")
      .split("\u0000");
    child.kill("SIGTERM");

    expect((await done).code).toBe(0);
    expect(cmdline).toContain("--disable-sigusr1");
  });
});

describe("--supervise --refresh, when things go wrong", () => {
  test("a round whose files cannot be written is tried again", async () => {
    const dir = scratch();
    const mock = mockFile(dir, "sv-retry-1");
    const filesDir = path.join(privateFolder(dir), "files");
    const seen = path.join(dir, "seen");
    const script = `trap 'echo "$(cat "$KEY")" >> ${seen}' HUP; trap 'exit 0' TERM; while :; do sleep 0.05; done`;
    const { child, done } = start(
      [
        "--supervise",
        "--refresh",
        "150ms",
        "--refresh-signal",
        "HUP",
        "--files-dir",
        filesDir,
        "--mock",
        mock,
        "--",
        "sh",
        "-c",
        script,
      ],
      baseEnv({ KEY: "vault:secret/app?as=file#pw" }),
    );
    await waitFor(() => fs.existsSync(path.join(filesDir, "KEY")));
    const junk = path.join(filesDir, "junk.txt");
    fs.writeFileSync(junk, "not ours");
    mockFile(dir, "sv-retry-2");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(lines(seen)).toEqual([]);
    fs.rmSync(junk);
    await waitFor(() => lines(seen).length === 1);
    child.kill("SIGTERM");
    const result = await done;

    expect(lines(seen)).toEqual(["sv-retry-2"]);
    expect(
      logLines(result.stderr).some((line) => line.event === "refresh.error"),
    ).toBe(true);
  });

  test("a command that survives SIGINT is still restarted on a change", async () => {
    const dir = scratch();
    const mock = mockFile(dir, "sv-int-1");
    const seen = path.join(dir, "seen");
    const script = `echo "$PW" >> ${seen}; trap '' INT; trap 'exit 0' TERM; while :; do sleep 0.05; done`;
    const { child, done } = start(
      [
        "--supervise",
        "--refresh",
        "150ms",
        "--mock",
        mock,
        "--",
        "sh",
        "-c",
        script,
      ],
      baseEnv({ PW: "vault:secret/app#pw" }),
    );
    await waitFor(() => lines(seen).length === 1);
    child.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 300));
    mockFile(dir, "sv-int-2");
    await waitFor(() => lines(seen).length === 2);
    child.kill("SIGTERM");

    expect((await done).code).toBe(0);
    expect(lines(seen)).toEqual(["sv-int-1", "sv-int-2"]);
  });
});

describe("the files folder's parent", () => {
  test("one that other users may rename in is refused", async () => {
    const dir = scratch();
    const mock = mockFile(dir, "sv-parent");
    const result = await runEntrypoint(
      ["--mock", mock, "--files-dir", path.join(dir, "files"), "--", "true"],
      {
        env: baseEnv({ KEY: "vault:secret/app?as=file#pw" }),
      },
    );

    expect(result.code).toBe(78);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `cannot write secret files into ${path.join(dir, "files")}: ${dir} is writable by other users and not sticky, so they could swap what is below it; set SECRET_ENTRYPOINT_FILES_DIR to a folder of its own on an in-memory file system, such as /dev/shm/secret-entrypoint`,
    );
  });
});

describe.skipIf(!isRoot)("--supervise --user", () => {
  beforeAll(ensureAccounts);

  test("the command gets the user's uid, gid and supplementary groups", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const { app, extra, more } = accounts;
    const result = await runEntrypoint([
      "--supervise",
      "--user",
      app.name,
      "--",
      ...command,
    ]);

    expect(result.code).toBe(0);
    const report = readReport<Report>(reportPath)!;
    expect([report.uid, report.gid, report.groups, report.env.HOME]).toEqual([
      app.uid,
      app.gid,
      [app.gid, extra.gid, more.gid],
      app.home,
    ]);
  });
});
