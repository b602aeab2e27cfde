// Point a driver config at a simulated OpenStack: its cloud, and for the node
// side one emulated instance (ID, zone, metadata service, and the device root
// where its attached volumes appear). Used by `serve --sim`, the demo and the
// test harness, so the three run the driver the same way.
import type { DriverConfig } from '../config/config';
import type { SimInstance, Simulator } from '../sim';

export function pointConfigAtSimulator(config: DriverConfig, sim: Simulator, instance: SimInstance, nodeStateDir: string): void {
  config.clouds = [sim.cloudConfig()];
  // An explicit --node-id or zone in the config still wins.
  config.node.instanceId = config.node.instanceId ?? instance.id;
  config.node.availabilityZone = config.node.availabilityZone ?? instance.availabilityZone;
  config.node.deviceRoot = instance.deviceRoot;
  config.node.stateDir = nodeStateDir;
  config.node.metadataUrl = instance.metadataUrl;
  config.node.metadataSearchOrder = ['metadataService'];
}
