/**
 * The command's environment: the original one with references replaced,
 * minus the entrypoint's own settings, Vault's settings and credentials and
 * consumed NAME_FILE variables, unless the user keeps them.
 */
import path from "node:path";

import { invalidError } from "./errors.ts";
import { envPrefix } from "./options.ts";
import type { Reference } from "./references.ts";
import type { Resolution } from "./resolve.ts";
import type { Binding } from "./scan.ts";
import { environmentProblem } from "./values.ts";
import type { ValueFile } from "./value-files.ts";

export interface Assembled {
  /** Each binding's final value; undefined leaves the variable unset. */
  values: Map<string, string | undefined>;
  files: ValueFile[];
}

/**
 * Puts each binding's values together: literal text, values and the paths
 * of `as=file` values. Call only when no reference failed.
 */
export function assembleValues(
  bindings: readonly Binding[],
  resolution: Resolution,
  filesDir: string,
): Assembled {
  const assembled: Assembled = { values: new Map(), files: [] };
  const outcomes = new Map(
    resolution.results.map((result) => [
      resultKey(result.variable, result.reference),
      result.outcome,
    ]),
  );
  for (const binding of bindings) {
    assembled.values.set(
      binding.variable,
      assembleBinding(binding, outcomes, filesDir, assembled.files),
    );
  }
  return assembled;
}

// The file is named after the variable, so the name must be one that can
// only name a file inside the folder: no "/", no "..", no "." that could
// meet the ".N" of an inline reference's file.
const fileVariablePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkFileVariable(variable: string, reference: Reference) {
  if (fileVariablePattern.test(variable)) return;

  throw invalidError(
    `${variable} cannot take a value as a file (as=file), since its name is used as the file's name: use a name of letters, digits and _ that does not start with a digit`,
    { variable, reference: reference.text },
  );
}

function resultKey(variable: string, reference: Reference) {
  return `${variable}\u0000${reference.text}`;
}

function assembleBinding(
  binding: Binding,
  outcomes: Map<string, Resolution["results"][number]["outcome"]>,
  filesDir: string,
  files: ValueFile[],
): string | undefined {
  const references = binding.template.filter(
    (part) => typeof part !== "string",
  );
  let text = "";
  for (const part of binding.template) {
    if (typeof part === "string") {
      text += part;
      continue;
    }
    const outcome = outcomes.get(resultKey(binding.variable, part))!;
    if (outcome.status !== "ok") return undefined;

    if (part.options.as === "file") {
      checkFileVariable(binding.variable, part);
      const name =
        references.length === 1
          ? binding.variable
          : `${binding.variable}.${references.indexOf(part)}`;
      const filePath = path.join(filesDir, name);
      files.push({
        variable: binding.variable,
        path: filePath,
        value: outcome.value,
      });
      text += filePath;
      continue;
    }
    const problem = environmentProblem(outcome.value);
    if (problem !== undefined) {
      throw invalidError(
        `the value of ${binding.variable} from ${part.text} ${problem}, which the environment cannot carry; add the option as=file to the reference to get it as a file`,
        { variable: binding.variable, reference: part.text },
      );
    }
    text += outcome.value.toString("utf8");
  }
  return text;
}

export interface EnvironmentSettings {
  keepEnv: readonly string[];
  consumed: readonly string[];
  /** HOME, USER, LOGNAME of the target user; undefined removes. */
  userVariables?: Record<string, string | undefined>;
}

/** The environment the command gets. */
export function commandEnvironment(
  original: Readonly<Record<string, string | undefined>>,
  values: ReadonlyMap<string, string | undefined>,
  settings: EnvironmentSettings,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(original)) {
    if (value === undefined || isRemoved(name, settings)) continue;

    env[name] = value;
  }
  const replaced = new Map([
    ...Object.entries(settings.userVariables ?? {}),
    ...values,
  ]);
  for (const [name, value] of replaced) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

function isRemoved(name: string, settings: EnvironmentSettings) {
  if (settings.keepEnv.includes(name)) return false;

  return (
    name.startsWith(envPrefix) ||
    name.startsWith("VAULT_") ||
    settings.consumed.includes(name)
  );
}
