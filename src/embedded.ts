/**
 * Runs a module that the build carries as text (see build.mjs): the Vault
 * and AWS clients are large, and text costs V8 nothing to parse until a run
 * needs it. `shared` hands the module the entrypoint's own modules, so that
 * both see one EntrypointError class.
 */
import vm from "node:vm";

/** Compiles and runs a CommonJS module given as text; returns its exports. */
export function loadEmbedded(
  code: string,
  shared: Readonly<Record<string, unknown>>,
  name: string,
): Record<string, unknown> {
  const run = vm.compileFunction(
    code,
    ["exports", "require", "module", "__filename", "__dirname"],
    { filename: `secret-entrypoint/${name}` },
  );
  const module = { exports: {} as Record<string, unknown> };
  const load = (id: string) => shared[id] ?? require(id);
  run(module.exports, load, module, __filename, __dirname);
  return module.exports;
}
