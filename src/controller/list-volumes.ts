// ListVolumes: every volume of every configured cloud (the default cloud
// first), paged with max_entries and a signed next_token.
import type { ListVolumesRequest__Output } from '../gen/csi/v1/ListVolumesRequest';
import type { ListVolumesResponse } from '../gen/csi/v1/ListVolumesResponse';
import type { Volume } from '../openstack/types';
import { invalidArgument } from '../csi/errors';
import type { ControllerEnv, Op } from './env';
import { decodeListToken, encodeListToken } from './list-token';
import { collect, type Segment } from './paging';
import { csiVolume, publishedNodeIds, volumeCondition } from './views';

export async function listVolumes(env: ControllerEnv, req: ListVolumesRequest__Output, op: Op): Promise<ListVolumesResponse> {
  if (req.max_entries < 0) throw invalidArgument(`max_entries must not be negative, not ${req.max_entries}`);
  const key = env.settings.listTokenKey;
  const start = req.starting_token ? decodeListToken(req.starting_token, 'volumes', key) : undefined;
  const segments: Segment<Volume>[] = env.clouds.names.map((name) => ({
    cloud: name,
    list: (query, opts) => env.clouds.get(name)!.blockStorage.listVolumes(query, opts),
  }));
  const budget = req.max_entries > 0 ? req.max_entries : env.settings.listPageSize;
  const page = await collect(segments, start, budget, op);
  return {
    entries: page.items.map(({ segment, item }) => ({
      volume: csiVolume(env, segment.cloud, item),
      status: { published_node_ids: publishedNodeIds(item), volume_condition: volumeCondition(item) },
    })),
    next_token: page.next ? encodeListToken({ list: 'volumes', ...page.next }, key) : '',
  };
}
