import { EntrypointError, ExitCode } from "../src/errors.ts";
import type { CreateProvider } from "./types.ts";

export const create: CreateProvider = () => {
  throw new EntrypointError("the vault provider is not built yet", ExitCode.config);
};
