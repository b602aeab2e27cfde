// Catalog parsing (Keystone v3 and v2.0 shapes), endpoint choice, Cinder
// version documents and microversion negotiation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseEndpoint, parseV2Catalog, parseV3Catalog, substituteProject, VOLUME_SERVICE_TYPES } from '../../src/openstack/catalog';
import { apiBaseUrl, chooseFromVersions, unversionedRoot } from '../../src/openstack/cinder-version';
import { isOpenStackError } from '../../src/openstack/errors';
import { negotiate } from '../../src/openstack/microversion';

const v3 = parseV3Catalog([
  { type: 'volumev2', endpoints: [{ interface: 'public', region_id: 'RegionOne', url: 'http://c/v2/p' }] },
  {
    type: 'volumev3',
    endpoints: [
      { interface: 'public', region_id: 'RegionOne', url: 'http://c1/v3/p/' },
      { interface: 'internal', region_id: 'RegionOne', url: 'http://c1-int/v3/p' },
      { interface: 'public', region: 'RegionTwo', url: 'http://c2/v3/p' },
    ],
  },
  { type: 'compute', endpoints: [{ interface: 'public', region_id: 'RegionOne', url: 'http://n/v2.1' }] },
]);

describe('catalog', () => {
  it('prefers volumev3, picks region and interface, trims the slash', () => {
    assert.deepEqual(chooseEndpoint(v3, VOLUME_SERVICE_TYPES, 'RegionOne', 'public'), { url: 'http://c1/v3/p', serviceType: 'volumev3' });
    assert.equal(chooseEndpoint(v3, VOLUME_SERVICE_TYPES, 'RegionOne', 'internal').url, 'http://c1-int/v3/p');
    assert.equal(chooseEndpoint(v3, VOLUME_SERVICE_TYPES, 'RegionTwo', 'public').url, 'http://c2/v3/p');
  });

  it('falls back along the type list and fails naming what is offered', () => {
    const only2 = v3.filter((e) => e.serviceType !== 'volumev3');
    assert.equal(chooseEndpoint(only2, VOLUME_SERVICE_TYPES, 'RegionOne', 'public').serviceType, 'volumev2');
    assert.throws(() => chooseEndpoint(v3, VOLUME_SERVICE_TYPES, 'RegionOne', 'admin'), (e) => isOpenStackError(e, 'config') && /offered: .*volumev3\/public@RegionOne/.test(e.message));
  });

  // Not not_found: DeleteVolume and ControllerUnpublish read that as "already gone" and answer OK.
  it('a region typo, an interface the catalog lacks or an empty catalog is a config error, never not_found', () => {
    const config = (e: unknown) => isOpenStackError(e, 'config') && /check region and interface/.test((e as Error).message);
    assert.throws(() => chooseEndpoint(v3, VOLUME_SERVICE_TYPES, 'regionone', 'public'), config);
    assert.throws(() => chooseEndpoint(v3, ['compute'], 'RegionOne', 'admin'), config);
    assert.throws(() => chooseEndpoint([], VOLUME_SERVICE_TYPES, undefined, 'public'), (e) => isOpenStackError(e, 'config') && /service at all .*; the catalog is empty:/.test(e.message));
  });

  it('a service absent from every region says so, not "check region and interface", and lists only the regions and interfaces there are', () => {
    // Five services in three regions on three interfaces: 45 endpoints, none of them Cinder's.
    const others = parseV3Catalog(
      ['identity', 'compute', 'image', 'network', 'placement'].map((type) => ({
        type,
        endpoints: ['RegionOne', 'RegionTwo', 'RegionThree'].flatMap((region) => ['public', 'internal', 'admin'].map((iface) => ({ interface: iface, region_id: region, url: `http://${type}.${region}.${iface}/` }))),
      })),
    );
    assert.throws(
      () => chooseEndpoint(others, VOLUME_SERVICE_TYPES, 'RegionOne', 'public'),
      (e) => {
        assert.ok(isOpenStackError(e, 'config'));
        assert.equal(
          e.message,
          'the service catalog has no volumev3 or block-storage or volumev2 or volume service at all (the cloud has no Cinder, or endpoint filtering hides it from this project); ' +
            "its other services are in regions RegionOne, RegionThree, RegionTwo on interfaces public, internal, admin: ask the cloud's admins to register Cinder's endpoints, or to add them to this project's endpoint filter",
        );
        return true;
      },
    );
    const novaless = others.filter((ep) => ep.serviceType !== 'compute' && ep.region === 'RegionOne' && ep.interface === 'public');
    assert.throws(() => chooseEndpoint(novaless, ['compute'], undefined, 'public'), (e) => isOpenStackError(e, 'config') && /no compute service at all \(the cloud has no Nova, .*in region RegionOne on interface public:/.test(e.message));
    // Present elsewhere: only that service's endpoints are listed.
    const cinderElsewhere = [...others, ...parseV3Catalog([{ type: 'volumev3', endpoints: [{ interface: 'internal', region_id: 'RegionTwo', url: 'http://c/' }] }])];
    assert.throws(
      () => chooseEndpoint(cinderElsewhere, VOLUME_SERVICE_TYPES, 'RegionOne', 'public'),
      (e) => isOpenStackError(e, 'config') && /\(offered: volumev3\/internal@RegionTwo\); check region and interface/.test(e.message),
    );
  });

  it('parses the v2.0 shape (publicURL, internalURL, adminURL)', () => {
    const v2 = parseV2Catalog([{ type: 'volume', endpoints: [{ region: 'DFW', publicURL: 'https://dfw/v1/123', internalURL: 'https://snet-dfw/v1/123' }] }]);
    assert.equal(chooseEndpoint(v2, VOLUME_SERVICE_TYPES, 'DFW', 'internal').url, 'https://snet-dfw/v1/123');
    assert.equal(chooseEndpoint(v2, VOLUME_SERVICE_TYPES, undefined, 'public').serviceType, 'volume');
  });

  it('fills project placeholders', () => {
    assert.equal(substituteProject('http://c/v3/{project_id}', 'p1'), 'http://c/v3/p1');
    assert.equal(substituteProject('http://c/v3/%(tenant_id)s', 'p1'), 'http://c/v3/p1');
    assert.equal(substituteProject('http://c/v3/$(project_id)s', 'p1'), 'http://c/v3/p1');
  });
});

describe('cinder version document', () => {
  const zed = [{ id: 'v3.0', status: 'CURRENT', version: '3.70', min_version: '3.0' }];
  it('negotiates our highest known microversion within the server range', () => {
    assert.deepEqual(chooseFromVersions(zed, 'auto'), { apiVersion: '3', microversion: '3.60' });
    assert.deepEqual(chooseFromVersions([{ id: 'v3.0', version: '3.27', min_version: '3.0' }], 'auto'), { apiVersion: '3', microversion: '3.27' });
    assert.equal(negotiate('3.60', '3.0', '3.9'), '3.9');
    assert.equal(negotiate('3.60', '3.61', '3.70'), null);
  });
  it('falls back to v2, then v1, and honours a forced version', () => {
    const old = [{ id: 'v1.0', status: 'DEPRECATED' }, { id: 'v2.0', status: 'SUPPORTED' }];
    assert.deepEqual(chooseFromVersions(old, 'auto'), { apiVersion: '2', microversion: null });
    assert.deepEqual(chooseFromVersions(old, '1'), { apiVersion: '1', microversion: null });
    assert.equal(chooseFromVersions(old, '3'), null);
  });
  it('finds the root and the API base from versioned and unversioned catalog URLs', () => {
    assert.equal(unversionedRoot('http://h:8776/v3/p'), 'http://h:8776');
    assert.equal(unversionedRoot('https://h/volume/v2/p'), 'https://h/volume');
    assert.equal(apiBaseUrl('http://h:8776/v3/p', '3', 'p'), 'http://h:8776/v3/p');
    assert.equal(apiBaseUrl('http://h:8776/v3/p', '2', 'p'), 'http://h:8776/v2/p');
    assert.equal(apiBaseUrl('http://h/volume', '3', 'p'), 'http://h/volume/v3/p');
  });
});
