/**
 * Render mode: the resolved values go into files in a folder, once for an
 * init container, or again and again with --refresh for a native sidecar,
 * which rewrites only what changed. With a command, the command is exec'd
 * afterwards, without the rendered variables in its environment: they are
 * in the files now.
 */
import { setTimeout as sleep } from "node:timers/promises";

import { usageError } from "./errors.ts";
import { logRefreshFailure, type Logger } from "./logging.ts";
import type { Options } from "./options.ts";
import { renderSecrets } from "./render.ts";
import type { Resolution } from "./resolve.ts";
import type { Plan } from "./scan.ts";
import type { TargetUser } from "./users.ts";

export interface RenderInput {
  plan: Plan;
  options: Options;
  logger: Logger;
  target?: TargetUser;
  resolve: () => Promise<Resolution>;
  launch: (resolution: Resolution) => never;
}

/** Renders, refreshes or execs; returns the exit code when it stops. */
export async function renderMode(input: RenderInput): Promise<number> {
  const { options } = input;
  if (options.refreshMs !== undefined && options.command.length > 0) {
    throw usageError(
      "--refresh keeps rendering and cannot exec a command; run the command in its own container, or drop --refresh",
    );
  }
  const resolution = await input.resolve();
  await render(resolution, input);
  if (options.refreshMs !== undefined)
    return refreshLoop(options.refreshMs, input);
  if (options.command.length > 0) input.launch(resolution);

  return 0;
}

async function render(
  resolution: Resolution,
  { plan, options, logger, target }: RenderInput,
) {
  const values = renderedValues(plan, resolution);
  const { changed } = await renderSecrets(
    values,
    {
      dir: options.render!,
      format: options.renderFormat,
      mode: options.renderMode,
      ...(target ? { uid: target.uid, gid: target.gid } : {}),
    },
    logger,
  );
  return changed;
}

/** Each variable's value as bytes; binary values are fine in files. */
export function renderedValues(
  plan: Plan,
  resolution: Resolution,
): Map<string, Buffer> {
  const values = new Map<string, Buffer>();
  for (const binding of plan.bindings) {
    const parts: Buffer[] = [];
    let absent = false;
    for (const part of binding.template) {
      if (typeof part === "string") {
        parts.push(Buffer.from(part, "utf8"));
        continue;
      }
      const result = resolution.results.find(
        (candidate) =>
          candidate.variable === binding.variable &&
          candidate.reference === part,
      )!;
      if (result.outcome.status !== "ok") absent = true;
      else parts.push(result.outcome.value);
    }
    if (!absent) values.set(binding.variable, Buffer.concat(parts));
  }
  return values;
}

// A failed round keeps the files of the last good one: the application goes
// on with values that were right a moment ago rather than with none.
async function refreshLoop(
  intervalMs: number,
  input: RenderInput,
): Promise<number> {
  const stop = new AbortController();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => stop.abort());
  }
  while (!stop.signal.aborted) {
    try {
      await sleep(intervalMs, undefined, { signal: stop.signal });
    } catch {
      break;
    }
    try {
      await render(await input.resolve(), input);
    } catch (error) {
      logRefreshFailure(
        input.logger,
        error,
        "keeping the files of the last good round",
      );
    }
  }
  return 0;
}
