/**
 * The reference grammar. A reference names a secret and, optionally, a part
 * of it:
 *
 *   reference = scheme ":" locator [ "?" option *( "&" option ) ]
 *               [ "#" selector ]
 *   scheme    = "vault" | "awssm" | "file"
 *   option    = name "=" value
 *   selector  = key | "/" json-pointer (RFC 6901)
 *
 * Two older spellings are accepted for people who migrate: bank-vaults'
 * `vault:PATH#KEY#VERSION` and the ECS `valueFrom` ARN whose last fields are
 * `:json-key:version-stage:version-id`.
 *
 * Some values look like references but are not, and are left untouched:
 * Vault transit ciphertext (`vault:v1:...`), relative `file:` URLs such as
 * SQLite's `file:./dev.db`, and `file:` paths outside the file roots.
 */
import path from "node:path";

import { invalidError } from "./errors.ts";

export const schemes = ["vault", "awssm", "file"] as const;

export type Scheme = (typeof schemes)[number];

/** Which part of a secret a reference wants. */
export type Selector =
  | { kind: "key"; key: string }
  | { kind: "pointer"; pointer: string; tokens: string[] };

/** Options every scheme takes. */
export interface CommonOptions {
  /** A missing secret or key leaves the variable unset instead of failing. */
  optional: boolean;
  /** `file`: the value goes into a file and the variable holds its path. */
  as: "env" | "file";
  /** `base64`: the value is decoded before use. */
  encoding: "none" | "base64";
}

interface ReferenceBase {
  /** The reference as the user wrote it (it holds no secret). */
  text: string;
  options: CommonOptions;
  selector?: Selector;
}

export interface VaultReference extends ReferenceBase {
  scheme: "vault";
  /** The path as written, with or without KV v2's `data/`. */
  path: string;
  version?: number;
}

export interface AwsReference extends ReferenceBase {
  scheme: "awssm";
  /** A secret name or ARN, as `GetSecretValue` takes it. */
  secretId: string;
  /** The region named by an ARN. */
  region?: string;
  versionStage?: string;
  versionId?: string;
}

export interface FileReference extends ReferenceBase {
  scheme: "file";
  /** An absolute, normalised path inside one of the file roots. */
  path: string;
}

export type Reference = VaultReference | AwsReference | FileReference;

/** What the parser needs to know about the run. */
export interface GrammarContext {
  fileRoots: readonly string[];
}

const commonOptionNames = ["optional", "as", "encoding"];
const schemeOptionNames: Record<Scheme, string[]> = {
  vault: ["version"],
  awssm: ["version-stage", "version-id"],
  file: [],
};

// Secret names allowed by AWS Secrets Manager's CreateSecret.
const awsNamePattern = /^[A-Za-z0-9/_+=.@-]+$/;

/** True when `raw` starts with one of our schemes. */
export function hasScheme(raw: string): boolean {
  return schemes.some((scheme) => raw.startsWith(`${scheme}:`));
}

/**
 * Parses `raw` as a reference. Returns undefined for values that only look
 * like one (see the file's comment); throws an exit-65 error for a reference
 * that is malformed.
 */
export function parseReference(
  raw: string,
  context: GrammarContext,
): Reference | undefined {
  const scheme = schemes.find((name) => raw.startsWith(`${name}:`));
  if (scheme === undefined) return undefined;

  const body = raw.slice(scheme.length + 1);
  if (scheme === "vault" && /^v\d+:/.test(body)) return undefined;
  if (scheme === "file" && !isInsideRoots(body, context.fileRoots)) {
    return undefined;
  }

  const fail = (why: string) =>
    invalidError(`malformed reference ${raw}: ${why}`);
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) {
    throw fail("it contains whitespace or a control character");
  }

  const { locator, rawOptions, rawSelector } = splitReference(body);
  if (locator === "") throw fail(`the ${scheme} locator is empty`);

  const options = parseOptions(rawOptions, scheme, fail);
  const base = {
    text: raw,
    options: commonOptions(options, fail),
  };
  switch (scheme) {
    case "vault":
      return vaultReference(base, locator, options, rawSelector, fail);
    case "awssm":
      return awsReference(base, locator, options, rawSelector, fail);
    case "file":
      return fileReference(base, locator, rawSelector, context, fail);
  }
}

type Fail = (why: string) => Error;

function splitReference(body: string) {
  const hash = body.indexOf("#");
  const beforeSelector = hash === -1 ? body : body.slice(0, hash);
  const rawSelector = hash === -1 ? undefined : body.slice(hash + 1);
  const question = beforeSelector.indexOf("?");
  return {
    locator:
      question === -1 ? beforeSelector : beforeSelector.slice(0, question),
    rawOptions:
      question === -1 ? undefined : beforeSelector.slice(question + 1),
    rawSelector,
  };
}

function parseOptions(
  rawOptions: string | undefined,
  scheme: Scheme,
  fail: Fail,
): Map<string, string> {
  const options = new Map<string, string>();
  if (rawOptions === undefined) return options;

  const valid = [...commonOptionNames, ...schemeOptionNames[scheme]];
  for (const pair of rawOptions.split("&")) {
    const equals = pair.indexOf("=");
    const name = equals === -1 ? pair : pair.slice(0, equals);
    const value = equals === -1 ? "" : pair.slice(equals + 1);
    if (!valid.includes(name)) {
      throw fail(
        `unknown option "${name}"; ${scheme} references take ${valid.join(", ")}`,
      );
    }
    if (value === "") throw fail(`option ${name} needs a value (${name}=...)`);
    if (options.has(name)) throw fail(`option ${name} is given twice`);

    options.set(name, value);
  }
  return options;
}

function commonOptions(
  options: Map<string, string>,
  fail: Fail,
): CommonOptions {
  return {
    optional: oneOf(options, "optional", ["false", "true"], fail) === "true",
    as: oneOf(options, "as", ["env", "file"], fail) as CommonOptions["as"],
    encoding: oneOf(
      options,
      "encoding",
      ["none", "base64"],
      fail,
    ) as CommonOptions["encoding"],
  };
}

// The first of `valid` is the default.
function oneOf(
  options: Map<string, string>,
  name: string,
  valid: string[],
  fail: Fail,
): string {
  const value = options.get(name) ?? valid[0]!;
  if (!valid.includes(value)) {
    throw fail(`option ${name}=${value} is not one of ${valid.join(", ")}`);
  }
  return value;
}

function vaultReference(
  base: ReferenceBase,
  locator: string,
  options: Map<string, string>,
  rawSelector: string | undefined,
  fail: Fail,
): VaultReference {
  if (locator.startsWith("/") || locator.endsWith("/")) {
    throw fail(
      "a vault path has no leading or trailing slash (vault:secret/app)",
    );
  }
  if (
    locator.split("/").some((segment) => segment === "" || segment === "..")
  ) {
    throw fail("the vault path has an empty or '..' segment");
  }

  let version = parseVersion(options.get("version"), fail);
  let selectorText = rawSelector;
  // bank-vaults: vault:PATH#KEY#VERSION
  const second = rawSelector?.indexOf("#") ?? -1;
  if (rawSelector !== undefined && second !== -1) {
    if (second === 0) throw fail("the selector after # is empty");
    if (version !== undefined) {
      throw fail("the version is given both as ?version= and as #KEY#VERSION");
    }
    version = parseVersion(rawSelector.slice(second + 1), fail);
    selectorText = rawSelector.slice(0, second);
  }

  return {
    ...base,
    scheme: "vault",
    path: locator,
    ...(version === undefined ? {} : { version }),
    ...selectorField(selectorText, fail),
  };
}

function parseVersion(raw: string | undefined, fail: Fail) {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,9}$/.test(raw)) {
    throw fail(`version "${raw}" is not a positive whole number`);
  }
  return Number(raw);
}

function awsReference(
  base: ReferenceBase,
  locator: string,
  options: Map<string, string>,
  rawSelector: string | undefined,
  fail: Fail,
): AwsReference {
  const stage = options.get("version-stage");
  const id = options.get("version-id");
  const reference: AwsReference = {
    ...base,
    scheme: "awssm",
    secretId: locator,
    ...(stage === undefined ? {} : { versionStage: stage }),
    ...(id === undefined ? {} : { versionId: id }),
    ...selectorField(rawSelector, fail),
  };
  if (!locator.startsWith("arn:")) {
    if (!awsNamePattern.test(locator)) {
      throw fail(
        "a secret name may hold only letters, digits and the characters /_+=.@-",
      );
    }
    return reference;
  }
  return withArnFields(reference, locator, fail);
}

// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME, then, in the ECS
// valueFrom form, :json-key:version-stage:version-id with empty fields allowed.
function withArnFields(
  reference: AwsReference,
  arn: string,
  fail: Fail,
): AwsReference {
  const fields = arn.split(":");
  const [, partition, service, region, account, type, name] = fields;
  if (
    fields.length < 7 ||
    fields.length > 10 ||
    !partition ||
    service !== "secretsmanager" ||
    !region ||
    !/^\d{12}$/.test(account ?? "") ||
    type !== "secret" ||
    !name
  ) {
    throw fail(
      "expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, optionally followed by :json-key:version-stage:version-id",
    );
  }

  const [jsonKey, stage, id] = fields.slice(7);
  const conflict = (what: string) =>
    fail(`${what} is given both in the ARN and elsewhere in the reference`);
  if (jsonKey && reference.selector) throw conflict("the JSON key");
  if (stage && reference.versionStage) throw conflict("the version stage");
  if (id && reference.versionId) throw conflict("the version id");

  return {
    ...reference,
    secretId: fields.slice(0, 7).join(":"),
    region,
    ...(jsonKey ? { selector: { kind: "key" as const, key: jsonKey } } : {}),
    ...(stage ? { versionStage: stage } : {}),
    ...(id ? { versionId: id } : {}),
  };
}

function fileReference(
  base: ReferenceBase,
  locator: string,
  rawSelector: string | undefined,
  context: GrammarContext,
  fail: Fail,
): FileReference {
  const normal = path.posix.normalize(locator);
  if (normal !== locator || !isInsideRoots(normal, context.fileRoots)) {
    throw fail(
      `the path is not a plain absolute path inside the file roots (${context.fileRoots.join(", ")})`,
    );
  }
  return {
    ...base,
    scheme: "file",
    path: normal,
    ...selectorField(rawSelector, fail),
  };
}

/**
 * True when the path part of a `file:` body lies under one of the roots. The
 * check is on the text; the file provider checks the real path again, since
 * a symbolic link may lead elsewhere.
 */
export function isInsideRoots(body: string, roots: readonly string[]): boolean {
  const end = body.search(/[?#]/);
  const filePath = end === -1 ? body : body.slice(0, end);
  return roots.some((root) => isUnder(filePath, root));
}

/** True when `filePath` lies below the folder `root` (which may be `/`). */
export function isUnder(filePath: string, root: string): boolean {
  return (
    filePath.startsWith(root === "/" ? "/" : `${root}/`) && filePath !== root
  );
}

function selectorField(
  raw: string | undefined,
  fail: Fail,
): { selector?: Selector } {
  if (raw === undefined) return {};
  if (raw === "") throw fail("the selector after # is empty");
  if (raw.includes("#")) throw fail("the selector holds a second #");
  if (/\?[a-z-]+=/.test(raw) && !raw.startsWith("/")) {
    throw fail(
      "options go before the selector: scheme:locator?option=value#key",
    );
  }
  if (!raw.startsWith("/")) return { selector: { kind: "key", key: raw } };

  return {
    selector: {
      kind: "pointer",
      pointer: raw,
      tokens: pointerTokens(raw, fail),
    },
  };
}

// RFC 6901 section 3: "~1" stands for "/", "~0" for "~", and no other "~".
function pointerTokens(pointer: string, fail: Fail): string[] {
  if (/~[^01]|~$/.test(pointer)) {
    throw fail(`JSON pointer ${pointer} has a "~" that is not ~0 or ~1`);
  }
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/**
 * A value with inline references: literal text and references in order.
 * A whole-value reference is a template of one reference.
 */
export type Template = Array<string | Reference>;

/**
 * Parses a variable's value. Returns undefined when the value holds no
 * reference, so that the variable is passed on exactly as it was.
 */
export function parseValue(
  value: string,
  context: GrammarContext,
): Template | undefined {
  const whole = parseReference(value, context);
  if (whole !== undefined) return [whole];
  if (!value.includes("${")) return undefined;

  return parseInline(value, context);
}

// Inline references are `${reference}`; `$${` before a scheme keeps a literal
// `${`. Any other `${...}` is not ours (a shell or template variable) and is
// left as it is.
function parseInline(value: string, context: GrammarContext) {
  const template: Template = [];
  let text = "";
  let found = false;
  let index = 0;
  while (index < value.length) {
    const open = value.indexOf("${", index);
    if (open === -1) break;

    const rest = value.slice(open + 2);
    if (!hasScheme(rest)) {
      text += value.slice(index, open + 2);
      index = open + 2;
      continue;
    }
    if (open > 0 && value[open - 1] === "$") {
      text += value.slice(index, open - 1) + "${";
      index = open + 2;
      found = true;
      continue;
    }
    const close = value.indexOf("}", open);
    const inner = close === -1 ? "" : value.slice(open + 2, close);
    if (close === -1) {
      throw invalidError(
        `malformed reference ${value.slice(open)}: no closing }`,
      );
    }
    if (inner.includes("${")) {
      throw invalidError(
        `malformed reference \${${inner}}: references cannot be nested`,
      );
    }
    const reference = parseInlineReference(inner, context);
    if (reference === undefined) {
      text += value.slice(index, close + 1);
    } else {
      template.push(text + value.slice(index, open), reference);
      text = "";
      found = true;
    }
    index = close + 1;
  }
  template.push(text + value.slice(index));
  if (!found) return undefined;

  return template.filter((part) => part !== "");
}

// Inside ${...} the user asked for a reference, so a file path outside the
// roots is an error rather than text to pass on.
function parseInlineReference(inner: string, context: GrammarContext) {
  const reference = parseReference(inner, context);
  if (
    reference === undefined &&
    inner.startsWith("file:/") &&
    !isInsideRoots(inner.slice("file:".length), context.fileRoots)
  ) {
    throw invalidError(
      `malformed reference ${inner}: the path is outside the file roots (${context.fileRoots.join(", ")}); add its folder to SECRET_ENTRYPOINT_FILE_ROOTS`,
    );
  }
  return reference;
}

/**
 * The identity of the secret a reference reads: references with the same
 * identity share one read.
 */
export function secretIdentity(reference: Reference): string {
  switch (reference.scheme) {
    case "vault":
      return `vault:${reference.path}@${reference.version ?? "latest"}`;
    case "awssm":
      return `awssm:${reference.secretId}@${reference.versionStage ?? ""}@${reference.versionId ?? ""}`;
    case "file":
      return `file:${reference.path}`;
  }
}

/** The reference without options and selector, as a mock file keys it. */
export function mockKey(reference: Reference): string {
  switch (reference.scheme) {
    case "vault":
      return `vault:${reference.path}`;
    case "awssm":
      return `awssm:${reference.secretId}`;
    case "file":
      return `file:${reference.path}`;
  }
}
