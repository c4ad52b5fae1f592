/**
 * The command's environment: the original one with references replaced,
 * minus the entrypoint's own settings, Vault's settings and credentials and
 * consumed NAME_FILE variables, unless the user keeps them.
 */
import fs from "node:fs";
import path from "node:path";

import { EntrypointError, ExitCode, invalidError } from "./errors.ts";
import { envPrefix } from "./options.ts";
import type { Reference } from "./references.ts";
import type { Resolution } from "./resolve.ts";
import type { Binding } from "./scan.ts";
import { environmentProblem } from "./values.ts";

// execve(2): one "NAME=value" string may be at most MAX_ARG_STRLEN
// (32 pages, 128 KiB) with its NUL; all of argv and envp, with their
// pointers, must fit in a quarter of the stack limit, 2 MiB by default.
export const maxVariableBytes = 128 * 1024;
export const maxTotalBytes = 2 * 1024 * 1024;

/** A value that goes into a file; the variable holds the file's path. */
export interface ValueFile {
  variable: string;
  path: string;
  value: Buffer;
}

export interface Assembled {
  /** Each binding's final value; undefined leaves the variable unset. */
  values: Map<string, string | undefined>;
  files: ValueFile[];
}

/**
 * Puts each binding's values together: literal text, values and the paths
 * of `as=file` values. Call only when no reference failed.
 */
export function assembleValues(
  bindings: readonly Binding[],
  resolution: Resolution,
  filesDir: string,
): Assembled {
  const assembled: Assembled = { values: new Map(), files: [] };
  const outcomes = new Map(
    resolution.results.map((result) => [
      resultKey(result.variable, result.reference),
      result.outcome,
    ]),
  );
  for (const binding of bindings) {
    assembled.values.set(
      binding.variable,
      assembleBinding(binding, outcomes, filesDir, assembled.files),
    );
  }
  return assembled;
}

function resultKey(variable: string, reference: Reference) {
  return `${variable}\u0000${reference.text}`;
}

function assembleBinding(
  binding: Binding,
  outcomes: Map<string, Resolution["results"][number]["outcome"]>,
  filesDir: string,
  files: ValueFile[],
): string | undefined {
  const references = binding.template.filter(
    (part) => typeof part !== "string",
  );
  let text = "";
  for (const part of binding.template) {
    if (typeof part === "string") {
      text += part;
      continue;
    }
    const outcome = outcomes.get(resultKey(binding.variable, part))!;
    if (outcome.status !== "ok") return undefined;

    if (part.options.as === "file") {
      const name =
        references.length === 1
          ? binding.variable
          : `${binding.variable}.${references.indexOf(part)}`;
      const filePath = path.join(filesDir, name);
      files.push({
        variable: binding.variable,
        path: filePath,
        value: outcome.value,
      });
      text += filePath;
      continue;
    }
    const problem = environmentProblem(outcome.value);
    if (problem !== undefined) {
      throw invalidError(
        `the value of ${binding.variable} from ${part.text} ${problem}, which the environment cannot carry; add ?as=file to the reference to get it as a file`,
      );
    }
    text += outcome.value.toString("utf8");
  }
  return text;
}

export interface EnvironmentSettings {
  keepEnv: readonly string[];
  consumed: readonly string[];
  /** HOME, USER, LOGNAME of the target user; undefined removes. */
  userVariables?: Record<string, string | undefined>;
}

/** The environment the command gets. */
export function commandEnvironment(
  original: Readonly<Record<string, string | undefined>>,
  values: ReadonlyMap<string, string | undefined>,
  settings: EnvironmentSettings,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(original)) {
    if (value === undefined || isRemoved(name, settings)) continue;

    env[name] = value;
  }
  const replaced = new Map([
    ...Object.entries(settings.userVariables ?? {}),
    ...values,
  ]);
  for (const [name, value] of replaced) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

function isRemoved(name: string, settings: EnvironmentSettings) {
  if (settings.keepEnv.includes(name)) return false;

  return (
    name.startsWith(envPrefix) ||
    name.startsWith("VAULT_") ||
    settings.consumed.includes(name)
  );
}

/**
 * Checks that the command line and environment fit what execve accepts,
 * and names the variable that does not.
 */
export function checkSize(
  env: Readonly<Record<string, string>>,
  command: readonly string[],
): void {
  let total = 0;
  const sizes: Array<[string, number]> = [];
  for (const [name, value] of Object.entries(env)) {
    const bytes = Buffer.byteLength(name) + 1 + Buffer.byteLength(value) + 1;
    if (bytes > maxVariableBytes) {
      throw invalidError(
        `${name} is ${bytes} bytes, more than the ${maxVariableBytes} bytes execve accepts for one variable; use ?as=file to pass it as a file`,
      );
    }
    sizes.push([name, bytes]);
    total += bytes + 8;
  }
  for (const word of command) total += Buffer.byteLength(word) + 1 + 8;
  if (total > maxTotalBytes) {
    const largest = sizes
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([name, bytes]) => `${name} (${bytes} bytes)`);
    throw invalidError(
      `the command line and environment take ${total} bytes, more than the ${maxTotalBytes} bytes execve accepts; the largest variables are ${largest.join(", ")}; use ?as=file for large values`,
    );
  }
}

/**
 * Writes `as=file` values: mode 0400, owned by the command's user, in a
 * folder only that user can enter.
 */
export function writeValueFiles(
  files: readonly ValueFile[],
  dir: string,
  owner: { uid: number; gid: number },
): void {
  if (files.length === 0) return;

  try {
    // Without CAP_DAC_OVERRIDE and CAP_FOWNER, as in a locked-down
    // container, root may only write into and chmod a folder it owns: it
    // takes the folder (back) first and gives it away last.
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chownSync(dir, process.geteuid!(), process.getegid!());
    fs.chmodSync(dir, 0o700);
    for (const file of files) writeValueFile(file, owner);
    fs.chownSync(dir, owner.uid, owner.gid);
  } catch (error) {
    if (error instanceof EntrypointError) throw error;

    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw new EntrypointError(
      `cannot write secret files into ${dir} (${code}); set SECRET_ENTRYPOINT_FILES_DIR to a writable in-memory folder`,
      ExitCode.config,
    );
  }
}

function writeValueFile(file: ValueFile, owner: { uid: number; gid: number }) {
  // A file left by an earlier start may be read-only: replace it.
  fs.rmSync(file.path, { force: true });
  const fd = fs.openSync(file.path, "wx", 0o400);
  try {
    fs.writeSync(fd, file.value);
    fs.fchownSync(fd, owner.uid, owner.gid);
  } finally {
    fs.closeSync(fd);
  }
}
