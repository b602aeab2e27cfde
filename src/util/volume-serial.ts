// What a disk's serial looks like when Nova attached it as a Cinder volume:
// the volume ID, of which virtio-blk keeps only the first 20 characters.
// Nova gives no other disk (image, ephemeral, config drive) a serial of
// this shape. Shared by the node's device checks and the config drive
// lookup, which both must tell a volume's disk from the VM's own.

const VOLUME_SERIAL_START = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]/i;

/** Whether `serial` (or the serial part of a by-id link name) is a volume ID or its virtio-blk prefix. */
export function isVolumeSerial(serial: string): boolean {
  return VOLUME_SERIAL_START.test(serial);
}
