import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { VolumeType } from '../../src/openstack/types';
import { capabilitiesProblem, capabilityProblem, isMultiattachType } from '../../src/controller/capabilities';
import { parseCapability } from '../../src/node/capability';
import { Code } from '../../src/csi/errors';

const cap = (mode: string, type: 'block' | 'mount' | undefined) =>
  ({ access_mode: { mode }, ...(type ? { access_type: type, [type]: {} } : {}) }) as any;

describe('access modes Cinder can honour', () => {
  it('allows every single-node mode, block or mount, on any volume', () => {
    for (const mode of ['SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER']) {
      assert.equal(capabilityProblem(cap(mode, 'mount'), false), null, mode);
      assert.equal(capabilityProblem(cap(mode, 'block'), false), null, mode);
    }
  });

  it('allows multi-node modes only on multiattach volumes and only as a block device, as the node plugin does', () => {
    for (const mode of ['MULTI_NODE_READER_ONLY', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER']) {
      assert.match(capabilityProblem(cap(mode, 'block'), false) ?? '', /multiattach/, mode);
      assert.equal(capabilityProblem(cap(mode, 'block'), true), null, mode);
      // A filesystem volume would be made and attached, then never staged (parseCapability refuses it).
      assert.match(capabilityProblem(cap(mode, 'mount'), true) ?? '', /volumeMode: Block/, mode);
      assert.throws(() => parseCapability(cap(mode, 'mount')), (e: any) => e.code === Code.FAILED_PRECONDITION, mode);
    }
  });

  it('requires an access type and a known mode', () => {
    assert.match(capabilityProblem(cap('SINGLE_NODE_WRITER', undefined), false) ?? '', /access type/);
    assert.match(capabilityProblem(cap('UNKNOWN', 'mount'), false) ?? '', /access mode/);
    assert.match(capabilityProblem({ access_type: 'mount', mount: {}, access_mode: null } as any, false) ?? '', /access mode/);
  });

  it('reports the first problem of a list', () => {
    assert.equal(capabilitiesProblem([cap('SINGLE_NODE_WRITER', 'mount')], false), null);
    assert.match(capabilitiesProblem([cap('SINGLE_NODE_WRITER', 'mount'), cap('MULTI_NODE_MULTI_WRITER', 'block')], false) ?? '', /MULTI_NODE_MULTI_WRITER/);
  });

  it('recognises multiattach volume types the way Cinder writes them', () => {
    const type = (spec?: string): VolumeType => ({ id: 't', name: 't', isPublic: true, extraSpecs: spec === undefined ? {} : { multiattach: spec } });
    assert.equal(isMultiattachType(type('<is> True')), true);
    assert.equal(isMultiattachType(type('<is> true')), true);
    assert.equal(isMultiattachType(type('True')), false);
    assert.equal(isMultiattachType(type('<is> False')), false);
    assert.equal(isMultiattachType(type()), false);
  });
});
