// The node's identity from the metadata service, as real ones answer:
// slowly, with a 5xx before they work, without an availability zone, or not at
// all; and the search order falling through to it. (Config drive cases, which
// make config-2 filesystems, are in config-drive.test.ts; the order tests here
// name no config drive, so they cannot see one made there.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../src/log';
import { createInstanceMetadata, readMetadataService } from '../../src/openstack/metadata';
import { isOpenStackError } from '../../src/openstack/errors';

const UUID = '3f5c1d9e-0a6b-4c1e-9d2f-7b8a9c0d1e2f';

/** A metadata service whose answers the test scripts, one per request; it records each path asked. */
function metadataService(answers: Array<{ status?: number; delayMs?: number; body?: unknown }>) {
  const asked: string[] = [];
  const server = http.createServer((req, res) => {
    asked.push(req.url ?? '');
    const a = answers[Math.min(asked.length - 1, answers.length - 1)];
    setTimeout(() => {
      res.statusCode = a.status ?? 200;
      res.setHeader('content-type', a.status && a.status >= 300 ? 'text/plain' : 'application/json');
      res.end(a.status && a.status >= 300 ? `${a.status}` : JSON.stringify(a.body));
    }, a.delayMs ?? 0);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = new Promise<string>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
  return { asked, url };
}

const META = { uuid: UUID, name: 'vm-1', availability_zone: 'az-3', hostname: 'vm-1.novalocal', devices: [] };

test('a metadata service slower than the first timeout is heard on a later attempt', async () => {
  // Every answer takes 300 ms; the first attempt waits 200 ms, the next ones longer.
  const svc = metadataService([{ delayMs: 300, body: META }]);
  const id = await readMetadataService(await svc.url, 200, 3, silentLogger);
  assert.equal(id.instanceId, UUID);
  assert.equal(svc.asked.length, 2, 'the first attempt timed out, the second was answered');
});

test('a 503 and a 500 before it works: retried, then read', async () => {
  const svc = metadataService([{ status: 503 }, { status: 500 }, { body: META }]);
  const id = await readMetadataService(await svc.url, 1_000, 3, silentLogger);
  assert.deepEqual([id.instanceId, id.availabilityZone, id.source], [UUID, 'az-3', 'metadata-service']);
  assert.deepEqual(svc.asked, Array(3).fill('/openstack/latest/meta_data.json'));
});

test('a 404 (a metadata service with no openstack/ tree) is not retried', async () => {
  const svc = metadataService([{ status: 404 }]);
  await assert.rejects(readMetadataService(await svc.url, 1_000, 3, silentLogger), (err: unknown) => isOpenStackError(err, 'not_found'));
  assert.equal(svc.asked.length, 1);
});

test('meta_data.json without availability_zone, or with null (an instance in no zone), gives no zone, not an error', async () => {
  const { availability_zone: _, ...noZone } = META;
  for (const body of [noZone, { ...META, availability_zone: null }, { ...META, availability_zone: '' }]) {
    const svc = metadataService([{ body }]);
    const id = await readMetadataService(await svc.url, 1_000, 1, silentLogger);
    assert.deepEqual([id.instanceId, id.availabilityZone], [UUID, null]);
  }
});

test('meta_data.json without a uuid is an error naming it', async () => {
  const { uuid: _, ...noUuid } = META;
  const svc = metadataService([{ body: noUuid }]);
  await assert.rejects(readMetadataService(await svc.url, 1_000, 1, silentLogger), /no uuid/);
});

test('the identity from the metadata service: a zone-only override still applies, a failure is not kept', async () => {
  const svc = metadataService([{ status: 404 }, { body: META }]);
  const metadata = createInstanceMetadata({ order: ['metadataService'], metadataUrl: await svc.url, logger: silentLogger });
  await assert.rejects(metadata.identity(), /could not find this instance's identity \(metadataService: /);
  // Asked again (the driver retries in the background), it is found: the failure was not cached.
  assert.equal((await metadata.identity()).instanceId, UUID);
  assert.equal(svc.asked.length, 2);
  // Once found it is kept for the process: no further requests.
  await metadata.identity();
  assert.equal(svc.asked.length, 2);

  const zoned = createInstanceMetadata({ order: ['metadataService'], metadataUrl: await svc.url, override: { availabilityZone: 'pinned' }, logger: silentLogger });
  assert.deepEqual(await zoned.identity().then((i) => [i.instanceId, i.availabilityZone]), [UUID, 'pinned']);
});

test('a node plugin asks the metadata service only, never Keystone, Cinder or Nova, and looks its identity up again when restarted', async (t) => {
  const { startTestDriver } = await import('../helpers/driver');
  const svc = metadataService([{ body: META }, { body: { ...META, uuid: 'b8a3a0f2-5d7e-4b1a-9c6e-2f4d8e1a7c30' } }]);
  const url = await svc.url;
  const nodeInfo = async () => {
    const driver = await startTestDriver({
      mode: 'node',
      sim: { hypervisor: false },
      configure: (config) => {
        config.node.instanceId = undefined;
        config.node.availabilityZone = undefined;
        config.node.metadataUrl = url;
        // The cloud a controller would use: every request to it is recorded here too.
        for (const cloud of config.clouds) {
          cloud.auth.authUrl = `${url}/identity/v3`;
          cloud.endpointOverrides = { volume: `${url}/volume/v3`, compute: `${url}/compute/v2.1` };
        }
      },
    });
    try {
      return await driver.call(driver.node, 'NodeGetInfo', {});
    } finally {
      await driver.stop();
    }
  };
  const first = await nodeInfo();
  assert.equal(first.node_id, UUID);
  assert.deepEqual(first.accessible_topology?.segments, { 'topology.cinder.csi.openstack.org/zone': 'az-3' });
  const second = await nodeInfo();
  assert.equal(second.node_id, 'b8a3a0f2-5d7e-4b1a-9c6e-2f4d8e1a7c30', 'a restarted plugin asks again');
  assert.deepEqual(svc.asked, ['/openstack/latest/meta_data.json', '/openstack/latest/meta_data.json']);
  t.diagnostic(`requests: ${svc.asked.join(', ')}`);
});
