/**
 * Loads provider modules on demand: a run that has no `vault:` reference
 * never evaluates the Vault client, and likewise for AWS.
 */
import type { Scheme } from "../src/references.ts";
import type { CreateProvider } from "./types.ts";

/** The provider module for a scheme, loaded on first use. */
export async function loadProvider(scheme: Scheme): Promise<CreateProvider> {
  switch (scheme) {
    case "vault":
      return (await import("./vault.ts")).create;
    case "awssm":
      return (await import("./awssm.ts")).create;
    case "file":
      return (await import("./files.ts")).create;
  }
}

/** The mock provider, which answers every scheme from one file. */
export async function loadMock(): Promise<typeof import("./mock.ts")> {
  return import("./mock.ts");
}
