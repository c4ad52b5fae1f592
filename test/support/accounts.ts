/**
 * Users and groups the privilege tests switch to. Created once, as root,
 * with the system's own tools, so /etc/passwd and /etc/group read as they
 * do in an image.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

export const isRoot = process.getuid?.() === 0;

export const accounts = {
  app: { name: "sept-app", uid: 4101, gid: 4101, home: "/home/sept-app" },
  other: { name: "sept-other", uid: 4102, gid: 4102, home: "/home/sept-other" },
  extra: { name: "sept-extra", gid: 4201 },
  more: { name: "sept-more", gid: 4202 },
  solo: { name: "sept-solo", gid: 4203 },
} as const;

function has(file: string, name: string) {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .some((line) => line.startsWith(`${name}:`));
}

function group(name: string, gid: number) {
  if (!has("/etc/group", name)) {
    execFileSync("groupadd", ["--gid", String(gid), name]);
  }
}

function user(
  account: { name: string; uid: number; gid: number; home: string },
  groups: string[],
) {
  group(account.name, account.gid);
  if (!has("/etc/passwd", account.name)) {
    execFileSync("useradd", [
      "--uid",
      String(account.uid),
      "--gid",
      String(account.gid),
      "--home-dir",
      account.home,
      "--no-create-home",
      "--shell",
      "/bin/sh",
      ...(groups.length ? ["--groups", groups.join(",")] : []),
      account.name,
    ]);
  }
}

/** Creates the test accounts if they are missing; needs root. */
export function ensureAccounts(): void {
  group(accounts.extra.name, accounts.extra.gid);
  group(accounts.more.name, accounts.more.gid);
  group(accounts.solo.name, accounts.solo.gid);
  user(accounts.app, [accounts.extra.name, accounts.more.name]);
  user(accounts.other, []);
}
