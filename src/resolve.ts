/**
 * Resolution: every distinct secret is read once, the providers in
 * parallel, all under one deadline; then each reference takes its value
 * from its secret.
 */
import { loadMock, loadProvider } from "../providers/index.ts";
import type {
  Lease,
  Provider,
  ProviderSetup,
  ReadContext,
  ReadResult,
  SecretRequest,
} from "../providers/types.ts";
import { EntrypointError, ExitCode } from "./errors.ts";
import { logEvent, type Logger } from "./logging.ts";
import { secretIdentity, type Reference } from "./references.ts";
import type { Binding } from "./scan.ts";
import { selectValue } from "./values.ts";

/** What became of one reference of one variable. */
export type Outcome =
  | { status: "ok"; value: Buffer }
  /** An optional reference whose secret or key does not exist. */
  | { status: "absent"; error: EntrypointError }
  | { status: "failed"; error: EntrypointError };

export interface ReferenceResult {
  variable: string;
  reference: Reference;
  provider: string;
  outcome: Outcome;
}

export interface Resolution {
  results: ReferenceResult[];
  leases: Lease[];
  durationMs: number;
}

export interface ResolveSettings {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  timeoutMs: number;
  fileRoots: readonly string[];
  fileTrim: boolean;
  /** Answer every reference from this mock file. */
  mock?: string;
}

/** Resolves every reference of `bindings`. Never throws for a single secret. */
export async function resolveBindings(
  bindings: readonly Binding[],
  settings: ResolveSettings,
): Promise<Resolution> {
  const started = performance.now();
  const pairs = bindings.flatMap((binding) =>
    binding.template
      .filter((part) => typeof part !== "string")
      .map((reference) => ({ variable: binding.variable, reference })),
  );
  const mock = await openMock(settings);
  const providerOf = (reference: Reference) =>
    mock?.answers(reference) ? "mock" : reference.scheme;
  const groups = groupRequests(
    pairs.map((pair) => pair.reference),
    providerOf,
  );
  const reads = await readAll(groups, settings, mock);

  const results = pairs.map(({ variable, reference }) => {
    const provider = providerOf(reference);
    const read = reads.get(secretIdentity(reference))!;
    return {
      variable,
      reference,
      provider,
      outcome: outcomeOf(variable, reference, read),
    };
  });
  const leases = [...reads.values()].flatMap((read) =>
    read.ok && read.secret.lease ? [read.secret.lease] : [],
  );
  return {
    results,
    leases,
    durationMs: Math.round(performance.now() - started),
  };
}

async function openMock(settings: ResolveSettings) {
  if (settings.mock === undefined) return undefined;

  const { createMock } = await loadMock();
  return createMock(settings.mock);
}

function providerSetup(settings: ResolveSettings): ProviderSetup {
  return {
    env: settings.env,
    logger: settings.logger,
    fileRoots: settings.fileRoots,
    fileTrim: settings.fileTrim,
  };
}

function groupRequests(
  references: readonly Reference[],
  providerOf: (reference: Reference) => string,
): Map<string, SecretRequest[]> {
  const groups = new Map<string, SecretRequest[]>();
  const seen = new Set<string>();
  for (const reference of references) {
    const identity = secretIdentity(reference);
    if (seen.has(identity)) continue;

    seen.add(identity);
    const name = providerOf(reference);
    const group = groups.get(name) ?? [];
    group.push({ identity, reference });
    groups.set(name, group);
  }
  return groups;
}

/** What every provider's reads share in one resolution. */
interface ReadRun {
  settings: ResolveSettings;
  context: ReadContext;
  mock: Provider | undefined;
}

async function readAll(
  groups: Map<string, SecretRequest[]>,
  settings: ResolveSettings,
  mock: Provider | undefined,
): Promise<Map<string, ReadResult>> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), settings.timeoutMs);
  const context: ReadContext = {
    signal: controller.signal,
    deadline: Date.now() + settings.timeoutMs,
    logger: settings.logger,
  };
  try {
    const answers = await Promise.all(
      [...groups].map(([name, requests]) =>
        readGroup(name, requests, { settings, context, mock }),
      ),
    );
    return new Map(answers.flatMap((answer) => [...answer]));
  } finally {
    clearTimeout(timer);
  }
}

async function readGroup(
  name: string,
  requests: SecretRequest[],
  { settings, context, mock }: ReadRun,
): Promise<Map<string, ReadResult>> {
  let provider: Provider | undefined;
  try {
    provider = await createProvider(name, settings, mock);
    const answers = await withDeadline(
      provider.read(requests, context),
      name,
      context,
      settings,
    );
    return completeAnswers(requests, answers, name);
  } catch (error) {
    const failure = asEntrypointError(error, name);
    return new Map(
      requests.map((request) => [
        request.identity,
        { ok: false, error: failure },
      ]),
    );
  } finally {
    await closeProvider(provider, context);
  }
}

async function createProvider(
  name: string,
  settings: ResolveSettings,
  mock: Provider | undefined,
) {
  if (name === "mock") return mock!;

  logEvent(
    settings.logger,
    "debug",
    "provider.load",
    { provider: name },
    `loading the ${name} provider`,
  );
  const create = await loadProvider(name as Reference["scheme"]);
  return create(providerSetup(settings));
}

// The deadline holds even for a provider that ignores its abort signal.
function withDeadline<T>(
  work: Promise<T>,
  name: string,
  context: ReadContext,
  settings: ResolveSettings,
): Promise<T> {
  const expired = new Promise<never>((_, reject) => {
    const fail = () =>
      reject(
        new EntrypointError(
          `the ${name} provider did not answer within the deadline of ${settings.timeoutMs} ms; raise --timeout (SECRET_ENTRYPOINT_TIMEOUT) or check that the provider is reachable`,
          ExitCode.unavailable,
        ),
      );
    if (context.signal.aborted) fail();
    context.signal.addEventListener("abort", fail, { once: true });
  });
  return Promise.race([work, expired]);
}

function completeAnswers(
  requests: SecretRequest[],
  answers: Map<string, ReadResult>,
  name: string,
) {
  for (const request of requests) {
    if (!answers.has(request.identity)) {
      answers.set(request.identity, {
        ok: false,
        error: new EntrypointError(
          `the ${name} provider gave no answer for this secret`,
          ExitCode.unavailable,
        ),
      });
    }
  }
  return answers;
}

function asEntrypointError(error: unknown, name: string): EntrypointError {
  if (error instanceof EntrypointError) return error;

  // Not ours: a bug in a provider. Its message may quote a response, so
  // only the kind of error is told.
  const kind = error instanceof Error ? error.name : typeof error;
  return new EntrypointError(
    `the ${name} provider failed unexpectedly (${kind}); run with SECRET_ENTRYPOINT_LOG_LEVEL=debug and report it`,
    ExitCode.unavailable,
  );
}

async function closeProvider(
  provider: Provider | undefined,
  context: ReadContext,
) {
  if (provider?.close === undefined) return;

  try {
    await provider.close(context);
  } catch (error) {
    context.logger.warn(
      {
        event: "provider.close",
        provider: provider.name,
        error: asEntrypointError(error, provider.name).message,
      },
      `the ${provider.name} provider could not release what it held`,
    );
  }
}

function outcomeOf(
  variable: string,
  reference: Reference,
  read: ReadResult,
): Outcome {
  try {
    if (!read.ok) throw read.error;

    return { status: "ok", value: selectValue(read.secret, reference) };
  } catch (error) {
    const cause = asEntrypointError(error, reference.scheme);
    const failure = new EntrypointError(
      `failed to resolve ${variable} from ${reference.text}: ${cause.message}`,
      cause.exitCode,
    );
    const absent =
      reference.options.optional && cause.exitCode === ExitCode.notFound;
    return absent
      ? { status: "absent", error: failure }
      : { status: "failed", error: failure };
  }
}

/** The first failure, in the order of the variables, if any. */
export function firstFailure(
  resolution: Resolution,
): EntrypointError | undefined {
  for (const result of resolution.results) {
    if (result.outcome.status === "failed") return result.outcome.error;
  }
  return undefined;
}
