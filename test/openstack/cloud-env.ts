// The real cloud the cloud tests run against, from the standard OS_*
// variables or OS_CLIENT_CONFIG_FILE + OS_CLOUD (clouds.yaml). Shared with
// the controller's cloud tests. Parsing is the driver's own config loader, so
// the tests read credentials exactly as the driver does.
import { request } from 'undici';
import { loadConfig } from '../../src/config/config';
import { silentLogger } from '../../src/log';
import { createCloud } from '../../src/openstack/cloud';
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

/** Why the tests that need the cloud's admin skip (the testbed's openrc sets TESTBED_ADMIN_*), or false. */
export function adminSkipReason(env: NodeJS.ProcessEnv = process.env): string | false {
  return env.TESTBED_ADMIN_USERNAME && env.TESTBED_ADMIN_PASSWORD ? false : 'TESTBED_ADMIN_USERNAME/PASSWORD not set: making a volume type needs an admin';
}

export interface AdminVolumeApi {
  /** One request to Cinder's volume API as the admin; fails on a status >= 300; the parsed body. */
  call(method: 'GET' | 'POST' | 'DELETE', urlPath: string, body?: unknown): Promise<any>;
  close(): Promise<void>;
}

/** Cinder's volume API as the cloud's admin (TESTBED_ADMIN_*), for what a project member may not do, e.g. make volume types. */
export async function adminVolumeApi(env: NodeJS.ProcessEnv = process.env): Promise<AdminVolumeApi> {
  const base = cloudConfigFromEnv(env)!;
  const admin = createCloud(
    {
      ...base,
      name: 'admin',
      auth: { ...base.auth, username: env.TESTBED_ADMIN_USERNAME, password: env.TESTBED_ADMIN_PASSWORD, projectName: env.TESTBED_ADMIN_PROJECT_NAME ?? 'admin', projectId: undefined },
    },
    silentLogger,
  );
  const state = await admin.internals.identity.auth();
  const volumeApi = admin.internals.identity.endpoint(state, ['volumev3', 'block-storage', 'volume']).url;
  return {
    async call(method, urlPath, body) {
      const res = await request(`${volumeApi}${urlPath}`, {
        method,
        headers: { 'x-auth-token': state.token, 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.body.text();
      if (res.statusCode >= 300) throw new Error(`${method} ${urlPath}: ${res.statusCode} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    close: () => admin.close(),
  };
}
