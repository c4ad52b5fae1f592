/**
 * User specs, as `docker run --user` and gosu take them: `name`, `uid`,
 * `name:group`, `uid:gid`, and `name:gid` or `uid:group`.
 *
 * - A name is looked up in /etc/passwd; its supplementary groups are the
 *   /etc/group entries that list it, unless a group is given.
 * - A numeric uid needs no passwd entry. Without one, the group is 0 and
 *   HOME is /, which is what Docker and gosu do; give `uid:gid` to choose
 *   another group.
 */
import fs from "node:fs";

import { EntrypointError, ExitCode, usageError } from "./errors.ts";

/** Who the command runs as. */
export interface TargetUser {
  /** The spec as given, for messages. */
  spec: string;
  uid: number;
  gid: number;
  /** Supplementary groups, the primary group included. */
  groups: number[];
  home: string;
  /** The passwd name, when there is an entry. */
  name?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Where the account databases are; tests point these elsewhere. */
export interface AccountFiles {
  passwd: string;
  group: string;
}

const systemFiles: AccountFiles = {
  passwd: "/etc/passwd",
  group: "/etc/group",
};

const idPattern = /^\d+$/;
const namePattern = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/;

/**
 * Resolves a user spec. Exit 64 for a spec that is not of a valid form,
 * exit 67 for a user or group that does not exist.
 */
export function resolveUser(
  spec: string,
  files: AccountFiles = systemFiles,
): TargetUser {
  const [rawUser, rawGroup, extra] = spec.split(":");
  const valid = (part: string | undefined) =>
    part !== undefined && (idPattern.test(part) || namePattern.test(part));
  if (
    extra !== undefined ||
    !valid(rawUser) ||
    (rawGroup !== undefined && !valid(rawGroup))
  ) {
    throw usageError(
      `--user has the value "${spec}"; valid forms: name, uid, name:group, uid:gid`,
    );
  }

  const passwd = readPasswd(files.passwd);
  const entry = findUser(rawUser!, passwd, spec, files.passwd);
  const uid = entry?.uid ?? checkedId(rawUser!, spec);
  const groups =
    rawGroup === undefined
      ? undefined
      : [findGroup(rawGroup, files.group, spec)];
  const gid = groups?.[0] ?? entry?.gid ?? 0;
  return {
    spec,
    uid,
    gid,
    groups: groups ?? supplementaryGroups(entry, gid, files.group),
    home: entry?.home || "/",
    ...(entry ? { name: entry.name } : {}),
  };
}

function checkedId(raw: string, spec: string): number {
  const id = Number(raw);
  // (uid_t)-1 means "unchanged" to setuid(2): it is no user.
  if (id >= 0xffffffff) {
    throw usageError(
      `--user has the value "${spec}"; ${raw} is larger than the largest id`,
    );
  }
  return id;
}

function findUser(
  raw: string,
  passwd: PasswdEntry[] | undefined,
  spec: string,
  file: string,
): PasswdEntry | undefined {
  if (idPattern.test(raw))
    return passwd?.find((entry) => entry.uid === Number(raw));

  if (passwd === undefined) {
    throw new EntrypointError(
      `user ${raw} (from --user ${spec}) cannot be looked up: ${file} does not exist; give a numeric uid:gid instead`,
      ExitCode.noUser,
    );
  }
  const entry = passwd.find((candidate) => candidate.name === raw);
  if (entry === undefined) {
    throw new EntrypointError(
      `user ${raw} (from --user ${spec}) does not exist in ${file}`,
      ExitCode.noUser,
    );
  }
  return entry;
}

function findGroup(raw: string, file: string, spec: string): number {
  if (idPattern.test(raw)) return checkedId(raw, spec);

  const entry = readGroups(file)?.find((candidate) => candidate.name === raw);
  if (entry === undefined) {
    throw new EntrypointError(
      `group ${raw} (from --user ${spec}) does not exist in ${file}`,
      ExitCode.noUser,
    );
  }
  return entry.gid;
}

function supplementaryGroups(
  entry: PasswdEntry | undefined,
  gid: number,
  file: string,
): number[] {
  const groups = new Set([gid]);
  if (entry !== undefined) {
    for (const group of readGroups(file) ?? []) {
      if (group.members.includes(entry.name)) groups.add(group.gid);
    }
  }
  return [...groups].sort((a, b) => a - b);
}

// passwd(5): name:password:uid:gid:gecos:home:shell
function readPasswd(file: string): PasswdEntry[] | undefined {
  return readColonFile(file)?.flatMap((fields) => {
    const [name, , uid, gid, , home] = fields;
    if (!name || !idPattern.test(uid ?? "") || !idPattern.test(gid ?? ""))
      return [];

    return [{ name, uid: Number(uid), gid: Number(gid), home: home ?? "" }];
  });
}

// group(5): name:password:gid:member,member
function readGroups(file: string): GroupEntry[] | undefined {
  return readColonFile(file)?.flatMap((fields) => {
    const [name, , gid, members] = fields;
    if (!name || !idPattern.test(gid ?? "")) return [];

    return [
      { name, gid: Number(gid), members: members ? members.split(",") : [] },
    ];
  });
}

function readColonFile(file: string): string[][] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;

    throw new EntrypointError(
      `cannot read ${file} (${(error as NodeJS.ErrnoException).code})`,
      ExitCode.noUser,
    );
  }
  return text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"));
}
