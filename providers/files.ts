/**
 * Secrets in files, as Docker and Kubernetes mount them under /run/secrets.
 * Files are read before privileges are dropped, so the command's user needs
 * no access to them. A file is read only when its real path, after every
 * symbolic link, still lies inside a file root: Kubernetes secret volumes
 * are links into a `..data` folder, which is fine, but a link to /etc/shadow
 * is not.
 */
import { isUtf8 } from "node:buffer";
import { constants } from "node:fs";
import fs from "node:fs/promises";

import { EntrypointError, ExitCode } from "../src/errors.ts";
import { isUnder, type FileReference } from "../src/references.ts";
import type {
  CreateProvider,
  ReadResult,
  Secret,
  SecretRequest,
} from "./types.ts";

export const create: CreateProvider = (setup) => {
  const realRoots = realPaths(setup.fileRoots);
  return {
    name: "file",
    async read(requests) {
      const roots = await realRoots;
      const answers = await Promise.all(
        requests.map(
          async (request) =>
            [
              request.identity,
              await readOne(request, roots, setup.fileTrim),
            ] as const,
        ),
      );
      return new Map(answers);
    },
  };
};

async function realPaths(roots: readonly string[]): Promise<string[]> {
  const found = await Promise.all(
    roots.map((root) => fs.realpath(root).catch(() => undefined)),
  );
  return found.filter((root) => root !== undefined);
}

async function readOne(
  request: SecretRequest,
  roots: readonly string[],
  trim: boolean,
): Promise<ReadResult> {
  const { path: filePath } = request.reference as FileReference;
  try {
    const real = await fs.realpath(filePath);
    if (!roots.some((root) => isUnder(real, root))) {
      return failure(
        `file ${filePath} leads to ${real}, outside the file roots; refusing to read it`,
        ExitCode.denied,
      );
    }
    const bytes = await readRegularFile(real);
    if (bytes === undefined) {
      return failure(
        `${filePath} is not a regular file (a FIFO, socket or device); a secret file must be a plain file`,
        ExitCode.invalid,
      );
    }
    return { ok: true, secret: toSecret(trim ? trimNewlines(bytes) : bytes) };
  } catch (error) {
    return failure(describeError(filePath, error), exitCodeOf(error));
  }
}

// Opened without blocking: a FIFO would otherwise wait for a writer forever,
// in a thread of Node's pool that no deadline can take back. Returns
// undefined for anything but a regular file.
async function readRegularFile(file: string): Promise<Buffer | undefined> {
  const handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) {
      throw Object.assign(new Error("is a folder"), { code: "EISDIR" });
    }
    return stat.isFile() ? await handle.readFile() : undefined;
  } finally {
    await handle.close();
  }
}

function failure(
  message: string,
  exitCode: EntrypointError["exitCode"],
): ReadResult {
  return { ok: false, error: new EntrypointError(message, exitCode) };
}

// As the shell's $(< file) does: every trailing newline goes.
function trimNewlines(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0x0a) end -= 1;
  return bytes.subarray(0, end);
}

function toSecret(bytes: Buffer): Secret {
  return isUtf8(bytes)
    ? { kind: "text", text: bytes.toString("utf8") }
    : { kind: "bytes", bytes };
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function exitCodeOf(error: unknown): EntrypointError["exitCode"] {
  switch (errorCode(error)) {
    case "ENOENT":
    case "ENOTDIR":
      return ExitCode.notFound;
    case "EACCES":
    case "EPERM":
      return ExitCode.denied;
    default:
      return ExitCode.invalid;
  }
}

function describeError(filePath: string, error: unknown): string {
  switch (errorCode(error)) {
    case "ENOENT":
    case "ENOTDIR":
      return `file ${filePath} does not exist; check the secret's mount`;
    case "EACCES":
    case "EPERM":
      return `file ${filePath} is not readable by uid ${process.geteuid?.()}; check its mode and owner`;
    case "EISDIR":
      return `${filePath} is a folder, not a file`;
    default:
      return `file ${filePath} could not be read (${errorCode(error) ?? "unknown error"})`;
  }
}
