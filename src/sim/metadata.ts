// The metadata service's meta_data.json, one per instance, as Nova serves it
// at http://169.254.169.254/openstack/latest/meta_data.json. No token needed.
import { randomBytes } from 'node:crypto';
import { httpError, type Route } from './http';
import type { CloudState } from './state';

export function metadataRoutes(state: CloudState): Route[] {
  const instance = (id: string) => {
    const inst = state.instances.get(id);
    if (!inst) throw httpError('metadata', 404, 'The resource could not be found.');
    return inst;
  };
  return [
    {
      service: 'metadata',
      method: 'GET',
      template: '/metadata/{instance}/openstack',
      auth: false,
      handler: (ctx) => {
        instance(ctx.params.instance);
        return { status: 200, body: 'latest\n', headers: { 'content-type': 'text/plain; charset=UTF-8' } };
      },
    },
    {
      service: 'metadata',
      method: 'GET',
      template: '/metadata/{instance}/openstack/latest/meta_data.json',
      auth: false,
      handler: (ctx) => {
        const inst = instance(ctx.params.instance);
        const hostname = inst.name.toLowerCase().replace(/[^a-z0-9-]/g, '-');
        return {
          status: 200,
          body: {
            uuid: inst.id,
            meta: {},
            hostname,
            name: inst.name,
            launch_index: 0,
            availability_zone: inst.availabilityZone,
            random_seed: randomBytes(512).toString('base64'),
            project_id: state.projectId,
            devices: [],
            dedicated_cpus: [],
          },
        };
      },
    },
  ];
}
