// How many bytes a ListVolumes (or ListSnapshots) entry adds to the encoded response, computed
// from the message's shape instead of by encoding it (encoding every entry
// twice, here and in gRPC, costs ~25 us an entry). Counted the way the
// encoder (protobufjs, under @grpc/proto-loader) writes: every field that is
// set, empty strings and false included; null/undefined fields not at all.
// Every field number in these messages is below 16, so each tag is one byte.
// test/controller/wire-size.test.ts checks this against the real encoder.
import type { _csi_v1_ListVolumesResponse_Entry as Entry } from '../gen/csi/v1/ListVolumesResponse';
import type { Volume } from '../gen/csi/v1/Volume';
import type { VolumeContentSource } from '../gen/csi/v1/VolumeContentSource';
import type { VolumeCondition } from '../gen/csi/v1/VolumeCondition';
import type { _csi_v1_ListSnapshotsResponse_Entry as SnapshotEntry } from '../gen/csi/v1/ListSnapshotsResponse';
import type { Snapshot } from '../gen/csi/v1/Snapshot';

/** Bytes of a varint holding n (n >= 0; negative int64 take 10). */
function varintLength(n: number): number {
  if (n < 0) return 10;
  let length = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    length++;
  }
  return length;
}

/** A length-delimited field (string or message) whose payload has `size` bytes. */
const delimited = (size: number) => 1 + varintLength(size) + size;
const stringField = (s: string | null | undefined) => (s == null ? 0 : delimited(Buffer.byteLength(s)));

function mapField(map: Record<string, string> | null | undefined): number {
  let size = 0;
  // Each pair is an entry message with key (1) and value (2).
  for (const [k, v] of Object.entries(map ?? {})) size += delimited(stringField(k) + stringField(v));
  return size;
}

function contentSourceSize(source: VolumeContentSource): number {
  if (source.snapshot) return delimited(stringField(source.snapshot.snapshot_id));
  if (source.volume) return delimited(stringField(source.volume.volume_id));
  return 0;
}

function volumeSize(v: Volume): number {
  let size = 0;
  if (v.capacity_bytes != null) size += 1 + varintLength(Number(v.capacity_bytes));
  size += stringField(v.volume_id);
  size += mapField(v.volume_context);
  if (v.content_source) size += delimited(contentSourceSize(v.content_source));
  for (const t of v.accessible_topology ?? []) size += delimited(mapField(t.segments));
  return size;
}

function conditionSize(c: VolumeCondition): number {
  return (c.abnormal != null ? 2 : 0) + stringField(c.message);
}

/** The bytes `entry` adds to a ListVolumesResponse: its own field (tag, length) included. */
export function listVolumesEntrySize(entry: Entry): number {
  let size = 0;
  if (entry.volume) size += delimited(volumeSize(entry.volume));
  if (entry.status) {
    let status = 0;
    for (const id of entry.status.published_node_ids ?? []) status += stringField(id);
    if (entry.status.volume_condition) status += delimited(conditionSize(entry.status.volume_condition));
    size += delimited(status);
  }
  return delimited(size);
}

function snapshotSize(s: Snapshot): number {
  let size = 0;
  if (s.size_bytes != null) size += 1 + varintLength(Number(s.size_bytes));
  size += stringField(s.snapshot_id) + stringField(s.source_volume_id);
  if (s.creation_time) {
    const { seconds, nanos } = s.creation_time;
    size += delimited((seconds != null ? 1 + varintLength(Number(seconds)) : 0) + (nanos != null ? 1 + varintLength(nanos) : 0));
  }
  if (s.ready_to_use != null) size += 2;
  size += stringField(s.group_snapshot_id);
  return size;
}

/** The bytes `entry` adds to a ListSnapshotsResponse: its own field (tag, length) included. */
export function listSnapshotsEntrySize(entry: SnapshotEntry): number {
  return delimited(entry.snapshot ? delimited(snapshotSize(entry.snapshot)) : 0);
}
