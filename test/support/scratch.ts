/**
 * Scratch folders for one test file, removed afterwards. They are open to
 * every user, since the command may run as another user and write there.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll } from "vitest";

/** Makes a fresh scratch folder; it and its siblings go after the file. */
export function scratchFolders(prefix: string) {
  const made: string[] = [];
  afterAll(() => {
    for (const dir of made) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(`${dir}-private`, { recursive: true, force: true });
    }
  });
  return (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    fs.chmodSync(dir, 0o777);
    made.push(dir);
    return dir;
  };
}

/** Reads the JSON the report fixture wrote, or undefined when it never ran. */
export function readReport<T>(reportPath: string): T | undefined {
  if (!fs.existsSync(reportPath)) return undefined;

  return JSON.parse(fs.readFileSync(reportPath, "utf8")) as T;
}

/**
 * A folder beside `dir` that only its owner may write to, on a path whose
 * every folder is safe: the parent that SECRET_ENTRYPOINT_FILES_DIR needs
 * (scratch folders themselves are open to all). Removed with `dir`.
 */
export function privateFolder(dir: string): string {
  const folder = `${dir}-private`;
  fs.mkdirSync(folder, { recursive: true, mode: 0o755 });
  fs.chmodSync(folder, 0o755);
  return folder;
}
