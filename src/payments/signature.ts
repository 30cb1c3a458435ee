// HMAC webhook signatures, Stripe's scheme: the header `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`
// carries one HMAC-SHA256 per secret over `${t}.${rawBody}`. Rotation: the sender signs with
// the old and the new secret (two v1), the receiver accepts any v1 matching any secret it has.
//
// The signature is over the RAW bytes received: a body that was parsed and re-serialised
// (other spacing, other key order) no longer verifies, by design.
//
// Verdicts of verifySignature:
//   - no header, or an empty one                        → missing_signature
//   - a header without a decimal `t` or without any v1  → malformed
//   - no v1 matches any configured secret (including a v1 that is not 64 hex digits, or no
//     secret configured)                                → bad_signature
//   - a matching signature but |now − t| > tolerance     → stale_timestamp
// The signature is checked before the timestamp, so a forged header is always bad_signature.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureVerdict =
  | { ok: true }
  | { ok: false; reason: 'missing_signature' | 'bad_signature' | 'stale_timestamp' | 'malformed'; message: string };

const hmac = (secret: string, t: string, rawBody: Buffer): Buffer =>
  createHmac('sha256', secret).update(`${t}.`, 'utf8').update(rawBody).digest();

const toBuffer = (raw: Buffer | string): Buffer => (typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw);

/** The signature header for `rawBody`, one v1 per secret (in the order given). */
export function signPayload(rawBody: Buffer | string, secrets: string[], timestampSec: number): string {
  if (secrets.length === 0) throw new Error('signPayload: at least one secret is required');
  if (!Number.isSafeInteger(timestampSec)) throw new Error('signPayload: the timestamp must be an integer (unix seconds)');
  const t = String(timestampSec);
  const body = toBuffer(rawBody);
  return [`t=${t}`, ...secrets.map((s) => `v1=${hmac(s, t, body).toString('hex')}`)].join(',');
}

interface ParsedHeader {
  t: string;
  v1: string[];
}

function parseHeader(header: string): ParsedHeader | null {
  let t: string | null = null;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (t !== null || !/^\d{1,15}$/.test(value)) return null;
      t = value;
    } else if (key === 'v1') v1.push(value);
    // Other schemes (v0, …) are ignored, as Stripe does.
  }
  return t === null || v1.length === 0 ? null : { t, v1 };
}

const HEX_SHA256 = /^[0-9a-f]{64}$/i;

/** Verifies a signature header against the raw body. See the verdict table at the top. */
export function verifySignature(rawBody: Buffer, header: string | undefined, secrets: string[], nowMs: number, toleranceSec = 300): SignatureVerdict {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing_signature', message: 'no signature header' };
  const parsed = parseHeader(header);
  if (!parsed) return { ok: false, reason: 'malformed', message: 'signature header must be t=<unix seconds>,v1=<hex>[,v1=<hex>…]' };
  const candidates = parsed.v1.filter((s) => HEX_SHA256.test(s)).map((s) => Buffer.from(s, 'hex'));
  let matched = false;
  for (const secret of secrets) {
    const expected = hmac(secret, parsed.t, rawBody);
    // Every candidate is compared (no early exit on the first match): constant time per pair.
    for (const c of candidates) if (c.length === expected.length && timingSafeEqual(c, expected)) matched = true;
  }
  if (!matched) return { ok: false, reason: 'bad_signature', message: 'no signature matches the body with a configured secret' };
  const ageSec = Math.abs(nowMs - Number(parsed.t) * 1000) / 1000;
  if (ageSec > toleranceSec) return { ok: false, reason: 'stale_timestamp', message: `signature timestamp is ${Math.round(ageSec)} s away from now (tolerance ${toleranceSec} s)` };
  return { ok: true };
}
