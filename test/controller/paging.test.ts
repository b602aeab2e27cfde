import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Code } from '../../src/csi/errors';
import { OpenStackError } from '../../src/openstack/errors';
import { collect, collectEntries, type Position, type Segment } from '../../src/controller/paging';

type Item = { id: string };

/** A collection paged the way Cinder pages: limit, marker = last ID, next while more remain. */
function collection(cloud: string, ids: string[], opts: { ignoreLimit?: boolean } = {}): Segment<Item> {
  return {
    cloud,
    async list({ limit, marker }) {
      const start = marker === undefined ? 0 : ids.indexOf(marker) + 1;
      if (marker !== undefined && start === 0) throw new OpenStackError('bad_request', `marker ${marker} not found`);
      const items = ids.slice(start, opts.ignoreLimit ? undefined : start + limit).map((id) => ({ id }));
      const end = start + items.length;
      return { items, next: end < ids.length && !opts.ignoreLimit ? items[items.length - 1].id : undefined };
    },
  };
}

async function walk(segments: Segment<Item>[], budget: number): Promise<string[][]> {
  const pages: string[][] = [];
  let start: Position | undefined;
  do {
    const page = await collect(segments, start, budget, {});
    pages.push(page.items.map((i) => `${i.segment.cloud}/${i.item.id}`));
    start = page.next;
  } while (start && pages.length < 50);
  return pages;
}

describe('paging across collections', () => {
  it('fills each page across segment boundaries and ends without a position', async () => {
    const pages = await walk([collection('a', ['1', '2', '3']), collection('b', []), collection('c', ['4', '5'])], 2);
    assert.deepEqual(pages, [['a/1', 'a/2'], ['a/3', 'c/4'], ['c/5']]);
  });

  it('returns everything in one page when the budget allows', async () => {
    const pages = await walk([collection('a', ['1']), collection('b', ['2'])], 10);
    assert.deepEqual(pages, [['a/1', 'b/2']]);
  });

  it('copes with a service that ignores the limit', async () => {
    const pages = await walk([collection('a', ['1', '2', '3', '4', '5'], { ignoreLimit: true })], 2);
    assert.deepEqual(pages, [['a/1', 'a/2'], ['a/3', 'a/4'], ['a/5']]);
  });

  it('answers ABORTED for a position in an unknown segment or at a vanished marker', async () => {
    const segments = [collection('a', ['1', '2'])];
    await assert.rejects(collect(segments, { cloud: 'gone' }, 2, {}), (e: any) => e.code === Code.ABORTED);
    await assert.rejects(collect(segments, { cloud: 'a', marker: 'deleted' }, 2, {}), (e: any) => e.code === Code.ABORTED);
  });

  it('one call that pages on internally starts again from where the caller asked when a volume it paged from is deleted, taking nothing twice', async () => {
    const ids = ['1', '2', '3', '4', '5', '6', '7'];
    const inner = collection('a', ids);
    let calls = 0;
    // Between the call's first and second page, someone deletes the page's last volume: the call's own marker.
    const deleting: Segment<Item> = {
      cloud: 'a',
      async list(query, opts) {
        if (calls++ === 1) ids.splice(ids.indexOf('2'), 1);
        return inner.list(query, opts);
      },
    };
    const all = await collectEntries([deleting], undefined, { limit: Infinity, pageSize: 2, maxBytes: Infinity }, (_s, item) => item.id, () => 1, {});
    // '1' and '2' came in the first page, before '2' was deleted; the rest after the restart, '1' not again.
    assert.deepEqual(all.entries, ['1', '2', '3', '4', '5', '6', '7']);
    assert.equal(all.next, undefined);
  });

  it("a vanished marker from the caller's own token is still ABORTED, not a silent restart", async () => {
    await assert.rejects(
      collectEntries([collection('a', ['1', '2'])], { cloud: 'a', marker: 'deleted' }, { limit: Infinity, pageSize: 2, maxBytes: Infinity }, (_s, item) => item.id, () => 1, {}),
      (e: any) => e.code === Code.ABORTED,
    );
  });
});
