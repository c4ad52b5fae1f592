/**
 * Suites that need root or Debian packages skip themselves on a developer's
 * machine that lacks them. In CI (CI=true) nothing may be skipped for that
 * reason: the run fails instead, naming what is missing.
 */
import { isRoot } from "./accounts.ts";
import { containerSupport } from "./rootfs.ts";

export default function setup(): void {
  if (process.env.CI !== "true") return;

  const missing = [
    isRoot ? null : "root (the privilege tests create users)",
    containerSupport(),
  ].filter((reason) => reason !== null);
  if (missing.length > 0) {
    throw new Error(
      `CI must run every suite, but these are missing: ${missing.join("; ")}`,
    );
  }
}
