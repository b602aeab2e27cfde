// The real cloud the cloud tests run against, from the standard OS_*
// variables or OS_CLIENT_CONFIG_FILE + OS_CLOUD (clouds.yaml). Shared with
// the controller's cloud tests. Parsing is the driver's own config loader, so
// the tests read credentials exactly as the driver does.
import { loadConfig } from '../../src/config/config';
import type { CloudConfig } from '../../src/openstack/types';

/** The configured cloud, or null when the environment names none. */
export function cloudConfigFromEnv(env: NodeJS.ProcessEnv = process.env): CloudConfig | null {
  const hasCloud = Boolean(env.OS_AUTH_URL) || Boolean(env.OS_CLIENT_CONFIG_FILE && env.OS_CLOUD);
  if (!hasCloud) return null;
  return loadConfig({ env }).clouds[0] ?? null;
}

/** Why the cloud tests skip, or false when they can run. */
export function cloudSkipReason(env: NodeJS.ProcessEnv = process.env): string | false {
  if (!cloudConfigFromEnv(env)) return 'no cloud configured: set OS_* variables, or OS_CLIENT_CONFIG_FILE and OS_CLOUD, and TESTBED_SERVER_ID (a server to attach volumes to); the openrc of ../shared/openstack-testbed (start.sh DIR, then source DIR/openrc) sets them all';
  if (!env.TESTBED_SERVER_ID) return 'TESTBED_SERVER_ID is not set: the server to attach volumes to';
  return false;
}
