/**
 * The HTTP transport node-vault sends through (its `request-promise` hook),
 * on node:http and node:https instead of node-vault's axios.
 *
 * Why: axios sends through follow-redirects, which prints every request's
 * options, the X-Vault-Token header included, when DEBUG matches (DEBUG=* is
 * common in Node images); and a redirect would carry the token to whatever
 * host Vault names. Here nothing is printed and redirects are not followed.
 * It also lets a request be cancelled when the run's deadline passes.
 */
import http from "node:http";
import https from "node:https";

/** What node-vault hands to the transport, plus what we add per call. */
export interface TransportOptions {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
  /** Milliseconds for the whole exchange. */
  timeout: number;
  signal: AbortSignal;
  agents: { http: http.Agent; https: https.Agent };
}

/** The response shape node-vault's response handling expects. */
export interface TransportResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

/** The `request-promise` stand-in node-vault's config takes. */
export const transport = {
  defaults: () => send,
};

function send(options: TransportOptions): Promise<TransportResponse> {
  const url = new URL(options.uri);
  const payload =
    typeof options.json === "object" && options.json !== null
      ? JSON.stringify(options.json)
      : undefined;
  const secure = url.protocol === "https:";
  const headers: Record<string, string | number> = {
    ...options.headers,
    Accept: "application/json",
    ...(payload === undefined
      ? {}
      : {
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(payload),
        }),
  };
  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request(url, {
      method: options.method,
      headers,
      agent: secure ? options.agents.https : options.agents.http,
      signal: options.signal,
    });
    const timer = setTimeout(
      () => request.destroy(timeoutError()),
      options.timeout,
    );
    request.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("error", reject);
      response.on("end", () => {
        clearTimeout(timer);
        resolve({
          statusCode: response.statusCode ?? 0,
          body: parseBody(Buffer.concat(chunks).toString("utf8")),
          request: { path: url.pathname },
        });
      });
    });
    request.end(payload);
  });
}

function timeoutError(): Error {
  return Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" });
}

// Vault answers JSON; a proxy in front of it may answer HTML or nothing.
function parseBody(text: string): unknown {
  if (text === "") return "";
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
