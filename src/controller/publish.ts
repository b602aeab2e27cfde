// ControllerPublishVolume / ControllerUnpublishVolume: attach and detach
// through Nova, and wait until Cinder (and, on detach, Nova too) shows the
// result. Node IDs are Nova server UUIDs.
import type { ControllerPublishVolumeRequest__Output } from '../gen/csi/v1/ControllerPublishVolumeRequest';
import type { ControllerPublishVolumeResponse } from '../gen/csi/v1/ControllerPublishVolumeResponse';
import type { ControllerUnpublishVolumeRequest__Output } from '../gen/csi/v1/ControllerUnpublishVolumeRequest';
import type { ControllerUnpublishVolumeResponse } from '../gen/csi/v1/ControllerUnpublishVolumeResponse';
import type { VolumeCapability__Output } from '../gen/csi/v1/VolumeCapability';
import { READONLY_METADATA_KEY, readonlyFlag, type Cloud, type Volume, type WaitSpec } from '../openstack/types';
import { isNotFound, isOpenStackError } from '../openstack/errors';
import { WAIT } from '../openstack/waiter';
import { aborted, alreadyExists, failedPrecondition, internal, invalidArgument, MAX_NODE_ID_BYTES, notFound, requireField, requireId, resourceExhausted } from '../csi/errors';
import { capabilityProblem, isMultiNode } from './capabilities';
import { locate } from './clouds';
import { UNINTERRUPTED, waitForVolume, type ControllerEnv, type Op } from './env';
import { rethrow, translate } from './os-errors';
import { OneAtATime } from './one-at-a-time';
import { publishedNodeIds } from './views';

/** publish_context keys. DevicePath is the Go plugin's key; the node treats it as a hint and verifies the disk's serial. */
export const PUBLISH_CONTEXT = {
  devicePath: 'DevicePath',
  /**
   * 'true' when the CO published the volume read-only: Cinder's readonly flag
   * was set for the attach (Cinder records the attachment as 'ro'). The node
   * does not read it: it enforces read-only per target from
   * NodePublishVolume's own readonly, which also covers clouds whose Nova is
   * handed access_mode 'rw' despite the flag. Where the flag is honoured, the
   * disk itself is read-only, and the node stages it read-only (or refuses
   * it when blank: nothing can be formatted on it).
   */
  readonly: 'readonly',
} as const;

/** Nova's refusal when a server has no free disk slot (max_disk_devices_to_attach, bus limits). */
const NO_ROOM = /maximum|exceed|too many|no (free|more)|limit/i;

/** The CSI IDs and Cinder UUID of one volume/server pair. */
interface Pair {
  cloud: Cloud;
  csiId: string;
  volumeId: string;
  serverId: string;
}

/**
 * Publishes and unpublishes of one volume run one at a time. Cinder refuses
 * to reserve a multiattach volume while another attach of it is under way
 * (Nova answers 400, "...the current status is reserved"), and to begin a
 * detach unless the volume is 'in-use', so publishing one volume to several
 * nodes at once, or unpublishing it from one while publishing it to another,
 * would fail all but the first.
 */
const publishing = new OneAtATime();

export async function publishVolume(env: ControllerEnv, req: ControllerPublishVolumeRequest__Output, op: Op): Promise<ControllerPublishVolumeResponse> {
  const csiId = requireId(req.volume_id, 'volume_id');
  const serverId = requireId(req.node_id, 'node_id', MAX_NODE_ID_BYTES);
  const cap = requireField(req.volume_capability, 'volume_capability');
  const { cloud, id } = locate(env.clouds, csiId, req.secrets);
  const pair: Pair = { cloud, csiId, volumeId: id, serverId };
  return publishing.run(`${cloud.name}/${id}`, op.signal, `the other publishes of volume ${csiId}`, () => publishOnce(env, req, pair, cap, op));
}

async function publishOnce(
  env: ControllerEnv,
  req: ControllerPublishVolumeRequest__Output,
  pair: Pair,
  cap: VolumeCapability__Output,
  op: Op,
): Promise<ControllerPublishVolumeResponse> {
  const { cloud, csiId, volumeId: id, serverId } = pair;

  // No look at the server first: Nova's attach answers 404 for an unknown
  // server (see attach()), and an attachment already there proves it exists.
  const volume = await cloud.blockStorage
    .getVolume(id, op)
    .catch(rethrow({ not_found: () => notFound(`volume ${csiId} does not exist in cloud '${cloud.name}'`) }));
  const problem = capabilityProblem(cap, volume.multiattach);
  if (problem) throw invalidArgument(`volume ${csiId}: ${problem}`);

  // The volume GET tells the readonly flag: publishing read-write a volume
  // never flagged costs no request more.
  const flagMatches = readonlyFlag(volume) === req.readonly;
  // Cinder lists an attachment once it is complete: whatever the volume is doing meanwhile (another
  // node's attach of a multiattach volume, an extend), this node's is done. Except a detach: Cinder
  // lists the attachment until Nova's detach ends, and which attachment a 'detaching' volume is
  // losing it does not say; this node's may be (an unpublish that ran out of time or crashed).
  const mine = attachmentTo(volume, serverId);
  if (mine && volume.status === 'detaching') {
    throw aborted(
      `volume ${csiId} is being detached${volume.multiattach ? ' (from this node or another: Cinder does not say which)' : ` from node ${serverId}`}; ` +
        `it can be published again once the detach is done; the CO retries. If it stays 'detaching', a detach is stuck: see 'openstack volume show ${id}'`,
    );
  }
  if (mine) {
    if (!flagMatches) throw incompatiblePublish(pair, volume, req.readonly);
    return { publish_context: publishContext(mine.device, req.readonly) };
  }
  // Cinder lists an attachment only once it is complete; Nova knows of one
  // in progress (an earlier attempt that ran out of time): wait for that.
  const pending = mine ?? (PENDING_ATTACH.includes(volume.status) ? await novaAttachment(pair, op) : undefined);
  if (pending && !flagMatches) throw incompatiblePublish(pair, volume, req.readonly);
  if (!pending && !flagMatches) await setReadonlyFlag(pair, volume, req.readonly, op);
  const sent = pending ? { device: pending.device ?? null, joined: false } : await attach(pair, volume, cap);
  const attached = await waitAttached(env, pair, op, sent.joined);
  const hint = sent.device;
  return { publish_context: publishContext(attachmentTo(attached, serverId)?.device || hint, req.readonly) };
}

const mode = (readonly: boolean) => (readonly ? 'read-only' : 'read-write');

/**
 * Already published (or being published) to this node with the other
 * readonly flag: CSI's row for "published but incompatible" is ALREADY_EXISTS.
 */
function incompatiblePublish(pair: Pair, volume: Volume, readonly: boolean) {
  const { csiId, serverId } = pair;
  return alreadyExists(
    `volume ${csiId} is already published to node ${serverId} ${mode(readonlyFlag(volume))} (Cinder's readonly flag is ` +
      `'${volume.metadata[READONLY_METADATA_KEY] ?? 'unset'}'); to publish it ${mode(readonly)}, unpublish it from this node first`,
  );
}

/**
 * Set or clear Cinder's readonly flag before the attach, so the attachment
 * Cinder hands Nova has the wanted access mode. Cinder changes the flag only
 * while the volume is available, and the flag covers every attachment of the
 * volume: a volume attached anywhere keeps the flag it has.
 */
async function setReadonlyFlag(pair: Pair, volume: Volume, readonly: boolean, op: Op): Promise<void> {
  const { cloud, csiId, volumeId } = pair;
  const servers = publishedNodeIds(volume);
  if (servers.length > 0 || PENDING_ATTACH.includes(volume.status)) {
    const where = servers.length > 0 ? `attached ${mode(readonlyFlag(volume))} to server ${servers.join(', ')}` : `being attached ${mode(readonlyFlag(volume))} to another server`;
    throw failedPrecondition(
      `volume ${csiId} is ${where}, and Cinder's readonly flag applies to every attachment of a volume: ` +
        `it can be published ${mode(readonly)} once it is unpublished from every node (or publish it ${mode(!readonly)} here)`,
    );
  }
  if (volume.status !== 'available') {
    throw aborted(`volume ${csiId} is '${volume.status}'; its readonly flag can be changed for the attach when Cinder has finished`);
  }
  await cloud.blockStorage.setReadonlyFlag(volumeId, readonly, op).catch(
    rethrow({
      // Cinder's only refusal here is the volume's status, which moved since the look above.
      bad_request: (m) => aborted(`Cinder cannot change the readonly flag of volume ${csiId} right now: ${m}; the CO retries`),
      not_found: () => notFound(`volume ${csiId} does not exist in cloud '${cloud.name}'`),
      forbidden: (m) =>
        failedPrecondition(`Cinder's policy (volume:update_readonly_flag) does not let this cloud's user set volume ${csiId}'s readonly flag: ${m}`),
    }),
  );
}

/** Cinder's reserve refusal for a volume in the middle of another attach or a detach (not anchored: Nova appends a request ID). */
const MID_CHANGE = /to reserve, but the current status is (reserved|attaching|detaching)\b/;

/** Volume states of an attach under way. */
const PENDING_ATTACH = ['reserved', 'attaching'];

async function novaAttachment(pair: Pair, op: Op): Promise<{ device: string | null } | undefined> {
  return pair.cloud.compute.getVolumeAttachment(pair.serverId, pair.volumeId, op).catch((err) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
}

function attachmentTo(volume: Volume, serverId: string) {
  return volume.attachments.find((a) => a.serverId === serverId);
}

function publishContext(device: string | null | undefined, readonly: boolean): Record<string, string> {
  const context: Record<string, string> = {};
  if (device) context[PUBLISH_CONTEXT.devicePath] = device;
  if (readonly) context[PUBLISH_CONTEXT.readonly] = 'true';
  return context;
}

/**
 * Nova's refusal of a volume that already has an attachment (Zed's nova.compute.api
 * _check_volume_already_attached): "volume <id> is already attached to instances: <servers>" (every server
 * Nova maps it to, an attach still under way included, for a volume that is not multiattach), or
 * "volume <id> already attached" (a multiattach volume mapped to this server, or two attaches racing).
 */
const ALREADY_ATTACHED = /\balready attached(?: to instances: ([0-9a-zA-Z_, -]+))?/;

/** Nova's 404 for the volume (the server's says "Instance <id> could not be found."). */
const NOVA_VOLUME_NOT_FOUND = /\bVolume \S+ could not be found/;

/**
 * Ask Nova to attach. Returns Nova's device hint (null when Nova names none), and whether the attach was
 * already Nova's (`joined`: an earlier request's, which this one waits for instead).
 */
async function attach(pair: Pair, volume: Volume, cap: VolumeCapability__Output): Promise<{ device: string | null; joined: boolean }> {
  const { cloud, csiId, serverId } = pair;
  const others = publishedNodeIds(volume).filter((n) => n !== serverId);
  if (others.length > 0 && !volume.multiattach) {
    throw failedPrecondition(
      `volume ${csiId} is attached to server ${others.join(', ')} and its volume type is not multiattach; it can be published here once it is unpublished there`,
    );
  }
  // A multiattach volume type allows it, but a single-node access mode (ReadWriteOnce) does not.
  if (others.length > 0 && !isMultiNode(cap)) {
    throw failedPrecondition(
      `volume ${csiId} is published to node ${others.join(', ')} with a single-node access mode; it can be published here once it is unpublished there`,
    );
  }
  if (volume.status !== 'available' && !(volume.multiattach && volume.status === 'in-use')) {
    throw aborted(`volume ${csiId} is '${volume.status}'; it can be attached when Cinder has finished`);
  }
  const refusedForRoom = (m: string) =>
    NO_ROOM.test(m)
      ? resourceExhausted(`server ${serverId} cannot take more volumes: ${m}; schedule the pod elsewhere or detach volumes`)
      : undefined;
  try {
    // Sent uninterrupted, as a create is (env.ts, UNINTERRUPTED): Nova acts on an attach request it has received
    // whether or not this client is still there, so one cut off by the caller's cancel or deadline may still attach
    // the volume. Left to finish (within the HTTP timeout), it keeps this volume's in-flight entry and publish queue,
    // so an unpublish that follows waits for it (ABORTED until then) and then finds, and detaches, what it made.
    const result = await cloud.compute.attachVolume(serverId, pair.volumeId, { ...UNINTERRUPTED, multiattach: volume.multiattach });
    return { device: result.device, joined: false };
  } catch (err) {
    // Already attached, or being attached, to this very server since the volume was read: an attach sent
    // by an earlier call (a controller killed mid-publish; Nova still had it queued). The wait that follows
    // answers with its device, or fails if Nova rolls that attach back.
    if (isOpenStackError(err, 'bad_request') && attachedHereSays(err.message, serverId)) return { device: null, joined: true };
    throw translate(err, {
      over_quota: (m) => resourceExhausted(`server ${serverId} cannot take more volumes: ${m}; schedule the pod elsewhere or detach volumes`),
      forbidden: (m) => refusedForRoom(m) ?? failedPrecondition(`Nova refused to attach volume ${csiId} to server ${serverId}: ${m}`),
      bad_request: (m) =>
        refusedForRoom(m) ??
        // Cinder's reserve refuses a volume mid-attach or mid-detach (someone else's, outside this driver): it passes.
        (MID_CHANGE.test(m)
          ? aborted(`volume ${csiId} is being attached or detached elsewhere: ${m}; the CO retries`)
          : failedPrecondition(`Nova refused to attach volume ${csiId} to server ${serverId}: ${m}`)),
      // Nova answers 409 while the server is busy (building, migrating, another attach).
      conflict: (m) => aborted(`Nova cannot attach to server ${serverId} right now: ${m}; the CO retries`),
      // Nova looks up both: its message says which one it could not find (the volume may have been
      // deleted since it was read).
      not_found: (m) => (NOVA_VOLUME_NOT_FOUND.test(m) ? notFound(`volume ${csiId} does not exist in cloud '${cloud.name}'; Nova said: ${m}`) : serverNotFound(cloud, serverId, m)),
    });
  }
}

/** Nova's 400 says the volume is already attached (or being attached) to this server, not to another. */
function attachedHereSays(message: string, serverId: string): boolean {
  const m = ALREADY_ATTACHED.exec(message);
  if (!m) return false;
  // Without a list, the refusal is about Nova's own mapping of the volume to this server.
  return m[1] === undefined || m[1].split(/[,\s]+/).includes(serverId);
}

function serverNotFound(cloud: Cloud, serverId: string, novaSaid: string) {
  const { projectName, projectId } = cloud.health();
  const project = projectName ?? projectId;
  return notFound(
    `node ${serverId}: cloud '${cloud.name}' has no Nova server with this ID in the driver's project${project ? ` '${project}'` : ''} ` +
      `(node IDs are Nova server UUIDs; a server of another project is not found either: the cluster's VMs must be in the driver's project); ` +
      `Nova said: ${novaSaid}`,
  );
}

/**
 * Attached to this server: Cinder lists an attachment once it is complete, whatever the volume does
 * meanwhile (another server's attach of a multiattach volume holds it 'reserved' again).
 */
const ATTACHED_TO_SERVER: WaitSpec = { ...WAIT.volumeAttached, target: ['in-use', ...PENDING_ATTACH] };

/**
 * The same, for an attach found already under way in Nova: Nova maps the volume to the server before Cinder
 * reserves it, so 'available' first is progress too; back to 'available' after that is a rollback.
 */
const JOINED_ATTACH: WaitSpec = { ...ATTACHED_TO_SERVER, transient: ['available', ...ATTACHED_TO_SERVER.transient] };

/**
 * Wait for Cinder to show the volume in-use with an attachment to this
 * server. Nova reserves the volume before its attach request returns, so
 * going back (to available, or an error), or in-use with no attachment here
 * (a multiattach volume's other attachments), means Nova gave up and rolled
 * its attach back: the attachment is removed so nothing is left half-attached.
 */
async function waitAttached(env: ControllerEnv, pair: Pair, op: Op, joined: boolean): Promise<Volume> {
  const { cloud, volumeId, serverId, csiId } = pair;
  try {
    const volume = await waitForVolume(
      cloud,
      volumeId,
      {
        spec: joined ? JOINED_ATTACH : ATTACHED_TO_SERVER,
        kind: 'volume:attach',
        until: (v) => attachmentTo(v, serverId) !== undefined,
        failedIf: (v) => (v.status === 'in-use' && !attachmentTo(v, serverId) ? `is in-use with no attachment to server ${serverId}` : null),
      },
      op,
    );
    if (!volume) throw internal(`volume ${csiId} disappeared while it was being attached`);
    return volume;
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
    // Uninterrupted, as detach() is: a cleanup detach cut off by the caller may still land after a later publish.
    const removed = await cloud.compute.detachVolume(serverId, volumeId, UNINTERRUPTED).then(
      () => true,
      (e) => {
        if (isNotFound(e)) return true;
        env.logger.warn({ volume_id: csiId, node_id: serverId, error: (e as Error).message }, 'could not clean up after a failed attach');
        return false;
      },
    );
    throw internal(
      `attaching volume ${csiId} to server ${serverId} failed: ${err.message}. Nova's instance action log says why ` +
        `('openstack server event list ${serverId}'); ` +
        `${removed ? 'the attachment was removed' : 'Nova refused to remove the attachment yet, so a retry picks it up'} and the CO retries`,
    );
  }
}

/** Cinder with no attachment of the volume to this server (other servers' attachments may come and go). */
const DETACHED_FROM_SERVER: WaitSpec = {
  target: ['available', 'in-use'],
  transient: ['detaching', 'reserved', 'attaching'],
  goneIsTarget: true,
};

/** Someone else's detach of the volume (or an earlier call's) has ended, whichever way. */
const DETACH_ENDED: WaitSpec = { target: ['available', 'in-use', 'reserved', 'attaching'], transient: ['detaching'], goneIsTarget: true };

/** Nova's record of the attachment, polled until it is gone. */
const NOVA_ATTACHMENT_GONE: WaitSpec = { target: [], transient: ['attached'], goneIsTarget: true };

export async function unpublishVolume(env: ControllerEnv, req: ControllerUnpublishVolumeRequest__Output, op: Op): Promise<ControllerUnpublishVolumeResponse> {
  const csiId = requireId(req.volume_id, 'volume_id');
  // Optional: empty means every node (see unpublishOnce).
  if (req.node_id) requireId(req.node_id, 'node_id', MAX_NODE_ID_BYTES);
  const { cloud, id } = locate(env.clouds, csiId, req.secrets);
  // In the same queue as publishes: Cinder refuses a detach while another attach of the volume is under way.
  return publishing.run(`${cloud.name}/${id}`, op.signal, `the other publishes of volume ${csiId}`, () => unpublishOnce(env, req, csiId, cloud, id, op));
}

async function unpublishOnce(
  env: ControllerEnv,
  req: ControllerUnpublishVolumeRequest__Output,
  csiId: string,
  cloud: Cloud,
  id: string,
  op: Op,
): Promise<ControllerUnpublishVolumeResponse> {
  if (req.node_id) {
    await detach(env, { cloud, csiId, volumeId: id, serverId: req.node_id }, op);
    return {};
  }
  // An empty node_id means: from every node (CSI spec).
  const volume = await volumeOrNull(cloud, id, op);
  if (!volume) return {};
  for (const serverId of publishedNodeIds(volume)) await detach(env, { cloud, csiId, volumeId: id, serverId }, op);
  return {};
}

/**
 * Detach straight away: Nova's DELETE is the one authority on whether there
 * is an attachment to remove (202: there was, and the wait starts at once).
 * Only when Nova has none (404: no such attachment, server or volume) is
 * Cinder asked what is left. Nova refuses while a detach of the volume is
 * already under way (Cinder's begin_detaching wants it 'in-use'): an
 * unpublish that ran out of time or crashed, retried. That detach is waited
 * for, and Nova asked once more.
 */
async function detach(env: ControllerEnv, pair: Pair, op: Op, afterDetachUnderWay = false): Promise<void> {
  const { cloud, csiId, volumeId, serverId } = pair;
  const refused = (m: string) => aborted(`Nova cannot detach volume ${csiId} from server ${serverId} right now: ${m}; the CO retries`);
  // Uninterrupted, like the attach (see attach()): a detach request cut off by the caller may still be acted on by
  // Nova, and must not land after a publish that follows it has answered OK.
  const answer = await cloud.compute.detachVolume(serverId, volumeId, UNINTERRUPTED).then(
    () => 'requested' as const,
    async (err) => {
      if (isNotFound(err)) return 'none' as const;
      const refusal = isOpenStackError(err, 'conflict') || isOpenStackError(err, 'bad_request');
      if (refusal && !afterDetachUnderWay && (await waitForDetachUnderWay(pair, op))) return 'again' as const;
      throw translate(err, { conflict: refused, bad_request: refused });
    },
  );
  if (answer === 'again') return detach(env, pair, op, true);
  if (answer === 'requested' || (await cinderStillAttached(env, pair, op))) await waitDetached(env, pair, op);
}

/** The volume, or null when Cinder has none of that ID. */
function volumeOrNull(cloud: Cloud, volumeId: string, op: Op): Promise<Volume | null> {
  return cloud.blockStorage.getVolume(volumeId, op).catch((err) => {
    if (isNotFound(err)) return null;
    throw err;
  });
}

/** A detach of the volume still under way ('detaching'): true once it has ended; false when there is none. */
async function waitForDetachUnderWay(pair: Pair, op: Op): Promise<boolean> {
  const { cloud, volumeId } = pair;
  const volume = await volumeOrNull(cloud, volumeId, op);
  if (volume?.status !== 'detaching') return false;
  try {
    // No kind: a wait that starts part-way through a detach says nothing about how long detaches take here.
    await waitForVolume(cloud, volumeId, { spec: DETACH_ENDED }, op);
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
    throw internal(`the detach of volume ${pair.csiId} that was under way failed: ${err.message}. Check 'openstack volume show ${volumeId}'; the CO retries`);
  }
  return true;
}

/**
 * Nova has no attachment of the volume to this server. Whether Cinder still
 * lists one: false when it does not (nothing to do) or when the volume is
 * gone; true when a detach is finishing (wait for it). A server that is gone
 * while Cinder still lists its attachment (Nova deleted it and ignored a
 * failed call to Cinder) would keep the volume attached to nothing forever:
 * that attachment is removed. Cinder alone listing the attachment of a server
 * that exists is a leftover that needs an operator.
 */
async function cinderStillAttached(env: ControllerEnv, pair: Pair, op: Op): Promise<boolean> {
  const { cloud, csiId, volumeId, serverId } = pair;
  const volume = await volumeOrNull(cloud, volumeId, op);
  const stale = volume ? attachmentTo(volume, serverId) : undefined;
  if (!volume || !stale) return false;
  try {
    await cloud.compute.getServer(serverId, op);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    const removed = await cloud.blockStorage.deleteAttachment(stale.attachmentId, op).catch((e) => {
      if (isNotFound(e)) return true;
      throw e;
    });
    if (!removed) {
      throw failedPrecondition(
        `server ${serverId} is gone but Cinder still lists volume ${csiId} attached to it, and this Cinder API cannot remove the attachment (needs 3.27); ` +
          `remove it with 'openstack volume attachment delete ${stale.attachmentId}'`,
      );
    }
    env.logger.info({ volume_id: csiId, node_id: serverId, attachment_id: stale.attachmentId }, "removed Cinder's attachment to a server that no longer exists");
    return false;
  }
  // Nova drops its record last, so Cinder alone listing the attachment is a leftover.
  if (volume.status === 'detaching') return true;
  throw failedPrecondition(
    `Cinder lists an attachment of volume ${csiId} to server ${serverId} that Nova does not have; ` +
      `remove it with 'openstack volume attachment delete' (see 'openstack volume attachment list --volume-id ${volumeId}')`,
  );
}

/**
 * Wait until Cinder lists no attachment of the volume to this server, then
 * look at Nova's record at once; only if it is still there, wait for it.
 * Nova marks the volume 'detaching' before its detach request returns, so
 * 'in-use' with the attachment still here means Nova rolled the detach back
 * (the guest kept the disk).
 */
async function waitDetached(env: ControllerEnv, pair: Pair, op: Op): Promise<void> {
  const { cloud, csiId, volumeId, serverId } = pair;
  try {
    await waitForVolume(
      cloud,
      volumeId,
      {
        spec: DETACHED_FROM_SERVER,
        kind: 'volume:detach',
        until: (v) => attachmentTo(v, serverId) === undefined,
        failedIf: (v) => (v.status === 'in-use' && attachmentTo(v, serverId) ? `is in-use again, still attached to server ${serverId}` : null),
      },
      op,
    );
    await env.waiterFor(cloud).waitFor({
      what: `Nova's attachment of volume ${volumeId} to server ${serverId}`,
      spec: NOVA_ATTACHMENT_GONE,
      fetch: (o) => cloud.compute.getVolumeAttachment(serverId, volumeId, o),
      stateOf: () => 'attached',
      kind: 'nova:detach',
      // One look at once: Nova drops its record right after Cinder's, so it is normally gone already.
      checkFirst: true,
      signal: op.signal,
      deadline: op.deadline,
    });
  } catch (err) {
    if (!isOpenStackError(err, 'state')) throw err;
    throw internal(
      `detaching volume ${csiId} from server ${serverId} failed: ${err.message}. ` +
        `Check 'openstack server event list ${serverId}'; the CO retries`,
    );
  }
}
