/**
 * The mock: references answered from one JSON or YAML file, for local
 * development without Vault or AWS. Keys are references without options and
 * selector (`vault:secret/app`); a map value is a structured secret, a
 * string is text. Every vault: and awssm: reference is answered from it; a
 * file: reference only when the mock has its entry, since a laptop has the
 * files themselves.
 */
import fs from "node:fs";

import { parse as parseYaml } from "yaml";

import { EntrypointError, ExitCode } from "../src/errors.ts";
import { mockKey, type Reference } from "../src/references.ts";
import { parseJsonKeepingNumbers } from "../src/values.ts";
import type { Provider, ReadResult, Secret } from "./types.ts";

/** The mock provider, which also says which references it answers. */
export interface MockProvider extends Provider {
  answers(reference: Reference): boolean;
}

/** Loads the mock file; exit 78 when it cannot be read or parsed. */
export function createMock(file: string): MockProvider {
  const entries = loadMockFile(file);
  return {
    name: "mock",
    answers: (reference) =>
      reference.scheme !== "file" || Object.hasOwn(entries, mockKey(reference)),
    async read(requests) {
      return new Map(
        requests.map((request) => [
          request.identity,
          answer(entries, mockKey(request.reference), file),
        ]),
      );
    },
  };
}

function answer(
  entries: Record<string, unknown>,
  key: string,
  file: string,
): ReadResult {
  if (!Object.hasOwn(entries, key)) {
    return {
      ok: false,
      error: new EntrypointError(
        `the mock file ${file} has no entry "${key}"; add it`,
        ExitCode.notFound,
      ),
    };
  }
  return { ok: true, secret: toSecret(entries[key]) };
}

function toSecret(entry: unknown): Secret {
  if (
    entry !== null &&
    typeof entry === "object" &&
    !Array.isArray(entry) &&
    !isRawJson(entry)
  ) {
    return { kind: "data", data: entry as Record<string, unknown> };
  }
  if (typeof entry === "string") return { kind: "text", text: entry };
  if (isRawJson(entry)) return { kind: "text", text: entry.rawJSON };

  return { kind: "text", text: JSON.stringify(entry) };
}

// YAML integers come as BigInt, so that no digit is lost; they become JSON
// text, as the numbers of a JSON mock do.
function integersAsText(value: unknown): unknown {
  if (typeof value === "bigint") return rawJson(String(value));
  if (Array.isArray(value)) return value.map(integersAsText);
  if (value === null || typeof value !== "object") return value;

  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, integersAsText(item)]),
  );
}

function rawJson(text: string): unknown {
  return (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(text);
}

function isRawJson(value: unknown): value is { rawJSON: string } {
  return (JSON as unknown as { isRawJSON(v: unknown): boolean }).isRawJSON(
    value,
  );
}

function loadMockFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    // A FIFO or device would block the read for good.
    if (!fs.statSync(file).isFile()) {
      throw Object.assign(new Error("not a file"), {
        code: "not a regular file",
      });
    }
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw new EntrypointError(
      `cannot read the mock file ${file} (${code}); check --mock`,
      ExitCode.config,
    );
  }
  const entries = parseMock(text, file);
  if (
    entries === null ||
    typeof entries !== "object" ||
    Array.isArray(entries)
  ) {
    throw new EntrypointError(
      `the mock file ${file} must hold a map of references to secrets`,
      ExitCode.config,
    );
  }
  return entries as Record<string, unknown>;
}

// JSON keeps the text of its numbers; YAML gives plain numbers. The parsers'
// own messages quote the file, which may hold real values: only the line is told.
function parseMock(text: string, file: string): unknown {
  try {
    return file.endsWith(".json")
      ? parseJsonKeepingNumbers(text)
      : integersAsText(parseYaml(text, { intAsBigInt: true }));
  } catch (error) {
    const line = (error as { linePos?: Array<{ line: number }> }).linePos?.[0]
      ?.line;
    const where = line === undefined ? "" : ` near line ${line}`;
    throw new EntrypointError(
      `the mock file ${file} is not valid ${file.endsWith(".json") ? "JSON" : "YAML"}${where}`,
      ExitCode.config,
    );
  }
}
