/**
 * Finds the references in an environment. Nothing here reads a secret: a
 * malformed reference is rejected before any provider is asked.
 */
import { invalidError } from "./errors.ts";
import {
  hasScheme,
  isInsideRoots,
  parseReference,
  parseValue,
  type GrammarContext,
  type Template,
} from "./references.ts";

/** A variable whose value the entrypoint builds. */
export interface Binding {
  variable: string;
  template: Template;
}

export interface Plan {
  bindings: Binding[];
  /** `NAME_FILE` variables that were read, to be removed from the command's environment. */
  consumed: string[];
  /** Variables that look like references but are left as they are. */
  passedOn: Array<{ variable: string; why: string }>;
}

export interface ScanSettings extends GrammarContext {
  skip: readonly string[];
  fileVars: readonly string[];
  keepEnv: readonly string[];
}

// SECRET_ENTRYPOINT_SKIP=* scans nothing: the supervisor hands its command
// an environment whose references are resolved already.
function isSkipped(variable: string, settings: ScanSettings): boolean {
  return settings.skip.includes("*") || settings.skip.includes(variable);
}

// The entrypoint's and Vault's settings are configuration, not the
// command's environment: VAULT_ADDR=vault:8200 is not a reference.
function isSetting(variable: string, settings: ScanSettings): boolean {
  const own =
    variable.startsWith("SECRET_ENTRYPOINT_") || variable.startsWith("VAULT_");
  return own && !settings.keepEnv.includes(variable);
}

/** Scans every variable of `env` except the skipped ones. */
export function scanEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  settings: ScanSettings,
): Plan {
  const plan: Plan = { bindings: [], consumed: [], passedOn: [] };
  for (const [variable, value] of Object.entries(env)) {
    if (value === undefined || isSkipped(variable, settings)) continue;
    if (isSetting(variable, settings)) continue;

    const template = parseVariable(variable, value, settings);
    if (template !== undefined) {
      plan.bindings.push({ variable, template });
    } else if (looksLikeReference(value)) {
      plan.passedOn.push({
        variable,
        why: "the value looks like a reference but is passed on unchanged: a reference starts with vault:, awssm: or file: in lower case, with nothing before it",
      });
    } else if (value.startsWith("file:/")) {
      plan.passedOn.push({
        variable,
        why: `${value} is outside the file roots (${settings.fileRoots.join(", ")}), so it is passed on unchanged; add its folder to SECRET_ENTRYPOINT_FILE_ROOTS to read it`,
      });
    }
  }
  addFileVariables(env, settings, plan);
  return plan;
}

// Leading white space or a scheme in capitals: likely a reference mistyped.
function looksLikeReference(value: string): boolean {
  return /^\s*(vault|awssm|file):/i.test(value) && !hasScheme(value);
}

function parseVariable(
  variable: string,
  value: string,
  settings: ScanSettings,
): Template | undefined {
  try {
    return parseValue(value, settings);
  } catch (error) {
    if (error instanceof Error) {
      throw invalidError(`${variable}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

// The convention of the official images: POSTGRES_PASSWORD_FILE names a file
// whose content becomes POSTGRES_PASSWORD. Opt-in, since a variable that
// merely ends in _FILE (LOG_FILE) is usually not a secret.
function addFileVariables(
  env: Readonly<Record<string, string | undefined>>,
  settings: ScanSettings,
  plan: Plan,
) {
  if (settings.fileVars.length === 0) return;

  const everyName = settings.fileVars.includes("*");
  for (const [fileVariable, filePath] of Object.entries(env)) {
    const match = /^(.+)_FILE$/.exec(fileVariable);
    if (!match || filePath === undefined) continue;
    if (isSkipped(fileVariable, settings)) continue;
    if (isSetting(fileVariable, settings)) continue;

    const variable = match[1]!;
    const listed = settings.fileVars.includes(variable);
    if (
      !listed &&
      !(everyName && isInsideRoots(filePath, settings.fileRoots))
    ) {
      continue;
    }
    plan.bindings.push({
      variable,
      template: [
        fileVariableReference(variable, fileVariable, filePath, env, settings),
      ],
    });
    plan.consumed.push(fileVariable);
  }
}

function fileVariableReference(
  variable: string,
  fileVariable: string,
  filePath: string,
  env: Readonly<Record<string, string | undefined>>,
  settings: ScanSettings,
) {
  if (env[variable] !== undefined) {
    throw invalidError(
      `both ${variable} and ${fileVariable} are set; unset one of them`,
    );
  }
  if (/[?#]/.test(filePath)) {
    throw invalidError(
      `${fileVariable}: the path ${filePath} holds ? or #, which a file path here may not`,
    );
  }
  const reference = parseReference(`file:${filePath}`, settings);
  if (reference === undefined) {
    throw invalidError(
      `${fileVariable}: ${filePath} is not an absolute path inside the file roots (${settings.fileRoots.join(", ")}); add its folder to SECRET_ENTRYPOINT_FILE_ROOTS`,
    );
  }
  return reference;
}
