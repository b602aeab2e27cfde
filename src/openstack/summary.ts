// What the driver's start-up line says of a cloud (driver.ts): where and as
// whom it authenticates, in the config's terms, never a secret.
import { redactSecrets } from './http-errors';
import { secretsOf } from './keystone';
import type { CloudConfig } from './types';

/**
 * The auth URL without credentials, query or fragment; any
 * name that happens to equal a secret redacted, as Keystone's refusals are.
 */
export function describeCloud(c: CloudConfig): Record<string, string> {
  const a = c.auth;
  let authUrl = a.authUrl;
  try {
    const u = new URL(a.authUrl);
    authUrl = `${u.origin}${u.pathname}`;
  } catch {
    // not a URL: said as written, redacted below (authentication will say what is wrong with it)
  }
  // As keystone.ts sends them: an application credential by ID names nothing else; an ID wins over a
  // name; a name's domain defaults to 'Default'. (No key here may contain "credential": the log's
  // redaction blanks such keys.)
  const byAppCredId = a.authPlugin === 'v3applicationcredential' && Boolean(a.applicationCredentialId);
  const scoped = a.authPlugin !== 'v3applicationcredential';
  const fields: Record<string, string | undefined> = {
    name: c.name,
    auth_url: authUrl,
    region: c.region ?? '(any: the catalog must offer one)',
    interface: c.interface,
    auth_type: a.authPlugin,
    user: byAppCredId ? undefined : (a.userId ?? a.username),
    user_domain: byAppCredId || a.userId || !a.username ? undefined : (a.userDomainId ?? a.userDomainName ?? a.domainId ?? a.domainName ?? 'Default'),
    project: scoped ? (a.projectId ?? a.projectName) : undefined,
    project_domain: !scoped || a.projectId || !a.projectName ? undefined : (a.projectDomainId ?? a.projectDomainName ?? a.domainId ?? a.domainName ?? 'Default'),
    app_cred: a.authPlugin === 'v3applicationcredential' ? (a.applicationCredentialId ?? a.applicationCredentialName) : undefined,
  };
  const secrets = secretsOf(a);
  return Object.fromEntries(
    Object.entries(fields)
      .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
      .map(([k, v]) => [k, redactSecrets(v, secrets)]),
  );
}
