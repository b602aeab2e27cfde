// What the node service needs to know about the machine it runs on. The CLI
// builds this (instance ID and zone come from the config drive or metadata
// service); the node service itself never talks to OpenStack.

export interface NodeSettings {
  /** The Nova instance UUID: ControllerPublishVolume attaches to this server. */
  nodeId: string;
  /** The instance's availability zone, or null when unknown (no topology is reported then). */
  availabilityZone: string | null;
  /** How many volumes the scheduler may place on this node. Never 0 (0 means "no limit" to Kubernetes). */
  maxVolumesPerNode: number;
  /** Where device nodes and the udev by-id links live; '/dev' on a real node, a temp dir in tests. */
  deviceRoot: string;
  /** Where sysfs is mounted; '/sys' on a real node, a temp dir in tests of the serial fallback. */
  sysfsRoot: string;
  /** Where we remember block-mode staging (there is no mount to remember it by). */
  stateDir: string;
  /** kubelet's root directory (its --root-dir): kubelet's own binds of our raw block publishes are under it. */
  kubeletRoot: string;
  /**
   * Accept staging paths only below <kubeletRoot>/plugins/kubernetes.io/csi/ and targets only below
   * <kubeletRoot>/pods/ (raw block: <kubeletRoot>/plugins/kubernetes.io/csi/volumeDevices/publish/), where
   * kubelet puts them (paths.ts). Off unless configured: csi-sanity and people trying the driver by hand use other paths.
   */
  confinePaths?: boolean;
  /** How long NodeStageVolume waits for the attached disk to appear (also bounded by the caller's deadline). */
  discoveryTimeoutMs?: number;
}

/**
 * Default attach limit. Nova attaches Cinder volumes as virtio-blk disks, one
 * PCI slot each, on a bus of 32 slots. The host bridge, the ISA/IDE bridge,
 * the VGA adapter, the NIC, the root disk and the memory balloon take six;
 * we keep one spare for a second NIC or a config drive. 32 - 7 = 25.
 */
export const DEFAULT_MAX_VOLUMES_PER_NODE = 25;

/** Long enough for a hypervisor hot-plug plus udev; kubelet's NodeStage deadline is about two minutes. */
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 30_000;

export const DEFAULT_DEVICE_ROOT = '/dev';
export const DEFAULT_SYSFS_ROOT = '/sys';
export const DEFAULT_STATE_DIR = '/var/lib/cinder-csi';
export const DEFAULT_KUBELET_ROOT = '/var/lib/kubelet';

export type NodeSettingsInput = Pick<NodeSettings, 'nodeId'> & Partial<Omit<NodeSettings, 'nodeId'>>;

/** Fill in the documented defaults and reject settings that would mislead the scheduler. */
export function resolveNodeSettings(input: NodeSettingsInput): NodeSettings {
  if (!input.nodeId) throw new Error('node settings: nodeId is required');
  const max = input.maxVolumesPerNode ?? DEFAULT_MAX_VOLUMES_PER_NODE;
  if (!Number.isInteger(max) || max < 1) {
    throw new Error(`node settings: maxVolumesPerNode must be a positive integer, got ${max}`);
  }
  return {
    nodeId: input.nodeId,
    availabilityZone: input.availabilityZone || null,
    maxVolumesPerNode: max,
    deviceRoot: input.deviceRoot ?? DEFAULT_DEVICE_ROOT,
    sysfsRoot: input.sysfsRoot ?? DEFAULT_SYSFS_ROOT,
    stateDir: input.stateDir ?? DEFAULT_STATE_DIR,
    kubeletRoot: input.kubeletRoot ?? DEFAULT_KUBELET_ROOT,
    confinePaths: input.confinePaths ?? false,
    discoveryTimeoutMs: input.discoveryTimeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS,
  };
}
