/**
 * The names of the providers' own settings. They live apart from the
 * providers so that the command line can reject a misspelt one at start
 * without loading a provider.
 */

/** Every SECRET_ENTRYPOINT_VAULT_* setting. */
export const vaultSettingNames = [
  "AUTH",
  "AUTH_PATH",
  "ROLE",
  "TOKEN_FILE",
  "KUBERNETES_TOKEN_FILE",
  "ROLE_ID",
  "ROLE_ID_FILE",
  "SECRET_ID",
  "SECRET_ID_FILE",
  "JWT_FILE",
  "LOGIN_WAIT",
  "CONCURRENCY",
  "REVOKE",
].map((name) => `SECRET_ENTRYPOINT_VAULT_${name}`);

/** Every SECRET_ENTRYPOINT_AWS_* setting. */
export const awsSettingNames = ["MAX_ATTEMPTS"].map(
  (name) => `SECRET_ENTRYPOINT_AWS_${name}`,
);
