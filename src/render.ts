/**
 * Render mode: writes the resolved values into a directory, for an init
 * container or a native sidecar that shares an in-memory volume with the
 * application.
 *
 * The layout is the one kubelet's AtomicWriter gives secret volumes, so tools
 * that already cope with Kubernetes secret volumes cope with ours:
 *
 *   DIR/..2025_01_31_12_00_00.123456789.1a2b3c4d/   one version of the set
 *   DIR/..data -> ..2025_01_31_12_00_00.123456789.1a2b3c4d
 *   DIR/DB_PASSWORD -> ..data/DB_PASSWORD         one link per entry
 *
 * A new version is written in full into a fresh directory, then `..data` is
 * switched to it with rename(2), which replaces the link in one step: a
 * reader that resolves `..data` once (or opens the one file of the `env` and
 * `json` formats) sees either the old set or the new one, never a mix. The
 * old version is removed afterwards; a reader still inside it gets ENOENT
 * and reads again, as with Kubernetes.
 *
 * One renderer owns a DIR: two processes rendering into the same DIR would
 * remove each other's versions.
 */
import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

import { EntrypointError, ExitCode, invalidError } from "./errors.ts";
import { formatEnvFile } from "./env-file.ts";
import { logEvent, type Logger } from "./logging.ts";

/** How `renderSecrets` writes. */
export interface RenderOptions {
  /** The directory to render into; created when missing. */
  dir: string;
  /** `files`: a file per variable; `env`: `secrets.env`; `json`: `secrets.json`. */
  format: "files" | "env" | "json";
  /** Mode of the rendered files, e.g. 0o400. */
  mode: number;
  /** Owner of the rendered files, when given (needs root or CAP_CHOWN). */
  uid?: number;
  gid?: number;
}

/** The file names of the single-file formats. */
export const renderFileNames = {
  env: "secrets.env",
  json: "secrets.json",
} as const;

const dataLink = "..data";
const dataLinkTemp = "..data_tmp";

/** A rendered set: file name to content. */
type Payload = Map<string, Buffer>;

/**
 * Writes `values` into `options.dir` as one atomic version, unless the
 * current version already holds exactly the same files with the same mode
 * and owner. Returns whether it wrote. Values are never logged.
 */
export async function renderSecrets(
  values: ReadonlyMap<string, Buffer>,
  options: RenderOptions,
  logger: Logger,
): Promise<{ changed: boolean }> {
  const payload = buildPayload(values, options.format);
  try {
    return await writeIfChanged(payload, options, logger);
  } catch (error) {
    throw renderError(`render into ${options.dir}`, error);
  }
}

async function writeIfChanged(
  payload: Payload,
  options: RenderOptions,
  logger: Logger,
): Promise<{ changed: boolean }> {
  const { dir } = options;
  await makeFolder(dir);
  const current = await currentVersion(dir);
  if (current && (await versionMatches(current, payload, options))) {
    // A run that died between the switch and the links left them behind.
    await linkEntries(dir, payload);
    logEvent(
      logger,
      "debug",
      "render.unchanged",
      { dir },
      "rendered secrets are unchanged",
    );
    return { changed: false };
  }
  const version = await writeVersion(payload, options);
  await switchData(dir, version);
  await linkEntries(dir, payload);
  await removeStale(dir, version, payload);
  const entries = [...payload.keys()];
  logEvent(
    logger,
    "info",
    "render.write",
    { dir, format: options.format, entries, version },
    `rendered ${entries.length} ${entries.length === 1 ? "file" : "files"} into ${dir}`,
  );
  return { changed: true };
}

/** The files of one version for `format`, in name order. */
function buildPayload(
  values: ReadonlyMap<string, Buffer>,
  format: RenderOptions["format"],
): Payload {
  const names = [...values.keys()].sort();
  if (format === "files") {
    return new Map(
      names.map((name) => [checkFileName(name), values.get(name)!]),
    );
  }
  const texts = new Map(
    names.map((name) => [name, toText(name, values.get(name)!, format)]),
  );
  if (format === "env") {
    return new Map([[renderFileNames.env, Buffer.from(formatEnvFile(texts))]]);
  }
  const json = JSON.stringify(Object.fromEntries(texts), null, 2) + "\n";
  return new Map([[renderFileNames.json, Buffer.from(json)]]);
}

// A variable becomes a file of that name next to `..data` and the version
// directories, so it must be one path component and must not look like them.
function checkFileName(name: string): string {
  if (name === "" || name.startsWith(".") || name.includes("/")) {
    throw invalidError(
      `cannot render variable ${JSON.stringify(name)} as a file: a file name cannot be empty, start with "." or hold "/"`,
    );
  }
  return name;
}

function toText(name: string, value: Buffer, format: "env" | "json"): string {
  if (value.includes(0) || !isUtf8(value)) {
    throw invalidError(
      `cannot render variable ${name} in the ${format} format: its value is binary (not UTF-8, or holds a NUL byte); set SECRET_ENTRYPOINT_RENDER_FORMAT=files`,
    );
  }
  return value.toString("utf8");
}

/**
 * The version directory `..data` points to, or null before the first render
 * or when it points anywhere but to a version beside it (then a new version
 * replaces it, and nothing outside DIR is read).
 */
async function currentVersion(dir: string): Promise<string | null> {
  try {
    const target = await fs.readlink(path.join(dir, dataLink));
    return isVersionName(target) && !target.includes("/") ? target : null;
  } catch (error) {
    if (isErrno(error, "ENOENT")) {
      return null;
    }
    throw error;
  }
}

/** Whether the version holds exactly `payload`, with the right mode and owner. */
async function versionMatches(
  version: string,
  payload: Payload,
  options: RenderOptions,
): Promise<boolean> {
  const versionDir = path.join(options.dir, version);
  let names: string[];
  try {
    names = await fs.readdir(versionDir);
  } catch (error) {
    if (isErrno(error, "ENOENT")) {
      return false;
    }
    throw error;
  }
  if (
    names.length !== payload.size ||
    names.some((name) => !payload.has(name))
  ) {
    return false;
  }
  for (const [name, content] of payload) {
    if (!(await fileMatches(path.join(versionDir, name), content, options))) {
      return false;
    }
  }
  return true;
}

async function fileMatches(
  file: string,
  content: Buffer,
  options: RenderOptions,
): Promise<boolean> {
  const stat = await fs.lstat(file);
  if (
    !stat.isFile() ||
    (stat.mode & 0o7777) !== options.mode ||
    (options.uid !== undefined && stat.uid !== options.uid) ||
    (options.gid !== undefined && stat.gid !== options.gid) ||
    stat.size !== content.length
  ) {
    return false;
  }
  return content.equals(await fs.readFile(file));
}

/** Writes `payload` into a new version directory and returns its name. */
async function writeVersion(
  payload: Payload,
  options: RenderOptions,
): Promise<string> {
  const version = versionName(new Date());
  const versionDir = path.join(options.dir, version);
  try {
    // Private while it fills up; opened to its readers once complete.
    await fs.mkdir(versionDir, { mode: 0o700 });
    for (const [name, content] of payload) {
      await writeFile(path.join(versionDir, name), content, options);
    }
    // Like kubelet's, the directory stays the renderer's and open to all:
    // the files' own mode and owner guard the values. Giving the directory
    // away would keep a renderer without CAP_DAC_OVERRIDE or CAP_FOWNER (a
    // sidecar with capabilities dropped) from removing it later.
    await fs.chmod(versionDir, 0o755);
  } catch (error) {
    await removeVersion(versionDir);
    throw error;
  }
  return version;
}

// Kubernetes names versions `..` + a timestamp; the random part keeps two
// renders in the same nanosecond apart.
function versionName(now: Date): string {
  const stamp = now.toISOString().replace(/[-:T]/g, "_").replace(/\..*/, "");
  const nanos = String(process.hrtime.bigint() % 1_000_000_000n).padStart(
    9,
    "0",
  );
  return `..${stamp}.${nanos}.${randomBytes(4).toString("hex")}`;
}

async function writeFile(
  file: string,
  content: Buffer,
  options: RenderOptions,
): Promise<void> {
  // `wx`: the version directory is new, so anything already there is a bug
  // or an attack, never something to follow or overwrite.
  await fs.writeFile(file, content, { flag: "wx", mode: 0o600 });
  // chmod while the file is still ours: once given away, changing its mode
  // needs CAP_FOWNER, which a container with dropped capabilities lacks.
  // The umask does not apply to chmod.
  await fs.chmod(file, options.mode);
  if (options.uid !== undefined || options.gid !== undefined) {
    await fs.chown(file, options.uid ?? -1, options.gid ?? -1);
  }
}

/** Points `..data` at `version` in one rename(2). */
async function switchData(dir: string, version: string): Promise<void> {
  const temp = path.join(dir, dataLinkTemp);
  await fs.rm(temp, { force: true });
  await fs.symlink(version, temp);
  await fs.rename(temp, path.join(dir, dataLink));
}

/** Makes `DIR/NAME -> ..data/NAME` for every entry of the payload. */
async function linkEntries(dir: string, payload: Payload): Promise<void> {
  for (const name of payload.keys()) {
    const link = path.join(dir, name);
    const target = `${dataLink}/${name}`;
    const existing = await readLinkOrNull(link);
    if (existing === target) {
      continue;
    }
    if (existing === null && (await exists(link))) {
      throw new EntrypointError(
        `failed to render ${link}: it exists and was not written by secret-entrypoint; render into an empty directory`,
        ExitCode.config,
      );
    }
    await fs.rm(link, { force: true });
    await fs.symlink(target, link);
  }
}

/** Removes the links of entries that left the set, and older versions. */
async function removeStale(
  dir: string,
  version: string,
  payload: Payload,
): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (
      entry.isSymbolicLink() &&
      !payload.has(entry.name) &&
      (await isOurLink(entryPath))
    ) {
      await fs.rm(entryPath);
    } else if (
      entry.isDirectory() &&
      isVersionName(entry.name) &&
      entry.name !== version
    ) {
      await removeVersion(entryPath);
    }
  }
}

function isVersionName(name: string): boolean {
  return name.startsWith("..") && name !== dataLink && name !== dataLinkTemp;
}

async function isOurLink(link: string): Promise<boolean> {
  return (await readLinkOrNull(link))?.startsWith(`${dataLink}/`) ?? false;
}

async function removeVersion(versionDir: string): Promise<void> {
  await fs.rm(versionDir, { recursive: true, force: true });
}

async function readLinkOrNull(link: string): Promise<string | null> {
  try {
    return await fs.readlink(link);
  } catch (error) {
    if (isErrno(error, "ENOENT") || isErrno(error, "EINVAL")) {
      return null;
    }
    throw error;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

// EACCES/EPERM: the renderer may not write DIR or give files away (exit 77,
// like any privilege it lacks). Anything else (DIR is a file, the volume is
// full) is a matter of where DIR points (exit 78). The messages of fs errors
// hold paths and syscalls, never file contents.
// Not a recursive mkdir: Node's loops forever on a path under /proc. The
// folder's parent must exist, as a volume's mount point does.
async function makeFolder(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { mode: 0o755 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && (await fs.stat(dir)).isDirectory()) return;

    const why =
      code === "EEXIST"
        ? "it exists and is not a folder"
        : code === "ENOENT"
          ? "its parent folder does not exist"
          : `the system refused (${code ?? "unknown error"})`;
    throw new EntrypointError(
      `cannot render into ${dir}: ${why}; give --render an existing folder, or a new one in an existing folder`,
      code === "EACCES" || code === "EPERM" ? ExitCode.denied : ExitCode.config,
    );
  }
}

function renderError(action: string, cause: unknown): EntrypointError {
  if (cause instanceof EntrypointError) {
    return cause;
  }
  const code = (cause as NodeJS.ErrnoException | null)?.code ?? "";
  const denied = code === "EACCES" || code === "EPERM";
  const hint = denied
    ? "; check that DIR is writable by the entrypoint's user, and that --user with render needs root or CAP_CHOWN"
    : "";
  // Node's message quotes paths, never file contents.
  return new EntrypointError(
    `failed to ${action}: ${code || (cause as Error).name}${hint}`,
    denied ? ExitCode.denied : ExitCode.config,
    { cause },
  );
}
