/**
 * The last step: find the command as the user it will run as, give it
 * default signal dispositions, and replace this process with it.
 *
 * Node aborts the whole runtime when `process.execve` fails, so every
 * reason it could fail is checked first and reported with 126 or 127, as a
 * shell would.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { EntrypointError, ExitCode } from "./errors.ts";

// The PATH of a POSIX login when the environment has none (Docker's default).
const defaultPath =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function notFound(message: string) {
  return new EntrypointError(message, ExitCode.commandNotFound);
}

function notExecutable(message: string) {
  return new EntrypointError(message, ExitCode.notExecutable);
}

/**
 * The path of the command to exec, searched on `envPath` unless it holds a
 * slash. Run after the privilege drop, so that access is the command user's.
 */
export function findCommand(name: string, envPath: string | undefined): string {
  if (name === "") throw notFound("the command is an empty string");
  if (name.includes("/")) {
    checkRunnable(name);
    return name;
  }

  let denied: EntrypointError | undefined;
  for (const dir of (envPath ?? defaultPath).split(":")) {
    const candidate = path.join(dir === "" ? "." : dir, name);
    try {
      checkRunnable(candidate);
      return candidate;
    } catch (error) {
      const failure = error as EntrypointError;
      if (failure.exitCode === ExitCode.notExecutable) denied ??= failure;
    }
  }
  throw (
    denied ??
    notFound(
      `command not found: ${name} (searched PATH=${envPath ?? defaultPath})`,
    )
  );
}

function checkRunnable(file: string) {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw notFound(`command not found: ${file} does not exist`);
  }
  if (stat.isDirectory())
    throw notExecutable(`cannot run ${file}: it is a folder`);
  if (!stat.isFile())
    throw notExecutable(`cannot run ${file}: it is not a regular file`);

  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw notExecutable(
      `cannot run ${file}: permission denied for uid ${process.geteuid!()} (check its mode and mount options)`,
    );
  }
  checkFormat(file);
}

// What the kernel execs: an ELF program for this machine, whose loader must
// exist, or a script whose #! interpreter is itself runnable, four levels
// deep at most (binfmt_script). Anything else fails in execve, which Node
// answers with an abort.
const maxInterpreterDepth = 4;

function checkFormat(file: string, depth = 0): void {
  const head = readHead(file);
  if (head === undefined) return;

  if (head.subarray(0, 4).equals(elfMagic)) return checkElf(file, head);
  if (head.subarray(0, 2).toString("latin1") === "#!") {
    return checkScript(file, head, depth);
  }
  throw notExecutable(
    `cannot run ${file}: it is neither a program (ELF) nor a script starting with #!`,
  );
}

const elfMagic = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

// elf(5) e_machine values of the architectures Node runs on.
const elfMachines: Record<string, number> = {
  x64: 62,
  arm64: 183,
  ppc64: 21,
  s390x: 22,
  riscv64: 243,
  loong64: 258,
};

function checkElf(file: string, head: Buffer) {
  const is64 = head.length >= 64 && head[4] === 2;
  const littleEndian = head[5] === 1;
  const machine = is64 ? head.readUInt16LE(18) : undefined;
  const type = is64 ? head.readUInt16LE(16) : undefined;
  if (!is64 || !littleEndian || machine !== elfMachines[process.arch]) {
    throw notExecutable(
      `cannot run ${file}: it is a program for another machine or word size (this is ${process.arch})`,
    );
  }
  // ET_EXEC or ET_DYN; a relocatable object or core file does not run.
  if (type !== 2 && type !== 3) {
    throw notExecutable(
      `cannot run ${file}: it is an ELF file but not a program`,
    );
  }
  const loader = elfInterpreter(file, head);
  if (loader !== undefined && !fs.existsSync(loader)) {
    throw notFound(
      `cannot run ${file}: its ELF loader ${loader} does not exist (a glibc program on a musl image?)`,
    );
  }
}

function checkScript(file: string, head: Buffer, depth: number) {
  const line = head.toString("latin1").slice(2).split("\n")[0]!.trim();
  const interpreter = line.split(/[ \t]/)[0] ?? "";
  const bad = (why: string) =>
    notExecutable(
      `cannot run ${file}: its interpreter "${interpreter}" on the #! line ${why}`,
    );
  if (interpreter === "" || !isExecutableFile(interpreter)) {
    throw bad("does not exist or cannot be run");
  }
  if (depth + 1 >= maxInterpreterDepth)
    throw bad("is a script too many levels deep");

  try {
    checkFormat(interpreter, depth + 1);
  } catch (error) {
    if (!(error instanceof EntrypointError)) throw error;

    throw bad(`cannot be run: ${error.message}`);
  }
}

// An executable the user may not read (mode 0711) is still runnable: only
// the checks that need its first bytes are skipped.
function readHead(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(256);
    const length = fs.readSync(fd, head, 0, head.length, 0);
    return head.subarray(0, length);
  } finally {
    fs.closeSync(fd);
  }
}

function isExecutableFile(file: string) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// elf(5): the PT_INTERP program header names the dynamic loader. Only the
// 64-bit little-endian layout of x86-64 and arm64 is read; others pass.
function elfInterpreter(file: string, head: Buffer): string | undefined {
  const phoff = Number(head.readBigUInt64LE(32));
  const entrySize = head.readUInt16LE(54);
  const count = head.readUInt16LE(56);
  const size = fs.statSync(file).size;
  // A 64-bit program header is 56 bytes; anything else, or a table past
  // the end of the file, is a damaged file that execve would refuse.
  if (entrySize !== 56 || count > 4096 || phoff + entrySize * count > size) {
    throw notExecutable(
      `cannot run ${file}: its ELF program headers are damaged`,
    );
  }
  const fd = fs.openSync(file, "r");
  try {
    const table = Buffer.alloc(entrySize * count);
    fs.readSync(fd, table, 0, table.length, phoff);
    for (let index = 0; index < count; index++) {
      const entry = table.subarray(index * entrySize);
      if (entry.readUInt32LE(0) !== 3) continue;

      const offset = Number(entry.readBigUInt64LE(8));
      const length = Number(entry.readBigUInt64LE(32));
      if (length === 0 || length > 4096 || offset + length > size) {
        throw notExecutable(
          `cannot run ${file}: its ELF loader entry is damaged`,
        );
      }
      const name = Buffer.alloc(length);
      fs.readSync(fd, name, 0, length, offset);
      return name.toString("latin1").replace(/\0+$/, "");
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Undoes what Node did to signals: it ignores SIGPIPE and SIGXFSZ, and an
 * ignored signal stays ignored across execve(2), while a caught one goes back
 * to its default. So every ignored signal gets a listener, which turns it
 * from ignored into caught.
 */
export function resetSignals(): void {
  const ignored = ignoredSignals();
  for (const [name, number] of Object.entries(os.constants.signals)) {
    if (!ignored.has(number) || name === "SIGKILL" || name === "SIGSTOP")
      continue;

    process.on(name as NodeJS.Signals, () => {});
  }
}

function ignoredSignals(): Set<number> {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const mask = BigInt(
    `0x${/^SigIgn:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"}`,
  );
  const signals = new Set<number>();
  for (let number = 1; number <= 64; number++) {
    if (mask & (1n << BigInt(number - 1))) signals.add(number);
  }
  return signals;
}

/** Replaces this process with the command; returns only by throwing. */
export function execCommand(
  file: string,
  command: readonly string[],
  env: Record<string, string>,
): never {
  resetSignals();
  process.execve!(file, [...command], env);
  throw new EntrypointError(`exec of ${file} returned`, ExitCode.notExecutable);
}
