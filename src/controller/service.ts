// The Controller service: one handler per RPC, each a thin shell over a plain
// function of its module. The shell picks what the call runs under: changes
// go through the in-flight registry (an identical retry joins the running
// call, a different change to the same object gets ABORTED), reads run
// directly under the caller's deadline.
import type { Logger } from '../log';
import type { CallContext, Handler } from '../csi/context';
import { InFlight } from '../csi/inflight';
import type { CreateVolumeRequest__Output } from '../gen/csi/v1/CreateVolumeRequest';
import type { CreateVolumeResponse } from '../gen/csi/v1/CreateVolumeResponse';
import type { DeleteVolumeRequest__Output } from '../gen/csi/v1/DeleteVolumeRequest';
import type { DeleteVolumeResponse } from '../gen/csi/v1/DeleteVolumeResponse';
import type { ControllerPublishVolumeRequest__Output } from '../gen/csi/v1/ControllerPublishVolumeRequest';
import type { ControllerPublishVolumeResponse } from '../gen/csi/v1/ControllerPublishVolumeResponse';
import type { ControllerUnpublishVolumeRequest__Output } from '../gen/csi/v1/ControllerUnpublishVolumeRequest';
import type { ControllerUnpublishVolumeResponse } from '../gen/csi/v1/ControllerUnpublishVolumeResponse';
import type { ValidateVolumeCapabilitiesRequest__Output } from '../gen/csi/v1/ValidateVolumeCapabilitiesRequest';
import type { ValidateVolumeCapabilitiesResponse } from '../gen/csi/v1/ValidateVolumeCapabilitiesResponse';
import type { ListVolumesRequest__Output } from '../gen/csi/v1/ListVolumesRequest';
import type { ListVolumesResponse } from '../gen/csi/v1/ListVolumesResponse';
import type { GetCapacityRequest__Output } from '../gen/csi/v1/GetCapacityRequest';
import type { GetCapacityResponse } from '../gen/csi/v1/GetCapacityResponse';
import type { ControllerGetCapabilitiesRequest__Output } from '../gen/csi/v1/ControllerGetCapabilitiesRequest';
import type { ControllerGetCapabilitiesResponse } from '../gen/csi/v1/ControllerGetCapabilitiesResponse';
import type { CreateSnapshotRequest__Output } from '../gen/csi/v1/CreateSnapshotRequest';
import type { CreateSnapshotResponse } from '../gen/csi/v1/CreateSnapshotResponse';
import type { DeleteSnapshotRequest__Output } from '../gen/csi/v1/DeleteSnapshotRequest';
import type { DeleteSnapshotResponse } from '../gen/csi/v1/DeleteSnapshotResponse';
import type { ListSnapshotsRequest__Output } from '../gen/csi/v1/ListSnapshotsRequest';
import type { ListSnapshotsResponse } from '../gen/csi/v1/ListSnapshotsResponse';
import type { GetSnapshotRequest__Output } from '../gen/csi/v1/GetSnapshotRequest';
import type { GetSnapshotResponse } from '../gen/csi/v1/GetSnapshotResponse';
import type { ControllerExpandVolumeRequest__Output } from '../gen/csi/v1/ControllerExpandVolumeRequest';
import type { ControllerExpandVolumeResponse } from '../gen/csi/v1/ControllerExpandVolumeResponse';
import type { ControllerGetVolumeRequest__Output } from '../gen/csi/v1/ControllerGetVolumeRequest';
import type { ControllerGetVolumeResponse } from '../gen/csi/v1/ControllerGetVolumeResponse';
import type { ControllerModifyVolumeRequest__Output } from '../gen/csi/v1/ControllerModifyVolumeRequest';
import type { ControllerModifyVolumeResponse } from '../gen/csi/v1/ControllerModifyVolumeResponse';
import { requireId, requireName } from '../csi/errors';
import { controllerCapabilities } from './capabilities';
import type { CloudSet } from './clouds';
import { createEnv, type ControllerEnv, type Op } from './env';
import { controllerSettings, type ControllerSettings } from './settings';
import { createVolume } from './create-volume';
import { SameNameChecks } from './same-name';
import { deleteVolume } from './delete-volume';
import { publishVolume, unpublishVolume } from './publish';
import { controllerGetVolume, validateVolumeCapabilities } from './inspect-volume';
import { listVolumes } from './list-volumes';
import { getCapacity } from './capacity';
import { createSnapshot, deleteSnapshot, getSnapshot, listSnapshots } from './snapshots';
import { expandVolume } from './expand';
import { modifyVolume } from './modify';

export interface ControllerService {
  CreateVolume: Handler<CreateVolumeRequest__Output, CreateVolumeResponse>;
  DeleteVolume: Handler<DeleteVolumeRequest__Output, DeleteVolumeResponse>;
  ControllerPublishVolume: Handler<ControllerPublishVolumeRequest__Output, ControllerPublishVolumeResponse>;
  ControllerUnpublishVolume: Handler<ControllerUnpublishVolumeRequest__Output, ControllerUnpublishVolumeResponse>;
  ValidateVolumeCapabilities: Handler<ValidateVolumeCapabilitiesRequest__Output, ValidateVolumeCapabilitiesResponse>;
  ListVolumes: Handler<ListVolumesRequest__Output, ListVolumesResponse>;
  GetCapacity: Handler<GetCapacityRequest__Output, GetCapacityResponse>;
  ControllerGetCapabilities: Handler<ControllerGetCapabilitiesRequest__Output, ControllerGetCapabilitiesResponse>;
  CreateSnapshot: Handler<CreateSnapshotRequest__Output, CreateSnapshotResponse>;
  DeleteSnapshot: Handler<DeleteSnapshotRequest__Output, DeleteSnapshotResponse>;
  ListSnapshots: Handler<ListSnapshotsRequest__Output, ListSnapshotsResponse>;
  GetSnapshot: Handler<GetSnapshotRequest__Output, GetSnapshotResponse>;
  ControllerExpandVolume: Handler<ControllerExpandVolumeRequest__Output, ControllerExpandVolumeResponse>;
  ControllerGetVolume: Handler<ControllerGetVolumeRequest__Output, ControllerGetVolumeResponse>;
  ControllerModifyVolume: Handler<ControllerModifyVolumeRequest__Output, ControllerModifyVolumeResponse>;
}

export interface ControllerDeps {
  clouds: CloudSet;
  /** Missing settings take the defaults documented in settings.ts. */
  settings: Partial<ControllerSettings>;
  logger: Logger;
}

type Operation<Req, Res> = (env: ControllerEnv, req: Req, op: Op) => Promise<Res>;

export function createControllerService(deps: ControllerDeps): { handlers: ControllerService; stop(): void } {
  const env = createEnv(deps.clouds, controllerSettings(deps.settings), deps.logger);
  const inflight = new InFlight();
  const sameNameChecks = new SameNameChecks(env, {
    delayMs: env.settings.sameNameCheckMs,
    // The name's CreateVolume slot: a CreateVolume of the name meanwhile is ABORTED and retried.
    exclusive: (name, request, signal, work) => inflight.run(`volume-name:${name}`, 'a look for other volumes of the same name', request, signal, work),
    logger: deps.logger,
  });
  env.sameNameChecks = sameNameChecks;

  /** A change to the object named by `key`, run at most once at a time. */
  const change =
    <Req, Res>(operation: string, keyOf: (req: Req) => string, run: Operation<Req, Res>): Handler<Req, Res> =>
    (req: Req, ctx: CallContext) =>
      inflight.run(keyOf(req), operation, req, ctx.signal, (signal) => run(env, req, { signal }));

  /** A read: no registry, bounded by the caller's deadline. */
  const read =
    <Req, Res>(run: Operation<Req, Res>): Handler<Req, Res> =>
    (req: Req, ctx: CallContext) =>
      run(env, req, { signal: ctx.signal, deadline: ctx.deadline ?? undefined });

  const volumeKey = (req: { volume_id: string }) => `volume:${requireId(req.volume_id, 'volume_id')}`;
  // Publishing one multiattach volume to several nodes may run in parallel;
  // publish and unpublish of one volume on one node may not.
  const attachmentKey = (req: { volume_id: string; node_id: string }) => `${volumeKey(req)}@${req.node_id || '*'}`;

  const createVolumeOnce = change('CreateVolume', (req: CreateVolumeRequest__Output) => `volume-name:${requireName(req.name, 'name')}`, createVolume);
  const createSnapshotOnce = change('CreateSnapshot', (req: CreateSnapshotRequest__Output) => `snapshot-name:${requireName(req.name, 'name')}`, createSnapshot);

  const handlers: ControllerService = {
    // The new IDs go on the call's log line.
    CreateVolume: async (req, ctx) => {
      const res = await createVolumeOnce(req, ctx);
      ctx.annotate({ volume_id: res.volume?.volume_id });
      return res;
    },
    CreateSnapshot: async (req, ctx) => {
      const res = await createSnapshotOnce(req, ctx);
      ctx.annotate({ snapshot_id: res.snapshot?.snapshot_id, ready_to_use: res.snapshot?.ready_to_use });
      return res;
    },
    DeleteVolume: change('DeleteVolume', volumeKey, deleteVolume),
    ControllerPublishVolume: change('ControllerPublishVolume', attachmentKey, publishVolume),
    ControllerUnpublishVolume: change('ControllerUnpublishVolume', attachmentKey, unpublishVolume),
    ControllerExpandVolume: change('ControllerExpandVolume', volumeKey, expandVolume),
    ControllerModifyVolume: change('ControllerModifyVolume', volumeKey, modifyVolume),
    DeleteSnapshot: change('DeleteSnapshot', (req) => `snapshot:${requireId(req.snapshot_id, 'snapshot_id')}`, deleteSnapshot),
    ValidateVolumeCapabilities: read(validateVolumeCapabilities),
    ListVolumes: read(listVolumes),
    GetCapacity: read(getCapacity),
    ListSnapshots: read(listSnapshots),
    GetSnapshot: read(getSnapshot),
    ControllerGetVolume: read(controllerGetVolume),
    ControllerGetCapabilities: async () => ({ capabilities: controllerCapabilities(env.settings.advertiseGetSnapshot) }),
  };
  return { handlers, stop: () => sameNameChecks.stop() };
}
