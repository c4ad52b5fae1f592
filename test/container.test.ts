/**
 * The single executable in a container-like run: pid 1, a read-only root
 * made of busybox-static and the executable with its libraries, no
 * /etc/passwd, capabilities dropped as `cap_drop: ALL` with a few added back.
 * See test/support/rootfs.ts for how the run is set up.
 */
import fs from "node:fs";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  containerSupport,
  makeRootfs,
  runContainer,
  type Rootfs,
} from "./support/rootfs.ts";
import { executable, expectNoLeak, logLines } from "./support/run.ts";

const unsupported = containerSupport();
if (unsupported) {
  console.warn(`skipping container runs: ${unsupported}`);
}

const entrypoint = "/usr/local/bin/secret-entrypoint";
const password = "pw-Zq81-container";
const mock = { "vault:secret/app": { password, user: "app" } };

// What `cap_drop: ALL` plus `cap_add: [SETUID, SETGID]` leaves.
const switchCaps = ["cap_setuid", "cap_setgid"];

const baseEnv = {
  PATH: "/bin",
  DB_PASSWORD: "vault:secret/app#password",
  SECRET_ENTRYPOINT_MOCK: "/etc/mock.json",
};

const asFileScript = [
  'echo "$DB_PASSWORD"',
  "stat -c '%a %u %g' \"$DB_PASSWORD\"",
  'test "$(cat "$DB_PASSWORD")" = "$EXPECTED" && echo value-ok',
].join("; ");

describe.skipIf(unsupported !== null)("container-like runs", () => {
  let rootfs: Rootfs;

  beforeAll(() => {
    if (!fs.existsSync(executable)) {
      throw new Error(`${executable} is missing: run npm run build first`);
    }
    rootfs = makeRootfs({
      program: { from: executable, at: entrypoint },
      files: { "/etc/mock.json": JSON.stringify(mock) },
      dirs: ["run/render"],
    });
  });
  afterAll(() => rootfs?.remove());

  it("the harness: pid 1, read-only root, no passwd, only kept caps", async () => {
    const result = await runContainer({
      root: rootfs.dir,
      command: [
        "/bin/sh",
        "-c",
        "echo $$; touch /probe; test -e /etc/passwd || echo no-passwd; grep CapBnd /proc/self/status",
      ],
      env: { PATH: "/bin" },
      keepCaps: switchCaps,
    });
    expect(result.stdout).toBe("1\nno-passwd\nCapBnd:\t00000000000000c0\n");
    expect(result.stderr).toBe("touch: /probe: Read-only file system\n");
    expect(result.code).toBe(0);
  });

  it("exec mode: becomes the command as pid 1 with a numeric --user", async () => {
    const result = await runContainer({
      root: rootfs.dir,
      command: [entrypoint, "--user", "1000:1000", "--", "/bin/id"],
      env: baseEnv,
      keepCaps: switchCaps,
    });
    expect(result.stdout).toBe("uid=1000 gid=1000 groups=1000\n");
    expect(result.code).toBe(0);
    expectNoLeak(result, [password]);
    const exec = logLines(result.stderr).find((line) => line.event === "exec");
    expect(exec).toMatchObject({ pid: 1, uid: 1000, gid: 1000 });
  });

  it("exec mode: the command sees the value, pid 1, HOME / and no caps", async () => {
    const script = [
      'echo "pid=$$ home=$HOME"',
      'test "$DB_PASSWORD" = "$EXPECTED" && echo value-ok',
      "grep CapEff /proc/self/status",
    ].join("; ");
    const result = await runContainer({
      root: rootfs.dir,
      command: [
        entrypoint,
        "--user",
        "1000:1000",
        "--",
        "/bin/sh",
        "-c",
        script,
      ],
      env: { ...baseEnv, EXPECTED: password },
      keepCaps: switchCaps,
    });
    expect(result.stdout).toBe(
      "pid=1 home=/\nvalue-ok\nCapEff:\t0000000000000000\n",
    );
    expect(result.code).toBe(0);
  });

  it("exec mode: as=file values need only CHOWN besides the switch", async () => {
    // What the Compose example tells people to add for as=file references.
    const result = await runContainer({
      root: rootfs.dir,
      command: [
        entrypoint,
        "--user",
        "1000:1000",
        "--",
        "/bin/sh",
        "-c",
        asFileScript,
      ],
      env: {
        ...baseEnv,
        DB_PASSWORD: "vault:secret/app?as=file#password",
        SECRET_ENTRYPOINT_FILES_DIR: "/run/render/values",
        EXPECTED: password,
      },
      keepCaps: [...switchCaps, "cap_chown"],
      tmpfs: ["/run/render"],
    });
    expect(result.stderr).not.toContain('"level":50');
    expect(result.stdout).toBe(
      "/run/render/values/DB_PASSWORD\n400 1000 1000\nvalue-ok\n",
    );
    expect(result.code).toBe(0);
  });

  it("exit 77 when the capabilities to switch user are dropped", async () => {
    const result = await runContainer({
      root: rootfs.dir,
      command: [entrypoint, "--user", "1000:1000", "--", "/bin/id"],
      env: baseEnv,
      keepCaps: [],
    });
    expect(result.code).toBe(77);
    expect(result.stdout).toBe("");
    expect(logLines(result.stderr).map((line) => line.msg)).toEqual([
      `answering vault: and awssm: references from the mock file /etc/mock.json, not from Vault or AWS`,
      "cannot switch to user 1000:1000 (uid 1000, gid 1000): the process (uid 0) lacks CAP_SETGID and CAP_SETUID; run the entrypoint as root with CAP_SETUID and CAP_SETGID, or as that user without --user",
    ]);
    expectNoLeak(result, [password]);
  });

  it("render mode: files in a tmpfs, owned by --user, read by the command", async () => {
    const script = [
      "cd /run/render/..data",
      "stat -c '%a %u %g %n' DB_PASSWORD",
      'test "$(cat DB_PASSWORD)" = "$EXPECTED" && echo value-ok',
      'test -z "$DB_PASSWORD" && echo not-in-env',
    ].join("; ");
    const result = await runContainer({
      root: rootfs.dir,
      command: [
        entrypoint,
        "--render",
        "/run/render",
        "--user",
        "1000:1000",
        "--",
        "/bin/sh",
        "-c",
        script,
      ],
      env: { ...baseEnv, EXPECTED: password },
      // Giving the files to --user needs CAP_CHOWN besides the switch.
      keepCaps: [...switchCaps, "cap_chown"],
      tmpfs: ["/run/render"],
    });
    expect(result.stderr).not.toContain('"level":50');
    expect(result.stdout).toBe(
      "400 1000 1000 DB_PASSWORD\nvalue-ok\nnot-in-env\n",
    );
    expect(result.code).toBe(0);
    expectNoLeak(result, [password]);
  });

  it("render mode: an env file the next entrypoint loads with --env-from", async () => {
    // The init-container pattern in one run: render secrets.env, then exec
    // a second entrypoint (the application container's) that loads it.
    const result = await runContainer({
      root: rootfs.dir,
      command: [
        entrypoint,
        "--render",
        "/run/render",
        "--render-format",
        "env",
        "--user",
        "1000:1000",
        "--",
        entrypoint,
        "--env-from",
        "/run/render/secrets.env",
        "--",
        "/bin/sh",
        "-c",
        'id -u; test "$DB_PASSWORD" = "$EXPECTED" && echo value-ok',
      ],
      env: { ...baseEnv, EXPECTED: password },
      keepCaps: [...switchCaps, "cap_chown"],
      tmpfs: ["/run/render"],
    });
    expect(result.stderr).not.toContain('"level":50');
    expect(result.stdout).toBe("1000\nvalue-ok\n");
    expect(result.code).toBe(0);
    expectNoLeak(result, [password]);
  });
});
