// A throwaway CA and a server certificate for 127.0.0.1 and localhost, made
// with openssl at start so HTTPS clients can be tested with a real CA file
// (and with verification off against a certificate they do not trust).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../util/exec';

export interface TlsMaterial {
  caFile: string;
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export async function makeCertificates(dir: string): Promise<TlsMaterial> {
  const caKey = path.join(dir, 'ca.key');
  const caFile = path.join(dir, 'ca.pem');
  const keyFile = path.join(dir, 'server.key');
  const certFile = path.join(dir, 'server.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-keyout', caKey, '-out', caFile,
    '-subj', '/CN=cinder-csi simulator CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  // `req -CA` (OpenSSL 3) signs the new request with our CA in one step.
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-CA', caFile, '-CAkey', caKey,
    '-keyout', keyFile, '-out', certFile,
    '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'extendedKeyUsage=serverAuth',
  ]);
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  return { caFile, certFile, keyFile, cert, key };
}
