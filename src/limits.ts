/**
 * What execve(2) accepts, checked before the exec: Node aborts the whole
 * process when execve fails, so a value that does not fit must be found here
 * and named.
 */
import fs from "node:fs";

import { invalidError } from "./errors.ts";
import { environmentProblem } from "./values.ts";

// execve(2): one "NAME=value" string may be at most MAX_ARG_STRLEN (32
// pages, 128 KiB) with its NUL.
export const maxVariableBytes = 128 * 1024;

// fs/exec.c: argv and envp, strings and pointers, may take a quarter of the
// stack's soft limit, but no more than 6 MiB (3/4 of _STK_LIM) and no less
// than 128 KiB.
const maxArgsCeiling = 6 * 1024 * 1024;
const maxArgsFloor = 128 * 1024;
const pointerBytes = 8;

/** The bytes execve accepts for argv and envp together, on this process. */
export function maxTotalBytes(): number {
  const stack = stackSoftLimit();
  const quarter = stack === undefined ? maxArgsCeiling : Math.floor(stack / 4);
  return Math.max(Math.min(quarter, maxArgsCeiling), maxArgsFloor);
}

function stackSoftLimit(): number | undefined {
  try {
    const limits = fs.readFileSync("/proc/self/limits", "utf8");
    const soft = /^Max stack size\s+(\S+)/m.exec(limits)?.[1];
    return soft === undefined || soft === "unlimited"
      ? undefined
      : Number(soft);
  } catch {
    return 8 * 1024 * 1024;
  }
}

/**
 * Why `NAME=value` cannot enter the environment, or undefined when it can.
 */
export function variableProblem(
  name: string,
  value: Buffer | string,
): string | undefined {
  if (name === "" || name.includes("=") || name.includes("\u0000")) {
    return `the name ${JSON.stringify(name)} cannot be a variable's name`;
  }
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  const problem = environmentProblem(bytes);
  if (problem !== undefined) return `its value ${problem}`;

  const size = Buffer.byteLength(name) + 1 + bytes.length + 1;
  if (size > maxVariableBytes) {
    return `it is ${size} bytes, more than the ${maxVariableBytes} bytes execve accepts for one variable`;
  }
  return undefined;
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
    const problem = variableProblem(name, value);
    if (problem !== undefined) {
      throw invalidError(
        `${name} cannot be passed to the command: ${problem}; use the option as=file for large or binary values`,
        { variable: name },
      );
    }
    const bytes = Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
    sizes.push([name, bytes]);
    total += bytes + pointerBytes;
  }
  for (const word of command)
    total += Buffer.byteLength(word) + 1 + pointerBytes;

  const limit = maxTotalBytes();
  if (total > limit) {
    const largest = sizes
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([name, bytes]) => `${name} (${bytes} bytes)`);
    throw invalidError(
      `the command line and environment take ${total} bytes, more than the ${limit} bytes execve accepts here (a quarter of the stack limit); the largest variables are ${largest.join(", ")}; use the option as=file for large values`,
    );
  }
}
