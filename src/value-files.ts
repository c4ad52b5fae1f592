/**
 * `as=file` values: each in a file of mode 0400 owned by the command's
 * user, in a folder only that user can enter. The folder is one the
 * entrypoint makes: an existing folder is used only when it is a real
 * folder of mode 0700 (one an earlier start made), so that a mistaken
 * SECRET_ENTRYPOINT_FILES_DIR=/etc cannot hand /etc to the command's user.
 */
import fs from "node:fs";
import path from "node:path";

import { EntrypointError, ExitCode } from "./errors.ts";

/** A value that goes into a file; the variable holds the file's path. */
export interface ValueFile {
  variable: string;
  path: string;
  value: Buffer;
}

interface Owner {
  uid: number;
  gid: number;
}

function configError(dir: string, why: string) {
  return new EntrypointError(
    `cannot write secret files into ${dir}: ${why}; set SECRET_ENTRYPOINT_FILES_DIR to a folder of its own on an in-memory file system, such as /dev/shm/secret-entrypoint`,
    ExitCode.config,
  );
}

/** Writes the files; files an earlier start left there are removed. */
export function writeValueFiles(
  files: readonly ValueFile[],
  dir: string,
  owner: Owner,
): void {
  if (files.length === 0) return;

  try {
    prepareFolder(dir, owner);
    removeStale(dir, files);
    for (const file of files) writeValueFile(file, owner);
    fs.chownSync(dir, owner.uid, owner.gid);
  } catch (error) {
    if (error instanceof EntrypointError) throw error;

    throw configError(
      dir,
      `the system refused (${(error as NodeJS.ErrnoException).code ?? "unknown error"})`,
    );
  }
}

// Without CAP_DAC_OVERRIDE and CAP_FOWNER, as in a locked-down container,
// root may only write into and chmod a folder it owns: it takes the folder
// (back) first and gives it away last.
function prepareFolder(dir: string, owner: Owner) {
  const existing = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (existing === undefined) {
    // Not recursive: Node's recursive mkdir loops forever under /proc.
    if (!fs.existsSync(path.dirname(dir))) {
      throw configError(dir, "its parent folder does not exist");
    }
    fs.mkdirSync(dir, { mode: 0o700 });
  } else if (!existing.isDirectory()) {
    throw configError(
      dir,
      "it exists and is not a folder (a symbolic link is not followed)",
    );
  } else {
    const foreign = foreignContent(dir, existing, owner);
    if (foreign !== undefined) throw configError(dir, foreign);
  }
  fs.chownSync(dir, process.geteuid!(), process.getegid!());
  fs.chmodSync(dir, 0o700);
}

// An earlier start leaves a folder of mode 0700, owned by the command's
// user, that holds nothing but 0400 files of that user named after
// variables. Anything else (a home folder, /root, /etc) is not ours to
// empty and hand over.
function foreignContent(
  dir: string,
  folder: fs.Stats,
  owner: Owner,
): string | undefined {
  if ((folder.mode & 0o777) !== 0o700) {
    return `it exists with mode 0${(folder.mode & 0o777).toString(8)}, so it is not a folder an earlier start made (those are 0700)`;
  }
  if (folder.uid !== owner.uid)
    return `it exists and belongs to uid ${folder.uid}, not ${owner.uid}`;

  for (const entry of fs.readdirSync(dir)) {
    const stat = fs.lstatSync(path.join(dir, entry));
    const ours =
      /^[A-Za-z_][A-Za-z0-9_]*(\.\d+)?$/.test(entry) &&
      stat.isFile() &&
      (stat.mode & 0o777) === 0o400 &&
      stat.uid === owner.uid;
    if (!ours) return `it holds ${entry}, which an earlier start did not write`;
  }
  return undefined;
}

function removeStale(dir: string, files: readonly ValueFile[]) {
  const current = new Set(files.map((file) => path.basename(file.path)));
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && !current.has(entry.name)) {
      fs.rmSync(path.join(dir, entry.name));
    }
  }
}

function writeValueFile(file: ValueFile, owner: Owner) {
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
