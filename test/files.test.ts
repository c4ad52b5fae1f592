/**
 * file: references and the NAME_FILE convention through the bundle, with a
 * scratch folder as an extra file root.
 */
import { execFileSync } from "node:child_process";
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
  type Report,
} from "./support/run.ts";
import { readReport, scratchFolders } from "./support/scratch.ts";

const scratch = scratchFolders("files");
const pem = "-----BEGIN KEY-----\nMIIBVQIBADANBgkq\n-----END KEY-----";

function secretsRoot() {
  const root = path.join(scratch(), "secrets");
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, "db_password"), "pa55word\n\n");
  fs.writeFileSync(path.join(root, "pem"), `${pem}\n`);
  fs.writeFileSync(path.join(root, "crlf"), "value\r\n");
  fs.writeFileSync(
    path.join(root, "app.json"),
    '{"db":{"password":"nested-pw","port":5432,"big":12345678901234567890}}\n',
  );
  fs.writeFileSync(path.join(root, "binary"), Buffer.from([0xff, 0x00, 0x01]));
  return root;
}

async function runWith(
  root: string,
  variables: Record<string, string>,
  extra: string[] = [],
) {
  const dir = path.dirname(root);
  const { command, reportPath } = reportCommand(dir);
  const env = baseEnv({ SECRET_ENTRYPOINT_FILE_ROOTS: root, ...variables });
  const result = await runEntrypoint([...extra, "--", ...command], { env });
  return { result, report: readReport<Report>(reportPath), reportPath };
}

describe("file references", () => {
  test("read files byte for byte, less trailing newlines, with selectors", async () => {
    const root = secretsRoot();
    const { result, report } = await runWith(root, {
      DB: `file:${root}/db_password`,
      PEM: `file:${root}/pem`,
      CRLF: `file:${root}/crlf`,
      NESTED: `file:${root}/app.json#/db/password`,
      PORT: `file:${root}/app.json#/db/port`,
      BIG: `file:${root}/app.json#/db/big`,
      URL: `postgres://app:\${file:${root}/db_password}@db/app`,
    });

    expect(result.code).toBe(0);
    expect(report!.env).toMatchObject({
      DB: "pa55word",
      PEM: pem,
      CRLF: "value\r",
      NESTED: "nested-pw",
      PORT: "5432",
      BIG: "12345678901234567890",
      URL: "postgres://app:pa55word@db/app",
    });
    expectNoLeak(result, ["pa55word", "nested-pw", "MIIBVQIBADANBgkq"]);
  });

  test("SECRET_ENTRYPOINT_FILE_TRIM=false keeps trailing newlines", async () => {
    const root = secretsRoot();
    const { report } = await runWith(root, {
      DB: `file:${root}/db_password`,
      SECRET_ENTRYPOINT_FILE_TRIM: "false",
    });

    expect(report!.env.DB).toBe("pa55word\n\n");
  });

  test("a Kubernetes-style link inside the roots is followed", async () => {
    const root = secretsRoot();
    fs.mkdirSync(path.join(root, "..2026_12_03"));
    fs.writeFileSync(path.join(root, "..2026_12_03", "token"), "linked-value");
    fs.symlinkSync("..2026_12_03", path.join(root, "..data"));
    fs.symlinkSync("..data/token", path.join(root, "token"));
    const { result, report } = await runWith(root, {
      TOKEN: `file:${root}/token`,
    });

    expect(result.code).toBe(0);
    expect(report!.env.TOKEN).toBe("linked-value");
  });

  test.each([
    [
      "a missing file",
      "missing",
      66,
      (root: string) =>
        `failed to resolve V from file:${root}/missing: file ${root}/missing does not exist; check the secret's mount`,
    ],
    [
      "a folder",
      "sub",
      65,
      (root: string) =>
        `failed to resolve V from file:${root}/sub: ${root}/sub is a folder, not a file`,
    ],
    [
      "a link that leaves the roots",
      "escape",
      77,
      (root: string) =>
        `failed to resolve V from file:${root}/escape: file ${root}/escape leads to /etc/hostname, outside the file roots; refusing to read it`,
    ],
    [
      "a FIFO (a read would wait forever)",
      "fifo",
      65,
      (root: string) =>
        `failed to resolve V from file:${root}/fifo: ${root}/fifo is not a regular file (a FIFO, socket or device); a secret file must be a plain file`,
    ],
    [
      "binary content",
      "binary",
      65,
      (root: string) =>
        `the value of V from file:${root}/binary holds a NUL byte, which the environment cannot carry; add the option as=file to the reference to get it as a file`,
    ],
    [
      "a selector on text",
      "db_password#key",
      65,
      (root: string) =>
        `failed to resolve V from file:${root}/db_password#key: the secret is not JSON, so a selector cannot apply`,
    ],
    [
      "a missing JSON key",
      "app.json#/db/user",
      66,
      (root: string) =>
        `failed to resolve V from file:${root}/app.json#/db/user: the secret has no key "user" at /db; its keys at /db are "password", "port", "big"`,
    ],
    [
      "a pointer through a number",
      "app.json#/db/port/x",
      65,
      (root: string) =>
        `failed to resolve V from file:${root}/app.json#/db/port/x: the secret has no object at /db/port to select "x" from`,
    ],
  ])(
    "%s fails and the command never runs",
    async (_name, file, code, message) => {
      const root = secretsRoot();
      fs.mkdirSync(path.join(root, "sub"));
      fs.symlinkSync("/etc/hostname", path.join(root, "escape"));
      execFileSync("mkfifo", [path.join(root, "fifo")]);
      const { result, report } = await runWith(root, {
        V: `file:${root}/${file}`,
      });

      expect(result.code).toBe(code);
      expect(report).toBeUndefined();
      expect(logLines(result.stderr).at(-1)!.msg).toBe(message(root));
    },
  );

  test("a path outside the roots is not a reference and passes on unchanged, with a warning", async () => {
    const root = secretsRoot();
    const { result, report } = await runWith(root, {
      DB_URL: "file:/data/app.db?mode=ro",
    });

    expect(result.code).toBe(0);
    expect(report!.env.DB_URL).toBe("file:/data/app.db?mode=ro");
    expect(
      logLines(result.stderr).find((line) => line.event === "reference.skipped")
        ?.variable,
    ).toBe("DB_URL");
  });

  test("'..' that climbs out of a root is refused", async () => {
    const root = secretsRoot();
    const { result, report } = await runWith(root, {
      V: `file:${root}/../../etc/hostname`,
    });

    expect(result.code).toBe(65);
    expect(report).toBeUndefined();
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `V: malformed reference file:${root}/../../etc/hostname: the path is not a plain absolute path inside the file roots (/run/secrets, ${root})`,
    );
  });

  test.skipIf(!isRoot)(
    "a file the entrypoint's user cannot read is exit 77",
    async () => {
      ensureAccounts();
      const root = secretsRoot();
      fs.chmodSync(path.join(root, "db_password"), 0o600);
      const dir = path.dirname(root);
      const { command, reportPath } = reportCommand(dir);
      const result = await runEntrypoint(["--", ...command], {
        uid: accounts.other.uid,
        gid: accounts.other.gid,
        env: baseEnv({
          SECRET_ENTRYPOINT_FILE_ROOTS: root,
          DB: `file:${root}/db_password`,
        }),
      });

      expect(result.code).toBe(77);
      expect(fs.existsSync(reportPath)).toBe(false);
      expect(logLines(result.stderr).at(-1)!.msg).toBe(
        `failed to resolve DB from file:${root}/db_password: file ${root}/db_password is not readable by uid ${accounts.other.uid}; check its mode and owner`,
      );
    },
  );

  test.skipIf(!isRoot)("files are read before the privilege drop", async () => {
    ensureAccounts();
    const root = secretsRoot();
    fs.chmodSync(path.join(root, "db_password"), 0o600);
    const { result, report } = await runWith(
      root,
      { DB: `file:${root}/db_password` },
      ["--user", accounts.app.name],
    );

    expect(result.code).toBe(0);
    expect(report!.uid).toBe(accounts.app.uid);
    expect(report!.env.DB).toBe("pa55word");
  });
});

describe("file roots", () => {
  test("/ as a root lets any absolute path be read", async () => {
    const root = secretsRoot();
    const dir = path.dirname(root);
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypoint(
      ["--file-roots", "/", "--", ...command],
      {
        env: baseEnv({ DB: `file:${root}/db_password` }),
      },
    );

    expect(result.code).toBe(0);
    expect(readReport<Report>(reportPath)!.env.DB).toBe("pa55word");
  });

  test("values that look like references but are not get a warning", async () => {
    const root = secretsRoot();
    const { result, report } = await runWith(root, {
      A: " vault:secret/app#pw",
      B: "VAULT:secret/app#pw",
    });

    expect(result.code).toBe(0);
    expect(report!.env.A).toBe(" vault:secret/app#pw");
    const warned = logLines(result.stderr).filter(
      (line) => line.event === "reference.skipped",
    );
    expect(warned.map((line) => [line.variable, line.msg])).toEqual([
      [
        "A",
        "A: the value looks like a reference but is passed on unchanged: a reference starts with vault:, awssm: or file: in lower case, with nothing before it",
      ],
      [
        "B",
        "B: the value looks like a reference but is passed on unchanged: a reference starts with vault:, awssm: or file: in lower case, with nothing before it",
      ],
    ]);
  });
});

describe("NAME_FILE variables", () => {
  test("are ignored unless SECRET_ENTRYPOINT_FILE_VARS opts in", async () => {
    const root = secretsRoot();
    const { report } = await runWith(root, {
      POSTGRES_PASSWORD_FILE: `${root}/db_password`,
    });

    expect(report!.env.POSTGRES_PASSWORD_FILE).toBe(`${root}/db_password`);
    expect(report!.env.POSTGRES_PASSWORD).toBeUndefined();
  });

  test("with *, set NAME from files inside the roots and drop NAME_FILE; others stay", async () => {
    const root = secretsRoot();
    const { result, report } = await runWith(root, {
      POSTGRES_PASSWORD_FILE: `${root}/db_password`,
      LOG_FILE: "/var/log/app.log",
      SECRET_ENTRYPOINT_FILE_VARS: "*",
    });

    expect(result.code).toBe(0);
    expect(report!.env.POSTGRES_PASSWORD).toBe("pa55word");
    expect(report!.env.POSTGRES_PASSWORD_FILE).toBeUndefined();
    expect(report!.env.LOG_FILE).toBe("/var/log/app.log");
    expect(report!.env.LOG).toBeUndefined();
  });

  test("a listed name is read; both NAME and NAME_FILE set is an error", async () => {
    const root = secretsRoot();
    const listed = await runWith(root, {
      MYSQL_PASSWORD_FILE: `${root}/db_password`,
      SECRET_ENTRYPOINT_FILE_VARS: "MYSQL_PASSWORD",
    });
    expect(listed.report!.env.MYSQL_PASSWORD).toBe("pa55word");

    const other = secretsRoot();
    const both = await runWith(other, {
      MYSQL_PASSWORD: "x",
      MYSQL_PASSWORD_FILE: `${other}/db_password`,
      SECRET_ENTRYPOINT_FILE_VARS: "MYSQL_PASSWORD",
    });
    expect(both.result.code).toBe(65);
    expect(both.report).toBeUndefined();
    expect(logLines(both.result.stderr).at(-1)!.msg).toBe(
      "both MYSQL_PASSWORD and MYSQL_PASSWORD_FILE are set; unset one of them",
    );
  });

  test("a listed name whose file is outside the roots is an error", async () => {
    const root = secretsRoot();
    const { result, report } = await runWith(root, {
      API_KEY_FILE: "/etc/hostname",
      SECRET_ENTRYPOINT_FILE_VARS: "API_KEY",
    });

    expect(result.code).toBe(65);
    expect(report).toBeUndefined();
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `API_KEY_FILE: /etc/hostname is not an absolute path inside the file roots (/run/secrets, ${root}); add its folder to SECRET_ENTRYPOINT_FILE_ROOTS`,
    );
  });
});

describe("providers", () => {
  test("only the providers a run's references need are loaded", async () => {
    const root = secretsRoot();
    const { result } = await runWith(root, {
      DB: `file:${root}/db_password`,
      SECRET_ENTRYPOINT_LOG_LEVEL: "debug",
    });

    expect(result.code).toBe(0);
    const loaded = logLines(result.stderr)
      .filter((line) => line.event === "provider.load")
      .map((line) => line.provider);
    expect(loaded).toEqual(["file"]);
  });
});
