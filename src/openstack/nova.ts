// Compute on Nova v2.1: servers (status, availability zone) and volume
// attachments through os-volume_attachments. Nova drives the Cinder side of
// an attachment itself (reserve, attachment create/complete), so attaching is
// one POST here and the volume's status tells when it is done.
import type { Logger } from '../log';
import { COMPUTE_SERVICE_TYPES } from './catalog';
import type { HttpClient } from './http';
import type { Identity } from './keystone';
import { isOpenStackError } from './errors';
import { ServiceClient, type ServiceRequest } from './service';
import type { CallOptions, CloudConfig, Compute, Server, ServerVolumeAttachment } from './types';

type Json = Record<string, unknown>;

/** Multiattach volumes need compute microversion 2.60. */
export const NOVA_MULTIATTACH_MICROVERSION = '2.60';

/**
 * Attach and detach on a SHELVED_OFFLOADED server need compute microversion
 * 2.20; below it Nova answers 409 ("Cannot 'detach_volume' instance ... while
 * it is in vm_state shelved_offloaded") whether or not the volume is attached.
 */
export const NOVA_SHELVED_VOLUME_MICROVERSION = '2.20';

export class Nova implements Compute {
  private readonly svc: ServiceClient;
  /**
   * Set once Nova has refused 2.20 (406: its maximum is lower): attaches and detaches then go without a
   * microversion, as before 2.20. Learnt from the answer rather than the version document, which a catalog
   * URL with the project in it (/v2.1/<project>) does not serve.
   */
  private below220 = false;

  constructor(config: CloudConfig, identity: Identity, http: HttpClient, log: Logger) {
    this.svc = new ServiceClient(
      identity,
      http,
      async (auth) => identity.endpoint(auth, COMPUTE_SERVICE_TYPES, config.endpointOverrides?.compute).url,
      log,
    );
  }

  async getServer(id: string, opts: CallOptions = {}): Promise<Server> {
    const res = await this.svc.request<{ server: Json }>({ ...opts, method: 'GET', path: `/servers/${enc(id)}` });
    const s = res.body.server;
    return {
      id: String(s.id),
      name: String(s.name ?? ''),
      status: String(s.status ?? ''),
      availabilityZone: typeof s['OS-EXT-AZ:availability_zone'] === 'string' ? (s['OS-EXT-AZ:availability_zone'] as string) : null,
    };
  }

  async attachVolume(
    serverId: string,
    volumeId: string,
    opts: CallOptions & { multiattach?: boolean } = {},
  ): Promise<ServerVolumeAttachment> {
    const res = await this.withShelvedMicroversion<{ volumeAttachment: Json }>(
      {
        signal: opts.signal,
        deadline: opts.deadline,
        method: 'POST',
        path: `/servers/${enc(serverId)}/os-volume_attachments`,
        json: { volumeAttachment: { volumeId } },
      },
      opts.multiattach ? NOVA_MULTIATTACH_MICROVERSION : undefined,
    );
    return toAttachment(res.body.volumeAttachment, serverId);
  }

  async listVolumeAttachments(serverId: string, opts: CallOptions = {}): Promise<ServerVolumeAttachment[]> {
    const res = await this.svc.request<{ volumeAttachments?: Json[] }>({
      ...opts,
      method: 'GET',
      path: `/servers/${enc(serverId)}/os-volume_attachments`,
    });
    return (res.body.volumeAttachments ?? []).map((a) => toAttachment(a, serverId));
  }

  async getVolumeAttachment(serverId: string, volumeId: string, opts: CallOptions = {}): Promise<ServerVolumeAttachment> {
    const res = await this.svc.request<{ volumeAttachment: Json }>({
      ...opts,
      method: 'GET',
      path: `/servers/${enc(serverId)}/os-volume_attachments/${enc(volumeId)}`,
    });
    return toAttachment(res.body.volumeAttachment, serverId);
  }

  async detachVolume(serverId: string, volumeId: string, opts: CallOptions = {}): Promise<void> {
    await this.withShelvedMicroversion({ ...opts, method: 'DELETE', path: `/servers/${enc(serverId)}/os-volume_attachments/${enc(volumeId)}` });
  }

  /**
   * An attach or detach at 2.20 (or `needed`, when higher), so that it works on a shelved-offloaded
   * server too. A 406 means Nova did not act on the request and its maximum is below 2.20: the request
   * goes once more without a microversion, and so do the later ones.
   */
  private async withShelvedMicroversion<T>(req: ServiceRequest, needed?: string) {
    const version = needed ?? (this.below220 ? undefined : NOVA_SHELVED_VOLUME_MICROVERSION);
    try {
      return await this.svc.request<T>({ ...req, headers: version ? microversionHeaders(version) : undefined });
    } catch (err) {
      if (needed || !version || !isOpenStackError(err) || err.status !== 406) throw err;
      this.below220 = true;
      return this.svc.request<T>(req);
    }
  }
}

function microversionHeaders(v: string): Record<string, string> {
  // Both spellings: the old header for Nova before 2.27, the new for everything since.
  return { 'x-openstack-nova-api-version': v, 'openstack-api-version': `compute ${v}` };
}

function toAttachment(a: Json, serverId: string): ServerVolumeAttachment {
  return {
    id: String(a.id ?? a.volumeId),
    serverId: String(a.serverId ?? serverId),
    volumeId: String(a.volumeId),
    device: typeof a.device === 'string' && a.device !== '' ? a.device : null,
  };
}

const enc = encodeURIComponent;
