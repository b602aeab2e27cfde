// Why Cinder failed a volume operation, in its own words: the user messages
// it writes when a scheduler or driver step fails (3.3, `openstack volume
// message list`). A failure's message is what tells an operator what to fix.
import { setTimeout as delay } from 'node:timers/promises';
import type { Cloud, UserMessage } from '../openstack/types';
import type { ControllerEnv, Op } from './env';

/** How long to look for the message: the scheduler sets the volume's status first and writes the message just after. */
const MESSAGE_ATTEMPTS = 3;
const MESSAGE_RETRY_MS = 500;

/** Cinder's event IDs for extending a volume: action 007, any detail. */
export const isExtendMessage = (m: UserMessage): boolean => m.eventId.startsWith('VOLUME_VOLUME_007_');

/**
 * Cinder's newest user message about a volume (the newest that `wanted`
 * accepts), if it wrote one; null when it has none or cannot say. Never
 * fails the call itself.
 */
export async function failureMessage(
  env: ControllerEnv,
  cloud: Cloud,
  volumeId: string,
  op: Op,
  wanted: (m: UserMessage) => boolean = () => true,
): Promise<UserMessage | null> {
  const features = await cloud.blockStorage.features(op).catch(() => null);
  if (!features?.userMessages) return null;
  for (let attempt = 1; attempt <= MESSAGE_ATTEMPTS; attempt++) {
    try {
      const newest = (await cloud.blockStorage.listVolumeMessages(volumeId, op)).find(wanted);
      if (newest) return newest;
    } catch (e) {
      env.logger.debug({ volume_id: volumeId, error: (e as Error).message }, 'could not read Cinder messages about the failed volume');
      return null;
    }
    if (attempt < MESSAGE_ATTEMPTS) {
      const waited = await delay(MESSAGE_RETRY_MS, true, { signal: op.signal }).catch(() => false);
      if (!waited) return null;
    }
  }
  return null;
}
