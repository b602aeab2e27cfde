// ListVolumes: every volume of every configured cloud (the default cloud
// first), paged with max_entries and a signed next_token. Without
// max_entries the answer holds every volume (Cinder read a page of
// listPageSize at a time), up to what a client accepts in one message: past
// listResponseBytes it stops and hands out a next_token, as the spec allows.
import type { ListVolumesRequest__Output } from '../gen/csi/v1/ListVolumesRequest';
import type { ListVolumesResponse, _csi_v1_ListVolumesResponse_Entry as Entry } from '../gen/csi/v1/ListVolumesResponse';
import type { Volume } from '../openstack/types';
import { invalidArgument } from '../csi/errors';
import type { ControllerEnv, Op } from './env';
import { decodeListToken, encodeListToken } from './list-token';
import { collectEntries, type Segment } from './paging';
import { csiVolume, publishedNodeIds, volumeCondition } from './views';
import { listVolumesEntrySize } from './wire-size';

export async function listVolumes(env: ControllerEnv, req: ListVolumesRequest__Output, op: Op): Promise<ListVolumesResponse> {
  if (req.max_entries < 0) throw invalidArgument(`max_entries must not be negative, not ${req.max_entries}`);
  const key = env.settings.listTokenKey;
  const segments: Segment<Volume>[] = env.clouds.names.map((name) => ({
    cloud: name,
    list: (query, opts) => env.clouds.get(name)!.blockStorage.listVolumes(query, opts),
  }));
  const start = req.starting_token ? decodeListToken(req.starting_token, 'volumes', key) : undefined;
  const limits = { limit: req.max_entries > 0 ? req.max_entries : Infinity, pageSize: env.settings.listPageSize, maxBytes: env.settings.listResponseBytes };
  const toEntry = (segment: Segment<Volume>, item: Volume): Entry => ({
    volume: csiVolume(env, segment.cloud, item),
    status: { published_node_ids: publishedNodeIds(item), volume_condition: volumeCondition(item) },
  });
  const { entries, next } = await collectEntries(segments, start, limits, toEntry, listVolumesEntrySize, op);
  return { entries, next_token: next ? encodeListToken({ list: 'volumes', ...next }, key) : '' };
}
