// NodeGetCapabilities and NodeGetInfo: what this node service does, and the
// node as the scheduler sees it.
import { TOPOLOGY_ZONE_KEY } from '../csi/constants';
import type { NodeGetCapabilitiesResponse } from '../gen/csi/v1/NodeGetCapabilitiesResponse';
import type { NodeGetInfoResponse } from '../gen/csi/v1/NodeGetInfoResponse';
import type { NodeSettings } from './settings';

export function nodeCapabilities(): NodeGetCapabilitiesResponse['capabilities'] {
  return (['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'EXPAND_VOLUME', 'VOLUME_CONDITION', 'SINGLE_NODE_MULTI_WRITER'] as const).map(
    (type) => ({ rpc: { type } }),
  );
}

export function nodeInfo(settings: NodeSettings): NodeGetInfoResponse {
  return {
    node_id: settings.nodeId,
    max_volumes_per_node: settings.maxVolumesPerNode,
    accessible_topology: settings.availabilityZone ? { segments: { [TOPOLOGY_ZONE_KEY]: settings.availabilityZone } } : null,
  };
}
