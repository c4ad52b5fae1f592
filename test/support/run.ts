/**
 * Runs the built bundle as a real process, the way users run it.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../..",
);
export const bundle = path.join(root, "dist/secret-entrypoint.cjs");
export const executable = path.join(root, "dist/secret-entrypoint");
export const reportFixture = path.join(root, "test/fixtures/report.mjs");

export interface RunResult {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** The whole environment of the entrypoint: nothing is inherited. */
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
  /** Runs the single executable instead of the bundle. */
  sea?: boolean;
  /** Kills the run after this many milliseconds. */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
  /** The Node that runs the bundle; the test's own by default. */
  node?: string;
  /** A program that starts the entrypoint, such as setpriv or unshare. */
  wrapper?: string[];
}

/** A minimal environment: PATH that finds the test's Node first. */
export function baseEnv(extra: Record<string, string> = {}) {
  return {
    PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    ...extra,
  };
}

/**
 * Starts `secret-entrypoint ...args` and collects its output; `child` is
 * there for signals while it runs, `done` settles when it ends.
 */
export function startEntrypoint(args: string[], options: RunOptions = {}) {
  const entrypoint = options.sea
    ? [executable, ...args]
    : [options.node ?? process.execPath, bundle, ...args];
  const [file, ...argv] = [...(options.wrapper ?? []), ...entrypoint];
  const child = spawn(file!, argv, {
    env: options.env ?? baseEnv(),
    cwd: options.cwd ?? root,
    stdio: ["pipe", "pipe", "pipe"],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  const output = { stdout: "", stderr: "" };
  child.stdout
    .setEncoding("utf8")
    .on("data", (chunk) => (output.stdout += chunk));
  child.stderr
    .setEncoding("utf8")
    .on("data", (chunk) => (output.stderr += chunk));
  child.stdin.end(options.input ?? "");
  const timer = setTimeout(
    () => child.kill("SIGKILL"),
    options.timeoutMs ?? 30_000,
  );
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ pid: child.pid ?? -1, code, signal, ...output });
    });
  });
  return { child, output, done };
}

/** Runs `secret-entrypoint ...args` and collects its output. */
export function runEntrypoint(
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return startEntrypoint(args, options).done;
}

/** Polls `condition` until it holds; fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The JSON lines the entrypoint logged on stderr. */
export function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Fails when any of `secrets` appears in the output of a run. */
export function expectNoLeak(result: RunResult, secrets: readonly string[]) {
  for (const secret of secrets) {
    if (result.stdout.includes(secret) || result.stderr.includes(secret)) {
      throw new Error(`a secret value leaked into the output of a run`);
    }
  }
}

/** What the report fixture saw. */
export interface Report {
  pid: number;
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  groups: number[];
  sigBlk: string;
  sigIgn: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

/**
 * A scratch folder any user can write to, and the command line that runs the
 * report fixture into it: `[node, report.mjs, reportPath, ...extra]`.
 */
export function reportCommand(dir: string, ...extra: string[]) {
  const reportPath = path.join(dir, "report.json");
  return {
    reportPath,
    command: [process.execPath, reportFixture, reportPath, ...extra],
  };
}
