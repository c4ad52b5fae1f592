/**
 * The privilege drop as a table, in the manner of gosu's tests: a user spec
 * goes in, the command reports the uid, gid, groups and HOME it got. Runs
 * the bundle as root, with users and groups made for the test.
 */
import fs from "node:fs";

import { beforeAll, describe, expect, test } from "vitest";

import { accounts, ensureAccounts, isRoot } from "./support/accounts.ts";
import {
  baseEnv,
  logLines,
  reportCommand,
  runEntrypoint,
  type Report,
} from "./support/run.ts";
import { readReport, scratchFolders } from "./support/scratch.ts";

const scratch = scratchFolders("privileges");
const capsh =
  ["/usr/sbin/capsh", "/sbin/capsh"].find((file) => fs.existsSync(file)) ??
  "capsh";
const { app, other, extra, more, solo } = accounts;

interface Expected {
  uid: number;
  gid: number;
  groups: number[];
  home: string;
  user?: string;
}

const rows: Array<[string, Expected]> = [
  [
    app.name,
    {
      uid: app.uid,
      gid: app.gid,
      groups: [app.gid, extra.gid, more.gid],
      home: app.home,
      user: app.name,
    },
  ],
  [
    String(app.uid),
    {
      uid: app.uid,
      gid: app.gid,
      groups: [app.gid, extra.gid, more.gid],
      home: app.home,
      user: app.name,
    },
  ],
  [
    `${app.name}:${solo.name}`,
    {
      uid: app.uid,
      gid: solo.gid,
      groups: [solo.gid],
      home: app.home,
      user: app.name,
    },
  ],
  [
    `${app.name}:4300`,
    { uid: app.uid, gid: 4300, groups: [4300], home: app.home, user: app.name },
  ],
  [
    `${app.uid}:${solo.gid}`,
    {
      uid: app.uid,
      gid: solo.gid,
      groups: [solo.gid],
      home: app.home,
      user: app.name,
    },
  ],
  [
    `${other.uid}:${solo.name}`,
    {
      uid: other.uid,
      gid: solo.gid,
      groups: [solo.gid],
      home: other.home,
      user: other.name,
    },
  ],
  [
    other.name,
    {
      uid: other.uid,
      gid: other.gid,
      groups: [other.gid],
      home: other.home,
      user: other.name,
    },
  ],
  ["4999", { uid: 4999, gid: 0, groups: [0], home: "/" }],
  ["4999:4999", { uid: 4999, gid: 4999, groups: [4999], home: "/" }],
  ["0:0", { uid: 0, gid: 0, groups: [0], home: "/root", user: "root" }],
];

const failing: Array<[string, number, string]> = [
  [
    "no-such-user",
    67,
    "user no-such-user (from --user no-such-user) does not exist in /etc/passwd",
  ],
  [
    `${app.name}:no-such-group`,
    67,
    `group no-such-group (from --user ${app.name}:no-such-group) does not exist in /etc/group`,
  ],
  ["a:b:c", 64, 'the value "a:b:c"'],
  ["-1", 64, 'the value "-1"'],
  ["bad name", 64, 'the value "bad name"'],
  [":4101", 64, 'the value ":4101"'],
  [
    "99999999999",
    64,
    '"99999999999"; 99999999999 is larger than the largest id',
  ],
  ["4294967295", 64, '"4294967295"; 4294967295 is larger than the largest id'],
];

describe.skipIf(!isRoot)("--user", () => {
  beforeAll(ensureAccounts);

  test.each(rows)("%s", async (spec, expected) => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const env = baseEnv({ HOME: "/root", USER: "root", LOGNAME: "root" });
    const result = await runEntrypoint(["--user", spec, "--", ...command], {
      env,
    });

    expect(result.code).toBe(0);
    const report = readReport<Report>(reportPath)!;
    expect({
      uid: report.uid,
      euid: report.euid,
      gid: report.gid,
      egid: report.egid,
      groups: report.groups,
      home: report.env.HOME,
      user: report.env.USER,
      logname: report.env.LOGNAME,
    }).toEqual({
      uid: expected.uid,
      euid: expected.uid,
      gid: expected.gid,
      egid: expected.gid,
      groups: expected.groups,
      home: expected.home,
      user: expected.user,
      logname: expected.user,
    });
  });

  test.each(failing)("%s fails with %i", async (spec, code, message) => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypoint(["--user", spec, "--", ...command]);

    expect(result.code).toBe(code);
    expect(fs.existsSync(reportPath)).toBe(false);
    expect(logLines(result.stderr).at(-1)!.msg).toContain(message);
  });

  test("the environment form SECRET_ENTRYPOINT_USER works, and the flag wins", async () => {
    const env = baseEnv({ SECRET_ENTRYPOINT_USER: other.name });
    const first = reportCommand(scratch());
    const viaEnv = await runEntrypoint(["--", ...first.command], { env });
    const second = reportCommand(scratch());
    const flagWins = await runEntrypoint(
      ["--user", app.name, "--", ...second.command],
      { env },
    );

    expect([viaEnv.code, flagWins.code]).toEqual([0, 0]);
    expect(readReport<Report>(first.reportPath)!.uid).toBe(other.uid);
    expect(readReport<Report>(second.reportPath)!.uid).toBe(app.uid);
  });

  test("a user who is not root cannot switch: exit 77 before any secret is read", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypoint(["--user", app.name, "--", ...command], {
      uid: other.uid,
      gid: other.gid,
      env: baseEnv({ DB: "file:/run/secrets/does-not-exist" }),
    });

    expect(result.code).toBe(77);
    expect(fs.existsSync(reportPath)).toBe(false);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `cannot switch to user ${app.name} (uid ${app.uid}, gid ${app.gid}): the process (uid ${other.uid}) lacks CAP_SETGID and CAP_SETUID; run the entrypoint as root with CAP_SETUID and CAP_SETGID, or as that user without --user`,
    );
  });

  test("root without CAP_SETUID and CAP_SETGID cannot switch: exit 77", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypointWithout(
      ["setuid", "setgid"],
      ["--user", app.name, "--", ...command],
    );

    expect(result.code).toBe(77);
    expect(fs.existsSync(reportPath)).toBe(false);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `cannot switch to user ${app.name} (uid ${app.uid}, gid ${app.gid}): the process (uid 0) lacks CAP_SETGID and CAP_SETUID; run the entrypoint as root with CAP_SETUID and CAP_SETGID, or as that user without --user`,
    );
  });

  test("an inheritable capability that survives the switch is warned about", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypoint(["--user", app.name, "--", ...command], {
      wrapper: [capsh, "--inh=cap_net_raw", "--", "-c", '"$0" "$@"'],
    });

    expect(result.code).toBe(0);
    expect(readReport<Report>(reportPath)!.uid).toBe(app.uid);
    const warning = logLines(result.stderr).find(
      (line) => line.event === "privileges.inheritable",
    );
    expect(warning?.capInh).toBe("2000");
  });

  test("the user the process already is needs no capability", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const result = await runEntrypoint(
      ["--user", `${other.uid}:${other.gid}`, "--", ...command],
      {
        uid: other.uid,
        gid: other.gid,
      },
    );

    expect(result.code).toBe(0);
    expect(readReport<Report>(reportPath)!.uid).toBe(other.uid);
  });

  test("already the user, with groups added as fsGroup does: nothing to switch, groups kept", async () => {
    const dir = scratch();
    const { command, reportPath } = reportCommand(dir);
    const groups = `${other.gid},${extra.gid}`;
    const result = await runEntrypoint(
      ["--user", other.name, "--", ...command],
      {
        wrapper: [
          "setpriv",
          `--reuid=${other.uid}`,
          `--regid=${other.gid}`,
          `--groups=${groups}`,
          "--",
        ],
      },
    );

    expect(result.code).toBe(0);
    const report = readReport<Report>(reportPath)!;
    expect([report.uid, report.gid, report.groups]).toEqual([
      other.uid,
      other.gid,
      [other.gid, extra.gid],
    ]);
  });

  test("the command is looked up with the user's rights: unreadable folders do not count", async () => {
    const dir = scratch();
    const hidden = `${dir}/hidden`;
    fs.mkdirSync(hidden, { mode: 0o700 });
    fs.writeFileSync(`${hidden}/tool`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const env = baseEnv({ PATH: `${hidden}:/usr/bin:/bin` });
    const result = await runEntrypoint(["--user", app.name, "tool"], { env });

    expect(result.code).toBe(127);
    expect(logLines(result.stderr).at(-1)!.msg).toBe(
      `command not found: tool (searched PATH=${hidden}:/usr/bin:/bin)`,
    );
  });
});

// setpriv drops the capabilities from the bounding set, so root keeps its
// uid but loses them across the exec into Node.
function runEntrypointWithout(capabilities: string[], args: string[]) {
  return runEntrypoint(args, {
    wrapper: [
      "setpriv",
      `--bounding-set=${capabilities.map((cap) => `-${cap}`).join(",")}`,
      "--",
    ],
  });
}
