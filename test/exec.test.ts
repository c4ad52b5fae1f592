/**
 * Exec mode through the built bundle: the command becomes the process, with
 * exactly the environment it should have, clean signal state and its own
 * exit code; and it never starts when a reference fails.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import { describe, expect, test } from "vitest";

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

const scratch = scratchFolders("exec");
const secrets = ["s3cr3t-db-password", "jwt-0a9f8e7d", "line one\nline two"];

function mockFile(dir: string) {
  const file = path.join(dir, "mock.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      "vault:secret/app": { password: secrets[0], port: 5432 },
      "awssm:prod/jwt": secrets[1],
      "vault:secret/pem": { key: secrets[2] },
    }),
  );
  return file;
}

describe("the command", () => {
  test("keeps the entrypoint's pid and gets exactly the expected environment", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const env = baseEnv({
      HOME: "/root",
      DB_PASSWORD: "vault:secret/app#password",
      DATABASE_URL:
        "postgres://app:${vault:secret/app#password}@db:${vault:secret/app#port}/app",
      JWT: "awssm:prod/jwt",
      PEM: "vault:secret/pem#key",
      PLAIN: "unchanged",
      SQLITE: "file:./dev.db",
      SECRET_ENTRYPOINT_MOCK: mockFile(dir),
      SECRET_ENTRYPOINT_KEEP_ENV: "VAULT_NAMESPACE",
      SECRET_ENTRYPOINT_LOG_LEVEL: "warn",
      VAULT_ADDR: "https://vault.example:8200",
      VAULT_TOKEN: "hvs.should-not-travel",
      VAULT_NAMESPACE: "team-a",
      AWS_REGION: "eu-west-1",
    });
    const result = await runEntrypoint(["--", ...command], { env });

    expect(result.code).toBe(0);
    const report = readReport<Report>(reportPath)!;
    expect(report.pid).toBe(result.pid);
    expect(report.env).toEqual({
      PATH: env.PATH,
      HOME: "/root",
      DB_PASSWORD: secrets[0],
      DATABASE_URL: `postgres://app:${secrets[0]}@db:5432/app`,
      JWT: secrets[1],
      PEM: secrets[2],
      PLAIN: "unchanged",
      SQLITE: "file:./dev.db",
      VAULT_NAMESPACE: "team-a",
      AWS_REGION: "eu-west-1",
    });
    expectNoLeak(result, [...secrets, "hvs.should-not-travel"]);
  });

  // Not the Node fixture: Node ignores SIGPIPE and SIGXFSZ itself.
  test("sees no blocked and no ignored signals", async () => {
    const result = await runEntrypoint([
      "--log-level=error",
      "grep",
      "-E",
      "^Sig(Blk|Ign):",
      "/proc/self/status",
    ]);

    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
    );
  });

  test("takes a signal as its own: SIGTERM ends it with that signal", async () => {
    const dir = scratch();
    const ready = path.join(dir, "ready");
    const script = `echo > ${ready}; exec sleep 30`;
    const run = runEntrypoint([
      "--log-level",
      "error",
      "--",
      "sh",
      "-c",
      script,
    ]);
    await waitFor(() => fs.existsSync(ready));
    const pid = Number(
      fs.readdirSync("/proc").find((entry) => isSleepOf(entry, ready)),
    );
    process.kill(pid, "SIGTERM");
    const result = await run;

    expect(result.pid).toBe(pid);
    expect(result.signal).toBe("SIGTERM");
  });

  test("gets its arguments unchanged, options after the command included", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypoint([
      "--log-level=error",
      ...command,
      "0",
      "--user",
      "x",
      "--",
      "${vault:a}",
    ]);

    expect(result.code).toBe(0);
    expect(readReport<Report>(reportPath)!.argv).toEqual([
      reportPath,
      "0",
      "--user",
      "x",
      "--",
      "${vault:a}",
    ]);
  });
});

function isSleepOf(entry: string, ready: string) {
  if (!/^\d+$/.test(entry)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
    return cmdline.startsWith("sleep\u000030") || cmdline.includes(ready);
  } catch {
    return false;
  }
}

describe("exit codes", () => {
  test("0 to 255 of the command pass through unchanged", async () => {
    const codes = Array.from({ length: 256 }, (_, code) => code);
    const seen: number[] = [];
    for (let start = 0; start < codes.length; start += 16) {
      const batch = codes.slice(start, start + 16);
      const results = await Promise.all(
        batch.map((code) =>
          runEntrypoint(["--log-level", "error", "sh", "-c", `exit ${code}`]),
        ),
      );
      seen.push(...results.map((result) => result.code!));
    }
    expect(seen).toEqual(codes);
  });

  test.each([
    [
      "a command not on PATH",
      ["no-such-command-xyz"],
      127,
      "command not found: no-such-command-xyz (searched PATH=",
    ],
    [
      "a path that does not exist",
      ["/nonexistent/tool"],
      127,
      "command not found: /nonexistent/tool does not exist",
    ],
    ["a folder", ["/tmp"], 126, "cannot run /tmp: it is a folder"],
    ["an empty command", [""], 127, "the command is an empty string"],
  ])("%s", async (_name, command, code, message) => {
    const result = await runEntrypoint(["--", ...command]);

    expect(result.code).toBe(code);
    expect(logLines(result.stderr).at(-1)!.msg).toContain(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  test("126 for a file without execute permission, a text file and a bad interpreter", async () => {
    const dir = scratch();
    const cases = {
      "not-executable": [
        "#!/bin/sh\necho hi\n",
        0o644,
        "permission denied for uid",
      ],
      "no-format": [
        "echo hi\n",
        0o755,
        "it is neither a program (ELF) nor a script starting with #!",
      ],
      "bad-interpreter": [
        "#!/nonexistent/sh\necho hi\n",
        0o755,
        'its interpreter "/nonexistent/sh" on the #! line does not exist or cannot be run',
      ],
    } as const;
    for (const [name, [content, mode, message]] of Object.entries(cases)) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, content, { mode });
      const result = await runEntrypoint(["--", file]);

      expect(result.code, name).toBe(126);
      expect(logLines(result.stderr).at(-1)!.msg).toBe(
        `cannot run ${file}: ${message}` +
          (name === "not-executable"
            ? " 0 (check its mode and mount options)"
            : ""),
      );
    }
  });

  test("an executable later on PATH is found after a non-executable one", async () => {
    const dir = scratch();
    const first = path.join(dir, "a");
    const second = path.join(dir, "b");
    fs.mkdirSync(first);
    fs.mkdirSync(second);
    fs.writeFileSync(path.join(first, "tool"), "#!/bin/sh\nexit 3\n", {
      mode: 0o644,
    });
    fs.writeFileSync(path.join(second, "tool"), "#!/bin/sh\nexit 4\n", {
      mode: 0o755,
    });
    const env = baseEnv({ PATH: `${first}:${second}:/usr/bin:/bin` });
    const result = await runEntrypoint(["--log-level", "error", "tool"], {
      env,
    });

    expect(result.code).toBe(4);
  });

  test("no command at all is a usage error", async () => {
    const result = await runEntrypoint([]);

    expect(result.code).toBe(64);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      "no command given; usage: secret-entrypoint [options] [--] command [args...] (see --help)",
    );
  });
});

describe("a reference that cannot be resolved", () => {
  const cases = [
    [
      "a key missing from the secret",
      { DB: "vault:secret/app#pasword" },
      66,
      'failed to resolve DB from vault:secret/app#pasword: the secret has no key "pasword"; its keys are "password", "port"',
    ],
    [
      "a secret missing from the mock",
      { DB: "vault:secret/nothere#password" },
      66,
      'failed to resolve DB from vault:secret/nothere#password: the mock file MOCK has no entry "vault:secret/nothere"; add it',
    ],
    [
      "a malformed reference",
      { DB: "vault:secret/app?versoin=2#password" },
      65,
      'DB: malformed reference vault:secret/app?versoin=2#password: unknown option "versoin"; vault references take optional, as, encoding, version',
    ],
    [
      "a selector on a text secret",
      { JWT: "awssm:prod/jwt#key" },
      65,
      "failed to resolve JWT from awssm:prod/jwt#key: the secret is not JSON, so a selector cannot apply",
    ],
    [
      "a value that is not base64",
      { JWT: "awssm:prod/jwt?encoding=base64" },
      65,
      "failed to resolve JWT from awssm:prod/jwt?encoding=base64: the value is not valid base64 (encoding=base64)",
    ],
    [
      "one bad reference among good ones",
      { A: "vault:secret/app#password", DB: "${vault:secret/app#nope}" },
      66,
      'failed to resolve DB from vault:secret/app#nope: the secret has no key "nope"; its keys are "password", "port"',
    ],
  ] as const;

  test.each(cases)(
    "%s: the command never runs",
    async (_name, variables, code, message) => {
      const dir = scratch();
      const mock = mockFile(dir);
      const { command, reportPath } = reportCommand(dir);
      const env = baseEnv({ ...variables, SECRET_ENTRYPOINT_MOCK: mock });
      const result = await runEntrypoint(["--", ...command], { env });

      expect(result.code).toBe(code);
      expect(fs.existsSync(reportPath)).toBe(false);
      const errors = logLines(result.stderr).filter(
        (line) => line.level === 50,
      );
      expect(errors.map((line) => line.msg)).toEqual([
        message.replace("MOCK", mock),
      ]);
      expectNoLeak(result, secrets);
    },
  );

  test("optional=true leaves the variable unset, with a warning", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const env = baseEnv({
      DB: "vault:secret/nothere?optional=true#password",
      KEY: "vault:secret/app?optional=true#nokey",
      SECRET_ENTRYPOINT_MOCK: mockFile(dir),
    });
    const result = await runEntrypoint(["--", ...command], { env });

    expect(result.code).toBe(0);
    const report = readReport<Report>(reportPath)!;
    expect(report.env.DB).toBeUndefined();
    expect(report.env.KEY).toBeUndefined();
    const warnings = logLines(result.stderr).filter(
      (line) => line.event === "resolve.optional",
    );
    expect(warnings.map((line) => line.variable).sort()).toEqual(["DB", "KEY"]);
  });
});

describe("values that the environment cannot carry", () => {
  test("a NUL byte is refused with a hint to use as=file", async () => {
    const dir = scratch();
    const mock = path.join(dir, "mock.yaml");
    fs.writeFileSync(mock, 'vault:secret/bin: { blob: "AAEC" }\n');
    const { command, reportPath } = reportCommand(dir);
    const env = baseEnv({
      BLOB: "vault:secret/bin?encoding=base64#blob",
      SECRET_ENTRYPOINT_MOCK: mock,
    });
    const result = await runEntrypoint(["--", ...command], { env });

    expect(result.code).toBe(65);
    expect(fs.existsSync(reportPath)).toBe(false);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      "the value of BLOB from vault:secret/bin?encoding=base64#blob holds a NUL byte, which the environment cannot carry; add the option as=file to the reference to get it as a file",
    );
  });

  test("as=file writes the bytes into a 0400 file and the variable holds its path", async () => {
    const dir = scratch();
    const mock = path.join(dir, "mock.yaml");
    fs.writeFileSync(mock, 'vault:secret/bin: { blob: "AAEC/w==" }\n');
    const filesDir = path.join(privateFolder(dir), "files");
    const { command, reportPath } = reportCommand(dir);
    const env = baseEnv({
      BLOB: "vault:secret/bin?encoding=base64&as=file#blob",
      SECRET_ENTRYPOINT_MOCK: mock,
      SECRET_ENTRYPOINT_FILES_DIR: filesDir,
    });
    const result = await runEntrypoint(["--", ...command], { env });

    expect(result.code).toBe(0);
    const file = path.join(filesDir, "BLOB");
    expect(readReport<Report>(reportPath)!.env.BLOB).toBe(file);
    expect([...fs.readFileSync(file)]).toEqual([0, 1, 2, 255]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o400);
    expect(fs.statSync(filesDir).mode & 0o777).toBe(0o710);
  });

  test("a variable over 128 KiB is refused and named", async () => {
    const dir = scratch();
    const mock = path.join(dir, "mock.json");
    fs.writeFileSync(
      mock,
      JSON.stringify({ "vault:secret/big": { cert: "x".repeat(140_000) } }),
    );
    const { command, reportPath } = reportCommand(dir);
    const env = baseEnv({
      CERT: "vault:secret/big#cert",
      SECRET_ENTRYPOINT_MOCK: mock,
    });
    const result = await runEntrypoint(["--", ...command], { env });

    expect(result.code).toBe(65);
    expect(fs.existsSync(reportPath)).toBe(false);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      "CERT cannot be passed to the command: it is 140006 bytes, more than the 131072 bytes execve accepts for one variable; use the option as=file for large or binary values",
    );
  });

  test("an environment over 2 MiB in all is refused, naming the largest variables", async () => {
    const dir = scratch();
    const mock = path.join(dir, "mock.json");
    const entries = Object.fromEntries(
      Array.from({ length: 20 }, (_, index) => [
        `vault:secret/part${index}`,
        { v: "y".repeat(120_000) },
      ]),
    );
    fs.writeFileSync(mock, JSON.stringify(entries));
    const variables = Object.fromEntries(
      Array.from({ length: 20 }, (_, index) => [
        `PART${String(index).padStart(2, "0")}`,
        `vault:secret/part${index}#v`,
      ]),
    );
    const result = await runEntrypoint(["--", "true"], {
      env: baseEnv({ ...variables, SECRET_ENTRYPOINT_MOCK: mock }),
    });

    expect(result.code).toBe(65);
    expect(logLines(result.stderr).at(-1)!.msg).toMatch(
      /^the command line and environment take \d+ bytes, more than the 2097152 bytes execve accepts here \(a quarter of the stack limit\); the largest variables are PART00 \(120008 bytes\), PART01 \(120008 bytes\), PART02 \(120008 bytes\); use the option as=file for large values$/,
    );
  });
});

describe("what execve would refuse is found first", () => {
  test.each([
    [
      "garbage after an ELF header",
      "fake-elf",
      Buffer.from("\x7fELFgarbage-garbage-garbage", "latin1"),
      "it is a program for another machine or word size (this is x64)",
    ],
    [
      "an ELF program for another machine",
      "arm-elf",
      armElf(),
      "it is a program for another machine or word size (this is x64)",
    ],
    [
      "a script whose interpreter is a text file",
      "nested",
      "#!INTERPRETER\necho\n",
      'its interpreter "INTERPRETER" on the #! line cannot be run: cannot run INTERPRETER: it is neither a program (ELF) nor a script starting with #!',
    ],
  ])("%s is 126, not an abort", async (_name, fileName, content, message) => {
    const dir = scratch();
    const interpreter = path.join(dir, "no-shebang.sh");
    fs.writeFileSync(interpreter, "echo hi\n", { mode: 0o755 });
    const file = path.join(dir, fileName);
    const text =
      typeof content === "string"
        ? content.replaceAll("INTERPRETER", interpreter)
        : content;
    fs.writeFileSync(file, text, { mode: 0o755 });
    const result = await runEntrypoint(["--", file]);

    expect(result.code).toBe(126);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `cannot run ${file}: ${message.replaceAll("INTERPRETER", interpreter)}`,
    );
    expect(result.stderr).not.toContain("process.execve failed");
  });

  test("a script whose interpreter is a script runs", async () => {
    const dir = scratch();
    const inner = path.join(dir, "inner");
    fs.writeFileSync(inner, "#!/bin/sh\nexit 7\n", { mode: 0o755 });
    const outer = path.join(dir, "outer");
    fs.writeFileSync(outer, `#!${inner}\n`, { mode: 0o755 });
    const result = await runEntrypoint(["--log-level=error", "--", outer]);

    expect(result.code).toBe(7);
  });

  test("the size limit follows the stack limit, as the kernel's does", async () => {
    const dir = scratch();
    const mock = path.join(dir, "mock.json");
    fs.writeFileSync(
      mock,
      JSON.stringify({
        "vault:secret/a": { v: "z".repeat(100_000) },
        "vault:secret/b": { v: "z".repeat(100_000) },
        "vault:secret/c": { v: "z".repeat(100_000) },
      }),
    );
    const env = baseEnv({
      A: "vault:secret/a#v",
      B: "vault:secret/b#v",
      C: "vault:secret/c#v",
      SECRET_ENTRYPOINT_MOCK: mock,
    });
    // A 1 MiB stack allows 256 KiB of arguments and environment.
    const result = await runEntrypoint(["--", "true"], {
      env,
      wrapper: ["prlimit", "--stack=1048576", "--"],
    });

    expect(result.code).toBe(65);
    expect(logLines(result.stderr).at(-1)!.msg).toMatch(
      /^the command line and environment take \d+ bytes, more than the 262144 bytes execve accepts here \(a quarter of the stack limit\); the largest variables are A \(100003 bytes\), B \(100003 bytes\), C \(100003 bytes\); use the option as=file for large values$/,
    );
  });
});

// /bin/true with its e_machine changed to aarch64 (183).
function armElf(): Buffer {
  const program = fs.readFileSync("/bin/true");
  program.writeUInt16LE(183, 18);
  return program;
}

describe("the files folder", () => {
  test("an existing folder that is not one the entrypoint made is refused", async () => {
    const dir = scratch();
    const existing = path.join(privateFolder(dir), "existing");
    fs.mkdirSync(existing, { mode: 0o755 });
    const mock = path.join(dir, "mock.yaml");
    fs.writeFileSync(mock, "vault:secret/app: { pw: file-secret-1 }\n");
    const env = baseEnv({
      A: "vault:secret/app?as=file#pw",
      SECRET_ENTRYPOINT_MOCK: mock,
      SECRET_ENTRYPOINT_FILES_DIR: existing,
    });
    const result = await runEntrypoint(["--", "true"], { env });

    expect(result.code).toBe(78);
    expect(fs.statSync(existing).mode & 0o777).toBe(0o755);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `cannot write secret files into ${existing}: it exists with mode 0755, so it is not a folder an earlier start made (those are 0710); set SECRET_ENTRYPOINT_FILES_DIR to a folder of its own on an in-memory file system, such as /dev/shm/secret-entrypoint`,
    );
  });

  test("a link is not followed, and files of an earlier start are removed", async () => {
    const dir = scratch();
    const target = path.join(privateFolder(dir), "target");
    fs.mkdirSync(target, { mode: 0o710 });
    const link = path.join(privateFolder(dir), "link");
    fs.symlinkSync(target, link);
    const mock = path.join(dir, "mock.yaml");
    fs.writeFileSync(mock, "vault:secret/app: { pw: file-secret-2 }\n");
    const viaLink = await runEntrypoint(["--", "true"], {
      env: baseEnv({
        A: "vault:secret/app?as=file#pw",
        SECRET_ENTRYPOINT_MOCK: mock,
        SECRET_ENTRYPOINT_FILES_DIR: link,
      }),
    });
    expect(viaLink.code).toBe(78);
    expect(logLines(viaLink.stderr).at(-1)!.msg).toContain(
      "it exists and is not a folder (a symbolic link is not followed)",
    );

    fs.writeFileSync(path.join(target, "OLD"), "stale-secret", { mode: 0o400 });
    const result = await runEntrypoint(["--log-level=error", "--", "true"], {
      env: baseEnv({
        A: "vault:secret/app?as=file#pw",
        SECRET_ENTRYPOINT_MOCK: mock,
        SECRET_ENTRYPOINT_FILES_DIR: target,
      }),
    });
    expect(result.code).toBe(0);
    expect(fs.readdirSync(target)).toEqual(["A"]);
  });
});

describe("the runtime and the environment file", () => {
  const oldNode = ["/usr/bin/node", "/usr/local/bin/node"].find((file) => {
    if (!fs.existsSync(file)) return false;
    const [major, minor] = execFileSync(file, ["-p", "process.versions.node"], {
      encoding: "utf8",
    })
      .split(".")
      .map(Number);
    return major! < 22 || (major === 22 && minor! < 15);
  });

  test.skipIf(oldNode === undefined)(
    "a Node without process.execve is exit 78 with advice",
    async () => {
      const result = await runEntrypoint(["--", "true"], { node: oldNode! });

      expect(result.code).toBe(78);
      expect(logLines(result.stderr).at(-1)!.msg).toMatch(
        /^secret-entrypoint needs Node >= 22\.15 for process\.execve, and this is Node v\d+\.\d+\.\d+; use the single executable dist\/secret-entrypoint, or a newer Node$/,
      );
    },
  );

  test("a NUL byte in the env file is refused with its line", async () => {
    const dir = scratch();
    const file = path.join(dir, "secrets.env");
    fs.writeFileSync(file, "A='one'\nB='x\u0000planted-nul-secret'\n");
    const result = await runEntrypoint(["--env-from", file, "--", "true"]);

    expect(result.code).toBe(65);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `failed to read env file ${file}: line 2: a NUL byte, which no variable can hold`,
    );
    expectNoLeak(result, ["planted-nul-secret"]);
  });
});

describe("SIGUSR1", () => {
  test("does not open Node's debugger in a long-running render", async () => {
    const dir = scratch();
    const mock = path.join(dir, "mock.yaml");
    fs.writeFileSync(mock, "vault:secret/app: { pw: usr1-secret }\n");
    const out = path.join(dir, "out");
    const { child, output, done } = startEntrypoint(
      ["--render", out, "--refresh", "1h", "--mock", mock],
      { env: baseEnv({ PW: "vault:secret/app#pw" }) },
    );
    await waitFor(() => fs.existsSync(path.join(out, "PW")));

    child.kill("SIGUSR1");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(child.exitCode).toBeNull();
    child.kill("SIGTERM");

    expect((await done).code).toBe(0);
    expect(output.stderr).not.toContain("Debugger listening");
  });
});

describe("folders and files that cannot serve", () => {
  test.each([
    [
      ["--render", "/proc/no-such/dir"],
      78,
      "cannot render into /proc/no-such/dir: its parent folder does not exist; give --render an existing folder, or a new one in an existing folder",
    ],
    [
      ["--render", "/etc/hostname"],
      78,
      "cannot render into /etc/hostname: it exists and is not a folder; give --render an existing folder, or a new one in an existing folder",
    ],
    [
      ["--env-from", "/dev/urandom", "--", "true"],
      78,
      "cannot read the env file /dev/urandom: it is not a regular file of at most 8 MiB; check --env-from (SECRET_ENTRYPOINT_ENV_FROM)",
    ],
  ])("%j", async (args, code, message) => {
    const result = await runEntrypoint(args, {
      env: baseEnv({ A: "file:/run/secrets/none?optional=true" }),
      timeoutMs: 10_000,
    });

    expect(result.code).toBe(code);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(message);
  });

  test("an env file cannot hold the entrypoint's settings", async () => {
    const file = path.join(scratch(), "settings.env");
    fs.writeFileSync(file, "SECRET_ENTRYPOINT_USER='nobody'\n");
    const result = await runEntrypoint(["--env-from", file, "--", "true"]);

    expect(result.code).toBe(64);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `${file} sets SECRET_ENTRYPOINT_USER, but an env file cannot hold the entrypoint's or Vault's settings; set it in the container's environment or on the command line`,
    );
  });

  test("settings are not scanned for references: VAULT_ADDR=vault:8200 is no reference", async () => {
    const result = await runEntrypoint(["--check"], {
      env: baseEnv({ VAULT_ADDR: "vault:8200" }),
    });

    expect(result.code).toBe(0);
    expect(result.stdout).toBe("no references found\n");
  });
});

describe("the files folder and names", () => {
  function mockWith(dir: string) {
    const mock = path.join(dir, "mock.yaml");
    fs.writeFileSync(mock, "vault:secret/app: { pw: folder-secret-3 }\n");
    return mock;
  }

  test("a 0710 folder that holds files no start wrote is refused and left alone", async () => {
    const dir = scratch();
    const home = path.join(privateFolder(dir), "home");
    fs.mkdirSync(home, { mode: 0o700 });
    fs.chmodSync(home, 0o710);
    fs.writeFileSync(path.join(home, ".bashrc"), "# shell settings\n");
    const result = await runEntrypoint(["--", "true"], {
      env: baseEnv({
        A: "vault:secret/app?as=file#pw",
        SECRET_ENTRYPOINT_MOCK: mockWith(dir),
        SECRET_ENTRYPOINT_FILES_DIR: home,
      }),
    });

    expect(result.code).toBe(78);
    expect(fs.readdirSync(home)).toEqual([".bashrc"]);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `cannot write secret files into ${home}: it holds .bashrc, which an earlier start did not write; set SECRET_ENTRYPOINT_FILES_DIR to a folder of its own on an in-memory file system, such as /dev/shm/secret-entrypoint`,
    );
  });

  test("an as=file variable whose name is a path is refused", async () => {
    const dir = scratch();
    const victim = path.join(dir, "victim");
    fs.writeFileSync(victim, "keep me\n");
    const result = await runEntrypoint(["--", "true"], {
      env: baseEnv({
        "../victim": "vault:secret/app?as=file#pw",
        SECRET_ENTRYPOINT_MOCK: mockWith(dir),
        SECRET_ENTRYPOINT_FILES_DIR: path.join(privateFolder(dir), "files"),
      }),
    });

    expect(result.code).toBe(65);
    expect(fs.readFileSync(victim, "utf8")).toBe("keep me\n");
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      "../victim cannot take a value as a file (as=file), since its name is used as the file's name: use a name of letters, digits and _ that does not start with a digit",
    );
    expectNoLeak(result, ["folder-secret-3"]);
  });

  test("NODE_DEBUG is refused: Node would print request headers", async () => {
    const result = await runEntrypoint(["--", "true"], {
      env: baseEnv({ NODE_DEBUG: "net" }),
    });

    expect(result.code).toBe(78);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      "NODE_DEBUG is set, and it would make Node print the entrypoint's requests, credentials included; unset it, or set it for the command alone: secret-entrypoint -- env NODE_DEBUG=... COMMAND",
    );
  });

  test("an env file cannot set Vault's settings either", async () => {
    const file = path.join(scratch(), "vault.env");
    fs.writeFileSync(file, "VAULT_ADDR='https://elsewhere.example'\n");
    const result = await runEntrypoint(["--env-from", file, "--", "true"]);

    expect(result.code).toBe(64);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `${file} sets VAULT_ADDR, but an env file cannot hold the entrypoint's or Vault's settings; set it in the container's environment or on the command line`,
    );
  });
});
