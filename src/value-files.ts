/**
 * `as=file` values: each in a file of mode 0400 owned by the command's
 * user, in a folder the entrypoint's user owns (mode 0710, group of the
 * command's user), so that the command can read its files by name but can
 * neither list, add, rename nor remove anything there.
 *
 * A supervised command runs while a refresh rewrites its files, so no step
 * may be turned against the entrypoint by that user: the folder's parent
 * must not let other users rename entries (root's own, or sticky like
 * /dev/shm and /tmp), the folder is opened without following links and
 * changed through that descriptor, and files are created new with O_EXCL
 * and renamed into place, which replaces a value in one step.
 *
 * An existing folder is used only when it is what an earlier start left,
 * so that a mistaken SECRET_ENTRYPOINT_FILES_DIR=/etc is refused, never
 * emptied.
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

const folderMode = 0o710;

// Names of files: the variable's name, ".N" for the Nth inline reference,
// ".tmp" while a file is written.
const ownName = /^[A-Za-z_][A-Za-z0-9_]*(\.\d+)?(\.tmp)?$/;

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

  let fd: number | undefined;
  try {
    checkParent(dir);
    fd = openFolder(dir, owner);
    removeStale(dir, files);
    for (const file of files) writeValueFile(file, owner);
  } catch (error) {
    if (error instanceof EntrypointError) throw error;

    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw configError(dir, `the system refused (${code})`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// Another user who may rename an entry anywhere on the way to the folder
// could swap the folder, or a folder above it, for a link between two
// steps. So every folder on the way must be a real folder (no link), owned
// by root or the entrypoint's user, and writable by others only when sticky.
function checkParent(dir: string) {
  const parent = path.dirname(dir);
  let walked = "/";
  for (const part of ["", ...parent.split("/").filter(Boolean)]) {
    walked = path.join(walked, part);
    const stat = fs.lstatSync(walked, { throwIfNoEntry: false });
    const why = unsafeAncestor(stat);
    if (why !== undefined) throw configError(dir, `${walked} ${why}`);
  }
}

function unsafeAncestor(stat: fs.Stats | undefined): string | undefined {
  if (stat === undefined) return "does not exist";
  if (stat.isSymbolicLink()) return "is a symbolic link";
  if (!stat.isDirectory()) return "is not a folder";
  if (stat.uid !== 0 && stat.uid !== process.geteuid!()) {
    return `belongs to uid ${stat.uid}, who could swap what is below it`;
  }
  const othersWrite = (stat.mode & 0o022) !== 0;
  const sticky = (stat.mode & 0o1000) !== 0;
  if (othersWrite && !sticky) {
    return "is writable by other users and not sticky, so they could swap what is below it";
  }
  return undefined;
}

// Created or checked, then opened without following a link; the mode and
// group are set through the descriptor.
function openFolder(dir: string, owner: Owner): number {
  const existing = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (existing === undefined) {
    // Not recursive: Node's recursive mkdir loops forever under /proc.
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
  const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  fs.fchmodSync(fd, folderMode);
  fs.fchownSync(fd, process.geteuid!(), owner.gid);
  return fd;
}

// An earlier start leaves a folder of mode 0710, owned by the entrypoint's
// user, that holds nothing but 0400 files of the command's user named after
// variables. A home folder, /root or /etc is none of that.
function foreignContent(
  dir: string,
  folder: fs.Stats,
  owner: Owner,
): string | undefined {
  const mode = folder.mode & 0o7777;
  if (mode !== folderMode) {
    return `it exists with mode 0${mode.toString(8)}, so it is not a folder an earlier start made (those are 0710)`;
  }
  if (folder.uid !== process.geteuid!() || folder.gid !== owner.gid) {
    return `it exists and belongs to ${folder.uid}:${folder.gid}, not to ${process.geteuid!()}:${owner.gid} as a folder an earlier start made`;
  }
  for (const entry of fs.readdirSync(dir)) {
    const stat = fs.lstatSync(path.join(dir, entry));
    // Any mode: the command may chmod its own file, and it is replaced.
    const ours =
      ownName.test(entry) &&
      stat.isFile() &&
      (stat.uid === owner.uid || stat.uid === process.geteuid!());
    if (!ours) return `it holds ${entry}, which an earlier start did not write`;
  }
  return undefined;
}

function removeStale(dir: string, files: readonly ValueFile[]) {
  const current = new Set(files.map((file) => path.basename(file.path)));
  for (const entry of fs.readdirSync(dir)) {
    if (!current.has(entry)) fs.rmSync(path.join(dir, entry));
  }
}

// Written under a temporary name, then renamed over the old file: a reader
// sees the old value or the new one, never a missing or partial file.
function writeValueFile(file: ValueFile, owner: Owner) {
  const temporary = `${file.path}.tmp`;
  fs.rmSync(temporary, { force: true });
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(
    temporary,
    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
    0o400,
  );
  try {
    fs.writeSync(fd, file.value);
    fs.fchownSync(fd, owner.uid, owner.gid);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, file.path);
}
