// Names shared by the controller, the node plugin and the manifests.

/** The default driver name: the Go cinder-csi-plugin's, so its PersistentVolumes keep working. */
export const DEFAULT_DRIVER_NAME = 'cinder.csi.openstack.org';

/** Topology key for the availability zone, the same key the Go driver uses. */
export const TOPOLOGY_ZONE_KEY = 'topology.cinder.csi.openstack.org/zone';

/** Bytes in a GiB: Cinder sizes volumes in whole GiB. */
export const GiB = 1024 ** 3;

/** The filesystems the node plugin makes and mounts; the controller refuses others before a volume is made. */
export const SUPPORTED_FILESYSTEMS = ['ext4', 'ext3', 'xfs'] as const;
