// A cloud that was reached but whose certificate was refused is not "cannot
// be reached": it is kind tls (FAILED_PRECONDITION to the CO, never retried),
// naming the server's scheme://host:port, the TLS code in words and the fix in
// the config's own key names. A scheme that does not match the port says so.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log';
import { isOpenStackError, type OpenStackError } from '../../src/openstack/errors';
import { HttpClient } from '../../src/openstack/http';
import { errorFromException, originOf } from '../../src/openstack/http-errors';
import { isRetryable } from '../../src/openstack/retry';
import { startSimulator, type Simulator } from '../../src/sim';

const target = (url: string, caFile?: string) => ({ url: new URL(url), caKey: 'verify_ca_path', caFile });
const nodeError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('TLS failures', () => {
  let tlsSim: Simulator;
  let plainSim: Simulator;
  before(async () => {
    [tlsSim, plainSim] = await Promise.all([startSimulator({ hypervisor: false, tls: true }), startSimulator({ hypervisor: false })]);
  });
  after(async () => {
    await Promise.all([tlsSim.stop(), plainSim.stop()]);
  });
  const authUrl = (sim: Simulator) => new URL(sim.cloudConfig().auth.authUrl);
  const fail = async (client: HttpClient, url: string): Promise<OpenStackError> => {
    try {
      await client.request({ method: 'GET', url });
    } catch (e) {
      assert.ok(isOpenStackError(e), String(e));
      return e;
    }
    assert.fail(`${url} answered`);
  };

  it('an untrusted certificate is kind tls, not retried, naming the server, the code in words and the CA key', async () => {
    const client = new HttpClient({ tls: { verify: true, caKey: 'cacert' }, requestTimeoutMs: 3_000, logger: silentLogger });
    try {
      const url = authUrl(tlsSim);
      const e = await fail(client, url.href);
      assert.equal(e.kind, 'tls', e.message);
      assert.equal(isRetryable(e), false);
      assert.ok(e.message.includes(`the TLS certificate of https://127.0.0.1:${url.port} was refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE, its issuer is not trusted here`), e.message);
      assert.match(e.message, /the cloud was reached, and asking again cannot help: name the file of the CA that signed it in cacert$/);
      assert.doesNotMatch(e.message, /cannot be reached/);
    } finally {
      await client.close();
    }
  });

  it('http:// to an HTTPS port hints at https://; https:// to a plain HTTP port is kind tls and says to use http://', async () => {
    const client = new HttpClient({ tls: { verify: true }, requestTimeoutMs: 3_000, logger: silentLogger });
    try {
      const tlsUrl = authUrl(tlsSim);
      tlsUrl.protocol = 'http:';
      const reset = await fail(client, tlsUrl.href);
      assert.equal(reset.kind, 'network', reset.message);
      assert.ok(reset.message.endsWith(`; if http://127.0.0.1:${tlsUrl.port} serves HTTPS, the URL must say https://`), reset.message);

      const plainUrl = authUrl(plainSim);
      plainUrl.protocol = 'https:';
      const plain = await fail(client, plainUrl.href);
      assert.equal(plain.kind, 'tls', plain.message);
      assert.equal(isRetryable(plain), false);
      assert.ok(plain.message.includes(`https://127.0.0.1:${plainUrl.port} does not speak TLS (EPROTO: wrong version number): `), plain.message);
      assert.ok(plain.message.includes(`the port answers plain HTTP; use http://127.0.0.1:${plainUrl.port} in the URL`), plain.message);
    } finally {
      await client.close();
    }
  });

  it("each certificate code has its words and its fix; the CA file in use is named; other codes stay network", () => {
    const at = 'https://keystone.example.com/v3/auth/tokens';
    const cases: Array<[string, RegExp]> = [
      ['SELF_SIGNED_CERT_IN_CHAIN', /self-signed CA that is not trusted here.*add the CA that signed it \(with any intermediate certificates\) to the CA file verify_ca_path names \(\/etc\/ca\.pem\)$/],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', /it is self-signed and not trusted here/],
      ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', /its issuer is not trusted here/],
      ['UNABLE_TO_GET_ISSUER_CERT', /its issuer is not trusted here or not sent/],
      ['CERT_HAS_EXPIRED', /it has expired .*renew the cloud's certificate \(or, if it is still valid, correct this machine's clock\)$/],
      ['CERT_NOT_YET_VALID', /it is not valid yet .*correct this machine's clock/],
      ['ERR_TLS_CERT_ALTNAME_INVALID', /it does not name the host the URL names .*use a host name the certificate names in the URL \(auth_url, or the endpoints in the service catalog\), or reissue the certificate for keystone\.example\.com$/],
    ];
    for (const [code, words] of cases) {
      const e = errorFromException('POST', '/v3/auth/tokens', nodeError(code, 'node says why'), undefined, target(at, '/etc/ca.pem'));
      assert.equal(e.kind, 'tls', code);
      assert.ok(e.message.startsWith(`POST /v3/auth/tokens: the TLS certificate of https://keystone.example.com:443 was refused: ${code}, `), e.message);
      assert.match(e.message, words, code);
    }
    const unknown = errorFromException('GET', '/', nodeError('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'alert'), undefined, target(at));
    assert.equal(unknown.kind, 'tls');
    assert.match(unknown.message, /^GET \/: TLS with https:\/\/keystone\.example\.com:443 failed: ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE \(alert\)/);
    // A handshake that timed out may pass; a reset before the handshake over https:// hints at plain HTTP.
    assert.equal(errorFromException('GET', '/', nodeError('ERR_TLS_HANDSHAKE_TIMEOUT', 't'), undefined, target(at)).kind, 'network');
    const early = errorFromException('GET', '/', nodeError('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'), undefined, target('https://h:8776/'));
    assert.equal(early.kind, 'network');
    assert.match(early.message, /; if https:\/\/h:8776 serves plain HTTP, the URL must say http:\/\/$/);
    assert.equal(originOf(new URL('http://[::1]/x')), 'http://[::1]:80');
  });
});
