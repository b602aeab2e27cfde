// The CSI Node service: handlers that use only this machine (block devices,
// mkfs, mount). It never calls Cinder or Nova; the instance identity arrives
// in NodeSettings.
//
// One handler per RPC, each a thin shell over a plain function of its module
// (stage.ts, unstage.ts, publish.ts, unpublish.ts, expand.ts, volume-stats.ts,
// info.ts). The shell checks the request's fields and names the volume on the
// call's log line; a change then runs in the volume's in-flight slot (an
// identical retry joins the running call, another operation on the volume gets
// ABORTED), checked first so that a malformed request is INVALID_ARGUMENT,
// never ABORTED. Stats, a read that kubelet polls, runs directly.
import type { Handler } from '../csi/context';
import { InFlight } from '../csi/inflight';
import { failedPrecondition, invalidArgument, requireId } from '../csi/errors';
import type { NodeStageVolumeRequest__Output } from '../gen/csi/v1/NodeStageVolumeRequest';
import type { NodeStageVolumeResponse } from '../gen/csi/v1/NodeStageVolumeResponse';
import type { NodeUnstageVolumeRequest__Output } from '../gen/csi/v1/NodeUnstageVolumeRequest';
import type { NodeUnstageVolumeResponse } from '../gen/csi/v1/NodeUnstageVolumeResponse';
import type { NodePublishVolumeRequest__Output } from '../gen/csi/v1/NodePublishVolumeRequest';
import type { NodePublishVolumeResponse } from '../gen/csi/v1/NodePublishVolumeResponse';
import type { NodeUnpublishVolumeRequest__Output } from '../gen/csi/v1/NodeUnpublishVolumeRequest';
import type { NodeUnpublishVolumeResponse } from '../gen/csi/v1/NodeUnpublishVolumeResponse';
import type { NodeGetVolumeStatsRequest__Output } from '../gen/csi/v1/NodeGetVolumeStatsRequest';
import type { NodeGetVolumeStatsResponse } from '../gen/csi/v1/NodeGetVolumeStatsResponse';
import type { NodeExpandVolumeRequest__Output } from '../gen/csi/v1/NodeExpandVolumeRequest';
import type { NodeExpandVolumeResponse } from '../gen/csi/v1/NodeExpandVolumeResponse';
import type { NodeGetCapabilitiesRequest__Output } from '../gen/csi/v1/NodeGetCapabilitiesRequest';
import type { NodeGetCapabilitiesResponse } from '../gen/csi/v1/NodeGetCapabilitiesResponse';
import type { NodeGetInfoRequest__Output } from '../gen/csi/v1/NodeGetInfoRequest';
import type { NodeGetInfoResponse } from '../gen/csi/v1/NodeGetInfoResponse';
import type { NodeSettings } from './settings';
import { lookupPath, validatePath } from './paths';
import { isReadOnlyMode, parseCapability } from './capability';
import { createNodeEnv } from './env';
import { stageVolume } from './stage';
import { unstageVolume } from './unstage';
import { publishVolume } from './publish';
import { unpublishVolume } from './unpublish';
import { expandVolume } from './expand';
import { volumeStats } from './volume-stats';
import { nodeCapabilities, nodeInfo } from './info';

export interface NodeService {
  NodeStageVolume: Handler<NodeStageVolumeRequest__Output, NodeStageVolumeResponse>;
  NodeUnstageVolume: Handler<NodeUnstageVolumeRequest__Output, NodeUnstageVolumeResponse>;
  NodePublishVolume: Handler<NodePublishVolumeRequest__Output, NodePublishVolumeResponse>;
  NodeUnpublishVolume: Handler<NodeUnpublishVolumeRequest__Output, NodeUnpublishVolumeResponse>;
  NodeGetVolumeStats: Handler<NodeGetVolumeStatsRequest__Output, NodeGetVolumeStatsResponse>;
  NodeExpandVolume: Handler<NodeExpandVolumeRequest__Output, NodeExpandVolumeResponse>;
  NodeGetCapabilities: Handler<NodeGetCapabilitiesRequest__Output, NodeGetCapabilitiesResponse>;
  NodeGetInfo: Handler<NodeGetInfoRequest__Output, NodeGetInfoResponse>;
}

// The volume_context key that asks a stage to grow the filesystem to its disk (stage.ts).
export { VOLUME_CONTEXT_RESIZE_REQUIRED } from './stage';

export function createNodeService(settings: NodeSettings): NodeService {
  const inflight = new InFlight();
  const env = createNodeEnv(settings);

  // ---- NodeStageVolume / NodeUnstageVolume (stage.ts, unstage.ts) ----------

  const NodeStageVolume: NodeService['NodeStageVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const stagingPath = validatePath(req.staging_target_path, 'staging_target_path');
    const cap = parseCapability(req.volume_capability);
    ctx.annotate({ volume_id: volumeId, staging_target_path: stagingPath, access_type: cap.access });
    await inflight.run(volumeId, 'NodeStageVolume', req, ctx.signal, (signal) => stageVolume(env, req, stagingPath, cap, signal, ctx));
    return {};
  };

  const NodeUnstageVolume: NodeService['NodeUnstageVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const stagingPath = validatePath(req.staging_target_path, 'staging_target_path');
    ctx.annotate({ volume_id: volumeId, staging_target_path: stagingPath });
    await inflight.run(volumeId, 'NodeUnstageVolume', req, ctx.signal, (signal) => unstageVolume(env, volumeId, stagingPath, signal, ctx));
    return {};
  };

  // ---- NodePublishVolume / NodeUnpublishVolume (publish.ts, unpublish.ts) --

  const NodePublishVolume: NodeService['NodePublishVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const targetPath = validatePath(req.target_path, 'target_path');
    const cap = parseCapability(req.volume_capability);
    // The spec's code when a plugin with STAGE_UNSTAGE_VOLUME gets no staging path (after the required fields).
    if (!req.staging_target_path) {
      throw failedPrecondition(`staging_target_path is missing: this plugin stages volumes (STAGE_UNSTAGE_VOLUME); stage the volume and pass its staging path`);
    }
    const stagingPath = validatePath(req.staging_target_path, 'staging_target_path');
    const readOnly = req.readonly || isReadOnlyMode(cap.mode);
    ctx.annotate({ volume_id: volumeId, target_path: targetPath, access_type: cap.access, readonly: readOnly });
    await inflight.run(volumeId, 'NodePublishVolume', req, ctx.signal, (signal) =>
      publishVolume(env, req, cap, stagingPath, targetPath, readOnly, signal, ctx),
    );
    return {};
  };

  const NodeUnpublishVolume: NodeService['NodeUnpublishVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const targetPath = validatePath(req.target_path, 'target_path');
    ctx.annotate({ volume_id: volumeId, target_path: targetPath });
    await inflight.run(volumeId, 'NodeUnpublishVolume', req, ctx.signal, (signal) => unpublishVolume(env, volumeId, targetPath, signal, ctx));
    return {};
  };

  // ---- NodeExpandVolume (expand.ts) -----------------------------------------

  const NodeExpandVolume: NodeService['NodeExpandVolume'] = async (req, ctx) => {
    const volumeId = requireId(req.volume_id, 'volume_id');
    const volumePath = lookupPath(req.volume_path, 'volume_path', volumeId);
    const cap = req.volume_capability ? parseCapability(req.volume_capability) : null;
    if (Number(req.capacity_range?.required_bytes ?? 0) < 0) throw invalidArgument('capacity_range.required_bytes must not be negative');
    ctx.annotate({ volume_id: volumeId, volume_path: volumePath });
    return inflight.run(volumeId, 'NodeExpandVolume', req, ctx.signal, (signal) => expandVolume(env, req, volumeId, volumePath, cap, signal, ctx));
  };

  return {
    NodeStageVolume,
    NodeUnstageVolume,
    NodePublishVolume,
    NodeUnpublishVolume,
    // A read, run directly (volume-stats.ts says why).
    NodeGetVolumeStats: (req, ctx) => volumeStats(env, req, ctx),
    NodeExpandVolume,
    NodeGetCapabilities: async () => ({ capabilities: nodeCapabilities() }),
    NodeGetInfo: async () => nodeInfo(env.settings),
  };
}
