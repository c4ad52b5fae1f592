/**
 * Check mode: a redacted report of every reference, for people (a table)
 * or machines (JSON). It shows where values come from and how long they
 * are, never what they are.
 */
import { ExitCode } from "./errors.ts";
import { variableProblem } from "./limits.ts";
import type { ReferenceResult, Resolution } from "./resolve.ts";

/** One row of the report. */
export interface CheckRow {
  variable: string;
  provider: string;
  reference: string;
  status: "ok" | "absent" | "failed";
  /** Length of the value in bytes, when resolved. */
  length?: number;
  exitCode?: number;
  error?: string;
}

/** The rows of a resolution, in the order of the variables. */
export function checkRows(resolution: Resolution): CheckRow[] {
  return resolution.results.map(toRow).sort(byVariable);
}

function byVariable(a: CheckRow, b: CheckRow): number {
  return a.variable < b.variable ? -1 : a.variable > b.variable ? 1 : 0;
}

/** The exit status of a check: 0, or the first failed row's code. */
export function checkStatus(rows: readonly CheckRow[]): number {
  return rows.find((row) => row.status === "failed")?.exitCode ?? 0;
}

function toRow(result: ReferenceResult): CheckRow {
  const row = {
    variable: result.variable,
    provider: result.provider,
    reference: result.reference.text,
    status: result.outcome.status,
  };
  if (result.outcome.status === "ok") {
    const { value } = result.outcome;
    const problem =
      result.reference.options.as === "env"
        ? variableProblem(result.variable, value)
        : undefined;
    if (problem === undefined) return { ...row, length: value.length };

    // What exec mode would refuse, check mode reports.
    return {
      ...row,
      status: "failed",
      length: value.length,
      exitCode: ExitCode.invalid,
      error: `${result.variable} from ${result.reference.text} cannot be passed to the command: ${problem}; use the option as=file`,
    };
  }
  return {
    ...row,
    exitCode: result.outcome.error.exitCode,
    error: result.outcome.error.message,
  };
}

/** The report as text for stdout. */
export function formatReport(
  rows: readonly CheckRow[],
  format: "table" | "json",
): string {
  if (format === "json") {
    const ok = rows.every((row) => row.status !== "failed");
    return JSON.stringify({ ok, references: rows }, null, 2) + "\n";
  }
  return formatTable(rows);
}

function formatTable(rows: readonly CheckRow[]): string {
  if (rows.length === 0) return "no references found\n";

  const header = ["VARIABLE", "PROVIDER", "REFERENCE", "STATUS", "LENGTH"];
  const cells = rows.map((row) => [
    row.variable,
    row.provider,
    row.reference,
    row.status,
    row.length === undefined ? "-" : String(row.length),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((line) => line[column]!.length)),
  );
  const render = (line: string[]) =>
    line
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd();
  const errors = rows
    .filter((row) => row.error !== undefined)
    .map((row) => `${row.status}: ${row.error}`);
  return (
    [
      render(header),
      ...cells.map(render),
      ...(errors.length ? ["", ...errors] : []),
    ].join("\n") + "\n"
  );
}
