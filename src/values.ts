/**
 * From a secret to a value: the selector picks a part, the encoding option
 * decodes it. Values are bytes until they are placed, so that binary
 * secrets survive the way to a file.
 */
import { isUtf8 } from "node:buffer";

import type { Secret } from "../providers/types.ts";
import { invalidError, notFoundError } from "./errors.ts";
import type { Reference, Selector } from "./references.ts";

// JSON.rawJSON and the reviver's source text (TC39 "JSON.parse source text
// access") keep a number's text as written: 1000000 stays 1000000 and
// 12345678901234567890 keeps its digits.
interface RawJson {
  rawJSON: string;
}
const json = JSON as unknown as {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
  parse(
    text: string,
    reviver: (
      key: string,
      value: unknown,
      context: { source?: string },
    ) => unknown,
  ): unknown;
};

/** Parses JSON and keeps the text of every number. */
export function parseJsonKeepingNumbers(text: string): unknown {
  return json.parse(text, (_key, value, context) =>
    typeof value === "number" && context.source !== undefined
      ? json.rawJSON(context.source)
      : value,
  );
}

/**
 * The value a reference asks for, as bytes. Throws exit 66 for a key that
 * is not there and exit 65 for a selector that cannot apply or a bad
 * encoding; messages describe the shape of the secret, never its content.
 */
export function selectValue(secret: Secret, reference: Reference): Buffer {
  const selected =
    reference.selector === undefined
      ? wholeSecret(secret)
      : leafBytes(select(structured(secret), reference.selector));
  if (reference.options.encoding === "base64") return decodeBase64(selected);

  return selected;
}

function wholeSecret(secret: Secret): Buffer {
  switch (secret.kind) {
    case "text":
      return Buffer.from(secret.text, "utf8");
    case "bytes":
      return secret.bytes;
    case "data":
      return Buffer.from(JSON.stringify(secret.data), "utf8");
  }
}

function structured(secret: Secret): unknown {
  if (secret.kind === "data") return secret.data;

  const text = secret.kind === "text" ? secret.text : utf8OrThrow(secret.bytes);
  try {
    return parseJsonKeepingNumbers(text);
  } catch {
    // JSON.parse's message quotes the text it failed on: never pass it on.
    throw invalidError("the secret is not JSON, so a selector cannot apply");
  }
}

function utf8OrThrow(bytes: Buffer): string {
  if (!isUtf8(bytes)) {
    throw invalidError("the secret is binary, so a selector cannot apply");
  }
  return bytes.toString("utf8");
}

function select(document: unknown, selector: Selector): unknown {
  if (selector.kind === "key") return child(document, selector.key);

  let node = document;
  for (const [depth, token] of selector.tokens.entries()) {
    const at = "/" + selector.tokens.slice(0, depth).join("/");
    node = child(node, token, at);
  }
  return node;
}

// `at` is the JSON pointer of `node`, for messages; undefined for a key
// selector, whose node is the whole secret.
function child(node: unknown, key: string, at?: string): unknown {
  const where = at === undefined ? "" : ` at ${at === "/" ? "the top" : at}`;
  if (Array.isArray(node)) {
    const index = /^(0|[1-9]\d*)$/.test(key) ? Number(key) : -1;
    if (index < 0 || index >= node.length) {
      throw notFoundError(
        `the secret has no item ${JSON.stringify(key)}${where}: an array of ${node.length}`,
      );
    }
    return node[index];
  }
  if (node === null || typeof node !== "object" || json.isRawJSON(node)) {
    throw invalidError(
      `the secret has no object${where} to select ${JSON.stringify(key)} from`,
    );
  }
  if (!Object.hasOwn(node, key)) {
    throw notFoundError(
      `the secret has no key ${JSON.stringify(key)}${where}; its keys${where} are ${keyList(node)}`,
    );
  }
  return (node as Record<string, unknown>)[key];
}

// Key names are not secret; they help the user see a typo.
function keyList(node: object): string {
  const keys = Object.keys(node);
  if (keys.length === 0) return "none";

  const shown = keys.slice(0, 20).map((key) => JSON.stringify(key));
  return shown.join(", ") + (keys.length > 20 ? ", ..." : "");
}

function leafBytes(leaf: unknown): Buffer {
  if (typeof leaf === "string") return Buffer.from(leaf, "utf8");
  if (json.isRawJSON(leaf)) return Buffer.from(leaf.rawJSON, "utf8");

  return Buffer.from(JSON.stringify(leaf) ?? "null", "utf8");
}

function decodeBase64(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1").replace(/\s+$/, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw invalidError("the value is not valid base64 (encoding=base64)");
  }
  return Buffer.from(text, "base64");
}

/**
 * Why a value cannot enter the environment, or undefined when it can:
 * execve takes C strings, so no NUL, and values are passed as UTF-8.
 */
export function environmentProblem(value: Buffer): string | undefined {
  if (value.includes(0)) return "holds a NUL byte";
  if (!isUtf8(value)) return "is binary (not UTF-8)";

  return undefined;
}
