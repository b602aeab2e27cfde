// Nova compute v2.1: servers (read only) and their volume attachments, with
// the microversion rules that matter to a CSI driver (2.60 for multiattach,
// 2.70 tag, 2.79 delete_on_termination, 2.89 attachment and BDM IDs).
import { randomUUID } from 'node:crypto';
import { httpError, objectField, str, type Reply, type RequestContext, type Route } from './http';
import { atLeast, negotiate, type Microversion } from './microversion';
import type { AttachmentRecord, CloudState, InstanceRecord } from './state';

export interface NovaOptions {
  maxMicroversion: string;
  /** [compute] max_disk_devices_to_attach. */
  maxDiskDevices: number;
  baseUrl: () => string;
}

/** Nova's disk names: vda is the root disk, volumes get vdb, vdc, ... vdz, vdaa, ... */
export function deviceName(index: number): string {
  let n = index;
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `/dev/vd${s}`;
}

/**
 * The volume states Cinder reserves an attachment from (volume API
 * _attachment_reserve). Not 'reserved': a multiattach volume being attached
 * elsewhere takes no second attachment until that one is done.
 */
function reservable(vol: { multiattach: boolean }): string[] {
  return vol.multiattach ? ['available', 'in-use', 'downloading'] : ['available', 'downloading'];
}

export class NovaApi {
  constructor(
    private readonly state: CloudState,
    private readonly opts: NovaOptions,
  ) {}

  private versionEntry(): unknown {
    return {
      id: 'v2.1',
      status: 'CURRENT',
      version: this.opts.maxMicroversion,
      min_version: '2.1',
      updated: '2013-07-23T11:33:21Z',
      links: [{ rel: 'self', href: `${this.opts.baseUrl()}/compute/v2.1/` }],
    };
  }

  routes(): Route[] {
    const r = (method: string, path: string, handler: (ctx: RequestContext, mv: Microversion) => Reply): Route => ({
      service: 'compute',
      method,
      template: `/compute/v2.1${path}`,
      auth: true,
      handler: (ctx) => handler(ctx, this.negotiate(ctx)),
    });
    // The unversioned root is served before Nova's request-ID middleware.
    const versions = (): Reply => ({ status: 200, body: { versions: [this.versionEntry()] }, noRequestId: true });
    return [
      { service: 'compute', method: 'GET', template: '/compute', auth: false, handler: versions },
      { service: 'compute', method: 'GET', template: '/compute/', auth: false, handler: versions },
      { service: 'compute', method: 'GET', template: '/compute/v2.1', auth: false, handler: () => ({ status: 200, body: { version: this.versionEntry() } }) },
      { service: 'compute', method: 'GET', template: '/compute/v2.1/', auth: false, handler: () => ({ status: 200, body: { version: this.versionEntry() } }) },
      r('GET', '/servers', () => ({ status: 200, body: { servers: [...this.state.instances.values()].map((i) => ({ id: i.id, name: i.name, links: this.links(i) })) } })),
      r('GET', '/servers/detail', (_ctx, mv) => ({ status: 200, body: { servers: [...this.state.instances.values()].map((i) => this.serverView(i, mv)) } })),
      r('GET', '/servers/{server}', (ctx, mv) => ({ status: 200, body: { server: this.serverView(this.server(ctx.params.server), mv) } })),
      r('GET', '/servers/{server}/os-volume_attachments', (ctx, mv) => {
        const inst = this.server(ctx.params.server);
        return { status: 200, body: { volumeAttachments: [...inst.attachments.values()].map((a) => this.attachmentView(a, mv)) } };
      }),
      r('POST', '/servers/{server}/os-volume_attachments', (ctx, mv) => this.attach(ctx, mv)),
      r('GET', '/servers/{server}/os-volume_attachments/{volume}', (ctx, mv) => {
        const inst = this.server(ctx.params.server);
        return { status: 200, body: { volumeAttachment: this.attachmentView(this.bdm(inst, ctx.params.volume), mv) } };
      }),
      r('DELETE', '/servers/{server}/os-volume_attachments/{volume}', (ctx, mv) => this.detach(ctx, mv)),
    ];
  }

  private negotiate(ctx: RequestContext): Microversion {
    const mv = negotiate(ctx, { service: 'compute', serviceType: 'compute', legacyHeader: 'x-openstack-nova-api-version', min: '2.1', max: this.opts.maxMicroversion });
    if (ctx.malformedBody) throw httpError('compute', 400, 'Malformed request body');
    return mv;
  }

  private server(id: string): InstanceRecord {
    const inst = this.state.instances.get(id);
    if (!inst) throw httpError('compute', 404, `Instance ${id} could not be found.`);
    return inst;
  }

  private bdm(inst: InstanceRecord, volumeId: string): AttachmentRecord {
    const a = inst.attachments.get(volumeId);
    if (!a) throw httpError('compute', 404, `Instance ${inst.id} is not attached to volume ${volumeId}`);
    return a;
  }

  /**
   * Nova's check_instance_state on a volume action: a shelved-offloaded server takes attaches and
   * detaches only from 2.20 (the API refuses below it with InstanceInvalidState, 409).
   */
  private checkVolumeAction(inst: InstanceRecord, action: 'attach_volume' | 'detach_volume', mv: Microversion): void {
    if (vmState(inst) === 'shelved_offloaded' && !atLeast(mv, '2.20')) {
      throw httpError('compute', 409, `Cannot '${action}' instance ${inst.id} while it is in vm_state shelved_offloaded`);
    }
  }

  private links(i: InstanceRecord): unknown[] {
    const base = this.opts.baseUrl();
    return [
      { rel: 'self', href: `${base}/compute/v2.1/servers/${i.id}` },
      { rel: 'bookmark', href: `${base}/compute/servers/${i.id}` },
    ];
  }

  /** A server as a project member sees it (no OS-EXT-SRV-ATTR admin fields), per microversion. */
  private serverView(i: InstanceRecord, mv: Microversion): unknown {
    const out: Record<string, unknown> = {
      id: i.id,
      name: i.name,
      status: i.status,
      tenant_id: this.state.projectId,
      user_id: this.state.userId,
      metadata: {},
      hostId: '',
      image: '',
      // From 2.47 the flavor is embedded instead of linked.
      flavor: atLeast(mv, '2.47')
        ? { vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0, original_name: 'm1.small', extra_specs: {} }
        : { id: '1', links: [{ rel: 'bookmark', href: `${this.opts.baseUrl()}/compute/flavors/1` }] },
      created: i.createdAt.replace(/\.\d+$/, 'Z'),
      updated: i.createdAt.replace(/\.\d+$/, 'Z'),
      addresses: {},
      accessIPv4: '',
      accessIPv6: '',
      links: this.links(i),
      'OS-DCF:diskConfig': 'MANUAL',
      progress: 0,
      'OS-EXT-AZ:availability_zone': i.availabilityZone,
      config_drive: '',
      key_name: null,
      'OS-SRV-USG:launched_at': i.createdAt,
      'OS-SRV-USG:terminated_at': null,
      'OS-EXT-STS:task_state': null,
      'OS-EXT-STS:vm_state': vmState(i),
      'OS-EXT-STS:power_state': 1,
      // delete_on_termination is listed from 2.3.
      'os-extended-volumes:volumes_attached': [...i.attachments.keys()].map((id) => (atLeast(mv, '2.3') ? { id, delete_on_termination: false } : { id })),
    };
    if (atLeast(mv, '2.9')) out.locked = false;
    if (atLeast(mv, '2.73')) out.locked_reason = null;
    if (atLeast(mv, '2.19')) out.description = null;
    if (atLeast(mv, '2.26')) out.tags = [];
    if (atLeast(mv, '2.63')) out.trusted_image_certificates = null;
    if (atLeast(mv, '2.90')) out['OS-EXT-SRV-ATTR:hostname'] = i.name;
    if (atLeast(mv, '2.71')) out.server_groups = [];
    if (atLeast(mv, '2.96')) out.pinned_availability_zone = null;
    return out;
  }

  /**
   * Nova's views of an attachment: its GET and list leave `device` out when there is none (a shelved-offloaded
   * server's), while the attach's own answer always has it, null then (Zed's api/openstack/compute/volumes.py).
   */
  private attachmentView(a: AttachmentRecord, mv: Microversion, answersAttach = false): unknown {
    const out: Record<string, unknown> = {};
    if (!atLeast(mv, '2.89')) out.id = a.volumeId;
    Object.assign(out, { serverId: a.serverId, volumeId: a.volumeId });
    if (a.device || answersAttach) out.device = a.device ?? null;
    if (atLeast(mv, '2.70')) out.tag = null;
    if (atLeast(mv, '2.79')) out.delete_on_termination = false;
    if (atLeast(mv, '2.89')) {
      out.attachment_id = a.attachmentId;
      out.bdm_uuid = a.bdmUuid;
    }
    return out;
  }

  private attach(ctx: RequestContext, mv: Microversion): Reply {
    const inst = this.server(ctx.params.server);
    this.checkVolumeAction(inst, 'attach_volume', mv);
    const body = objectField('compute', ctx.body, 'volumeAttachment');
    const volumeId = str(body.volumeId);
    if (!volumeId) throw httpError('compute', 400, "Invalid input for field/attribute volumeAttachment. Value: {}. 'volumeId' is a required property");
    const vol = this.state.volumes.get(volumeId);
    if (!vol) throw httpError('compute', 404, `Volume ${volumeId} could not be found.`);
    if (vol.multiattach && !atLeast(mv, '2.60')) {
      throw httpError('compute', 400, 'Multiattach volumes are only supported starting with compute API version 2.60.');
    }
    // Nova's _check_volume_already_attached (Zed's nova/compute/api.py): Nova's own mappings of the volume, an
    // attach still under way included. A volume that is not multiattach may have none, on any server (the
    // servers' UUIDs joined by spaces); a multiattach one none on this server. (Two attaches racing past this
    // check meet the compute manager's "volume <id> already attached" instead: the driver reads both.)
    const mappedTo = [...this.state.instances.values()].filter((i) => i.attachments.has(vol.id)).map((i) => i.id);
    if (!vol.multiattach && mappedTo.length > 0) {
      throw httpError('compute', 400, `Invalid volume: volume ${vol.id} is already attached to instances: ${mappedTo.join(' ')}`);
    }
    if (mappedTo.includes(inst.id)) throw httpError('compute', 400, `Invalid volume: volume ${vol.id} already attached`);
    if (!reservable(vol).includes(vol.status)) {
      // Cinder refuses the attachment (InvalidVolume, 400); Nova wraps
      // cinderclient's text for it in InvalidInput and answers 400.
      throw httpError(
        'compute',
        400,
        `Invalid input received: Invalid volume: Volume ${vol.id} status must be ${reservable(vol).join(' or ')} to reserve, ` +
          `but the current status is ${vol.status}. (HTTP 400) (Request-ID: req-${randomUUID()})`,
      );
    }
    if (vmState(inst) === 'shelved_offloaded') {
      return { status: 200, body: { volumeAttachment: this.attachmentView(this.state.attachShelved(vol, inst), mv, true) } };
    }
    // Nova's [cinder] cross_az_attach defaults to True, so zones are not compared here.
    // Nova counts every disk of the server when it picks the next device name, the root disk (vda) too.
    if (1 + inst.attachments.size >= this.opts.maxDiskDevices) {
      throw httpError('compute', 403, `The maximum allowed number of disk devices (${this.opts.maxDiskDevices}) to attach to a single instance has been exceeded.`);
    }
    const used = new Set([...inst.attachments.values()].map((a) => a.device));
    let i = 1;
    while (used.has(deviceName(i))) i++;
    const a = this.state.attach(vol, inst, deviceName(i));
    return { status: 200, body: { volumeAttachment: this.attachmentView(a, mv, true) } };
  }

  private detach(ctx: RequestContext, mv: Microversion): Reply {
    const inst = this.server(ctx.params.server);
    this.checkVolumeAction(inst, 'detach_volume', mv);
    const a = this.bdm(inst, ctx.params.volume);
    const vol = this.state.volumes.get(a.volumeId);
    if (!vol) throw httpError('compute', 404, `Volume ${a.volumeId} could not be found.`);
    // Nova asks Cinder's begin_detaching first: a conditional update that wants the volume 'in-use' (so
    // not while another attach of a multiattach volume holds it 'reserved' or 'attaching', nor mid-detach).
    if (a.state !== 'attached' || vol.status !== 'in-use') {
      throw httpError('compute', 400, "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.");
    }
    if (vmState(inst) === 'shelved_offloaded') this.state.detachShelved(vol, inst, a);
    else this.state.detach(vol, inst, a);
    return { status: 202 };
  }
}

function vmState(i: InstanceRecord): string {
  return i.status === 'SHELVED_OFFLOADED' ? 'shelved_offloaded' : 'active';
}
