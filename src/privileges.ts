/**
 * The privilege drop: supplementary groups, then the group, then the user,
 * in that order because each step needs the privilege the next one takes
 * away. The result is checked, down to "root cannot be had back".
 */
import fs from "node:fs";

import { EntrypointError, ExitCode } from "./errors.ts";
import type { TargetUser } from "./users.ts";

// capabilities(7): the bit numbers of CAP_SETGID and CAP_SETUID.
const CAP_SETGID = 6n;
const CAP_SETUID = 7n;

/**
 * True when the process already runs with the uid and gid of `target`.
 * Supplementary groups may differ: Kubernetes' fsGroup and
 * `docker run --group-add` add groups on purpose, and a process without
 * CAP_SETGID could not drop them anyway.
 */
export function isAlready(target: TargetUser): boolean {
  return (
    process.getuid!() === target.uid &&
    process.geteuid!() === target.uid &&
    process.getgid!() === target.gid &&
    process.getegid!() === target.gid
  );
}

function sameSet(a: readonly number[], b: readonly number[]) {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((id) => right.has(id));
}

/**
 * Fails with exit 77 before any secret is read when the switch to `target`
 * cannot succeed: not root, or root without CAP_SETUID and CAP_SETGID.
 */
export function checkCanSwitch(target: TargetUser): void {
  if (isAlready(target)) return;

  const missing = missingCapabilities();
  if (missing.length === 0) return;

  throw cannotSwitch(
    target,
    `the process (uid ${process.geteuid!()}) lacks ${missing.join(" and ")}`,
  );
}

function missingCapabilities(): string[] {
  const effective = effectiveCapabilities();
  const missing: string[] = [];
  if ((effective & (1n << CAP_SETGID)) === 0n) missing.push("CAP_SETGID");
  if ((effective & (1n << CAP_SETUID)) === 0n) missing.push("CAP_SETUID");
  return missing;
}

function effectiveCapabilities(): bigint {
  return capabilitySet("CapEff") ?? (process.geteuid!() === 0 ? ~0n : 0n);
}

/**
 * The inheritable capabilities, which survive the switch: a program with
 * matching file capabilities would gain them. Node cannot call capset(2) to
 * clear them, so the caller can only warn; old container runtimes set them.
 */
export function inheritableCapabilities(): bigint {
  return capabilitySet("CapInh") ?? 0n;
}

// Without /proc the caller falls back on what the uid implies.
function capabilitySet(field: "CapEff" | "CapInh"): bigint | undefined {
  try {
    const status = fs.readFileSync("/proc/self/status", "utf8");
    const hex = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(status)?.[1];
    return hex === undefined ? undefined : BigInt(`0x${hex}`);
  } catch {
    return undefined;
  }
}

function cannotSwitch(target: TargetUser, why: string) {
  return new EntrypointError(
    `cannot switch to user ${target.spec} (uid ${target.uid}, gid ${target.gid}): ${why}; run the entrypoint as root with CAP_SETUID and CAP_SETGID, or as that user without --user`,
    ExitCode.denied,
  );
}

/** Switches the whole process to `target` and checks that it holds. */
export function dropPrivileges(target: TargetUser): void {
  if (isAlready(target)) {
    // Root asked for root: the groups are made exact, as for any switch.
    if (missingCapabilities().length === 0) process.setgroups!(target.groups);
    return;
  }
  try {
    process.setgroups!(target.groups);
    process.setgid!(target.gid);
    process.setuid!(target.uid);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw cannotSwitch(target, `the system refused (${code})`);
  }
  verify(target);
}

function verify(target: TargetUser) {
  if (!isAlready(target) || !sameSet(process.getgroups!(), target.groups)) {
    throw cannotSwitch(target, "the switch did not take effect");
  }
  if (target.uid !== 0 && canRegainRoot()) {
    throw cannotSwitch(target, "root could be regained after the switch");
  }
}

function canRegainRoot(): boolean {
  try {
    process.setuid!(0);
    return true;
  } catch {
    return false;
  }
}

/** HOME, USER and LOGNAME for the command, as login(1) sets them. */
export function userVariables(
  target: TargetUser,
): Record<string, string | undefined> {
  return {
    HOME: target.home,
    USER: target.name,
    LOGNAME: target.name,
  };
}
