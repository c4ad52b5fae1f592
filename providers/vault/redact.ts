/**
 * Vault's error strings are worth showing ("invalid role name", "permission
 * denied"), but they are the server's text: a server, a plugin or a proxy may
 * echo what it was sent, a token or a secret id among it. Every string taken
 * from an answer passes through here before it reaches a message.
 */

/** What stands in for a credential in a message. */
export const redacted = "[redacted]";

/** The longest piece of the server's text a message carries. */
export const maxServerText = 200;

// Vault's token shapes: service, batch and recovery tokens since 1.10
// (hvs., hvb., hvr.), and the older s., b., r. with 24 characters
// (https://developer.hashicorp.com/vault/docs/concepts/tokens#token-prefixes).
const tokenShape =
  /\bhv[sbr]\.[A-Za-z0-9_-]+|(?<![A-Za-z0-9_.-])[sbr]\.[A-Za-z0-9]{24}\b/g;

/**
 * Removes from `text` every credential in `known` and anything shaped like
 * a Vault token, then cuts it to `maxServerText` characters.
 */
export function redact(text: string, known: Iterable<string>): string {
  // Longest first, so that a credential that contains another one goes
  // whole rather than leaving a piece behind.
  const credentials = [...new Set(known)]
    .filter((credential) => credential !== "")
    .sort((a, b) => b.length - a.length);
  let clean = text;
  for (const credential of credentials) {
    clean = clean.split(credential).join(redacted);
  }
  clean = clean.replace(tokenShape, redacted);
  return clean.length <= maxServerText
    ? clean
    : `${clean.slice(0, maxServerText)}...`;
}
