// The carrier selector: a pure function from one shipment and the configured services to the
// service that carries it, with its cost, its promised delivery date, and why every other service
// lost. No await, no clock, no I/O: the same inputs always give the same choice and explanation.
import { estimateDelivery, endOfLocalDay, isValidTimeZone, localDateTime, parseCutoff } from './calendar.ts';
import { type CarrierService, type DeliveryMode, type ServiceLevel, bandCost, leadTimeFor, resolveZone, servesOrigin } from './model.ts';

export interface ShipmentRequest {
  mode: DeliveryMode;
  originCountry: string;
  destinationCountry: string;
  weightG: number;
  lengthMm?: number;
  widthMm?: number;
  heightMm?: number;
  /** When the goods can leave the origin: the stock date, or now. */
  readyAt: number;
  /** Deadline for delivery; a promised day is best passed as the end of that day (`endOfLocalDay`). */
  promisedBy?: number | null;
  /** A service code the retailer insists on; used when eligible, otherwise explained and ignored. */
  pinnedService?: string | null;
  /** Requested by the customer: only services of that level qualify. */
  serviceLevel?: ServiceLevel | null;
}

export interface SelectorOptions {
  /** Public holidays (YYYY-MM-DD) keyed by origin country. */
  holidays?: Readonly<Record<string, readonly string[]>>;
  /** Only services priced in this currency compete; by default, that of the first eligible service. */
  currency?: string | null;
}

export interface CarrierChoice {
  service: CarrierService | null;
  cost: number | null;
  currency: string | null;
  dispatchDate: string | null;
  estimatedDelivery: string | null;
  estimatedDeliveryAt: number | null;
  /** True when a service was chosen and delivers by `promisedBy` (or there is no promise). */
  meetsPromise: boolean;
  explanation: { chosen: string | null; reason: string; rejected: { service: string; reason: string }[] };
}

interface Candidate {
  service: CarrierService;
  zone: string;
  cost: number;
  dispatchDate: string;
  estimatedDelivery: string;
  estimatedDeliveryAt: number;
  meetsPromise: boolean;
}

type Assessment = { service: CarrierService; candidate: Candidate; problems: null } | { service: CarrierService; candidate: null; problems: string[] };

const num = new Intl.NumberFormat('en-US');
const grams = (g: number): string => `${num.format(g)} g`;
const mm = (v: number): string => `${num.format(v)} mm`;
/** Display only: minor units to a currency string (€12.90). */
export function formatMoney(minor: number, currency: string): string {
  let m = moneyFormats.get(currency);
  if (!m) {
    // Building an Intl.NumberFormat costs tens of microseconds: one per currency, kept.
    const f = new Intl.NumberFormat('en-US', { style: 'currency', currency });
    m = { f, scale: 10 ** (f.resolvedOptions().maximumFractionDigits ?? 2), shown: new Map() };
    moneyFormats.set(currency, m);
  }
  // Formatting costs ~1 µs, and every plan writes the same few rates in its carrier
  // explanations: the strings are kept per currency (bounded; emptied when full).
  let text = m.shown.get(minor);
  if (text === undefined) {
    text = m.f.format(minor / m.scale);
    if (m.shown.size >= MONEY_SHOWN) m.shown.clear();
    m.shown.set(minor, text);
  }
  return text;
}
const MONEY_SHOWN = 4096;
const moneyFormats = new Map<string, { f: Intl.NumberFormat; scale: number; shown: Map<number, string> }>();
const byCode = (a: CarrierService, b: CarrierService): number => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);

/** A deadline as a person reads it: the date alone when it is the end of a local day, else date and time. */
function showDeadline(at: number, timeZone: string): string {
  const local = localDateTime(at, timeZone);
  if (endOfLocalDay(local.date, timeZone) === at) return local.date;
  const hh = String(Math.floor(local.minutes / 60)).padStart(2, '0');
  const mi = String(local.minutes % 60).padStart(2, '0');
  return `${local.date} ${hh}:${mi}`;
}

function assess(s: ShipmentRequest, service: CarrierService, holidays: ReadonlySet<string>, origin: string, destination: string): Assessment {
  if (!service.active) return { service, candidate: null, problems: ['inactive'] };
  const problems: string[] = [];
  if (s.serviceLevel && service.serviceLevel !== s.serviceLevel) problems.push(`service level ${service.serviceLevel}, ${s.serviceLevel} requested`);
  if (!service.modes.includes(s.mode)) problems.push(`mode ${s.mode} not offered (${service.modes.join(', ')})`);
  if (!servesOrigin(service, origin)) problems.push(`origin ${origin} not served (${service.originCountries.join(', ')})`);
  const zone = resolveZone(service, origin, destination);
  if (!zone) {
    const names = service.zones.map((z) => z.name).join(', ');
    problems.push(origin === destination ? `domestic destination ${destination} not in zones (${names})` : `destination ${destination} not in zones (${names})`);
  }
  if (s.weightG > service.maxWeightG) problems.push(`weight ${grams(s.weightG)} over max ${grams(service.maxWeightG)}`);
  const sides = [s.lengthMm, s.widthMm, s.heightMm].filter((v): v is number => typeof v === 'number');
  const longest = Math.max(0, ...sides);
  if (longest > service.maxLengthMm) problems.push(`longest side ${mm(longest)} over max ${mm(service.maxLengthMm)}`);
  if (sides.length === 3) {
    const sum = sides[0] + sides[1] + sides[2];
    if (sum > service.maxSumDimensionsMm) problems.push(`length + width + height ${mm(sum)} over max ${mm(service.maxSumDimensionsMm)}`);
  }
  // A validated configuration never fails these, but the selector stays total on any input.
  if (parseCutoff(service.cutoff) === null) problems.push(`configuration: cut-off '${service.cutoff}' is not HH:MM`);
  if (!/^[A-Z]{3}$/.test(service.currency)) problems.push(`configuration: '${service.currency}' is not an ISO 4217 currency code`);
  if (!isValidTimeZone(service.timeZone)) problems.push(`configuration: unknown time zone '${service.timeZone}'`);
  if (problems.length > 0 || !zone) return { service, candidate: null, problems };

  const cost = bandCost(service, zone.name, s.weightG);
  if (cost === null) {
    const bands = service.costTable[zone.name] ?? [];
    const top = bands.length > 0 ? bands[bands.length - 1].upToG : 0;
    return { service, candidate: null, problems: [`no price for ${grams(s.weightG)} in zone ${zone.name} (bands stop at ${grams(top)})`] };
  }
  const estimate = estimateDelivery({
    readyAt: s.readyAt,
    cutoff: service.cutoff,
    timeZone: service.timeZone,
    leadTimeDays: leadTimeFor(service, zone.name),
    holidays,
  });
  const meetsPromise = s.promisedBy == null || estimate.estimatedDeliveryAt <= s.promisedBy;
  return { service, candidate: { service, zone: zone.name, cost, ...estimate, meetsPromise }, problems: null };
}

const byCost = (a: Candidate, b: Candidate): number => a.cost - b.cost || a.estimatedDeliveryAt - b.estimatedDeliveryAt || byCode(a.service, b.service);
const byDelivery = (a: Candidate, b: Candidate): number => a.estimatedDeliveryAt - b.estimatedDeliveryAt || a.cost - b.cost || byCode(a.service, b.service);

/** Why `loser` lost to `winner` under the normal rules. */
function lostBecause(loser: Candidate, winner: Candidate, promisedBy: number | null): string {
  const tz = loser.service.timeZone;
  const promise = promisedBy == null ? null : showDeadline(promisedBy, tz);
  const extra = loser.cost - winner.cost;
  const more = `costs ${formatMoney(extra, loser.service.currency)} more than ${winner.service.code}`;
  if (promise !== null && winner.meetsPromise && !loser.meetsPromise) return `delivers ${loser.estimatedDelivery}, after promise ${promise}`;
  if (promise !== null && !winner.meetsPromise) {
    if (loser.estimatedDeliveryAt > winner.estimatedDeliveryAt) {
      return `delivers ${loser.estimatedDelivery}, after promise ${promise} and after ${winner.service.code} (${winner.estimatedDelivery})`;
    }
    if (extra > 0) return `delivers ${loser.estimatedDelivery} like ${winner.service.code}, after promise ${promise}, and ${more}`;
    return `same delivery date and cost as ${winner.service.code}, after promise ${promise}; ${winner.service.code} comes first by code`;
  }
  if (extra > 0) return more;
  if (loser.estimatedDeliveryAt > winner.estimatedDeliveryAt) {
    return `same cost as ${winner.service.code} but delivers ${loser.estimatedDelivery}, after ${winner.service.code} (${winner.estimatedDelivery})`;
  }
  return `same cost and delivery date as ${winner.service.code}; ${winner.service.code} comes first by code`;
}

function summary(c: Candidate, promisedBy: number | null): string {
  const base = `${formatMoney(c.cost, c.service.currency)}, zone ${c.zone}, dispatched ${c.dispatchDate}, delivers ${c.estimatedDelivery}`;
  if (promisedBy == null) return base;
  const promise = showDeadline(promisedBy, c.service.timeZone);
  return c.meetsPromise ? `${base}, by promise ${promise}` : `${base}, after promise ${promise}`;
}

function choice(c: Candidate | null, reason: string, rejected: { service: string; reason: string }[]): CarrierChoice {
  return {
    service: c?.service ?? null,
    cost: c?.cost ?? null,
    currency: c?.service.currency ?? null,
    dispatchDate: c?.dispatchDate ?? null,
    estimatedDelivery: c?.estimatedDelivery ?? null,
    estimatedDeliveryAt: c?.estimatedDeliveryAt ?? null,
    meetsPromise: c?.meetsPromise ?? false,
    explanation: { chosen: c?.service.code ?? null, reason, rejected },
  };
}

/**
 * Picks the carrier service for one shipment. Eligible means: active, of the requested service
 * level, offering the delivery mode, serving the origin, with a zone for the destination, and
 * within weight and size. A pinned eligible service wins outright. Otherwise, among services that
 * deliver by the promise, the cheapest wins (tie: earliest delivery, then code); if none does,
 * the earliest delivery wins (tie: cheapest, then code) and `meetsPromise` is false; with no
 * promise, the cheapest wins.
 */
export function selectCarrier(shipment: ShipmentRequest, services: readonly CarrierService[], options: SelectorOptions = {}): CarrierChoice {
  if (!Number.isFinite(shipment.readyAt)) return choice(null, 'readyAt is not a valid instant', []);
  if (!Number.isFinite(shipment.weightG) || shipment.weightG < 0) return choice(null, `weight ${shipment.weightG} is not a valid number of grams`, []);
  if (services.length === 0) return choice(null, 'no carrier services are configured', []);

  const origin = shipment.originCountry.toUpperCase();
  const destination = shipment.destinationCountry.toUpperCase();
  const holidays = new Set(options.holidays?.[origin] ?? []);
  const promisedBy = shipment.promisedBy ?? null;
  const assessed = services.map((service) => assess(shipment, service, holidays, origin, destination));

  // Costs only compare within one currency.
  const pinned = shipment.pinnedService ?? null;
  const firstPriced = assessed.find((a) => a.candidate && a.service.code === pinned) ?? assessed.find((a) => a.candidate);
  const currency = options.currency ?? firstPriced?.service.currency ?? null;
  const rejections = new Map<string, string>();
  const eligible: Candidate[] = [];
  for (const a of assessed) {
    if (a.problems) rejections.set(a.service.code, a.problems.join('; '));
    else if (a.service.currency !== currency) rejections.set(a.service.code, `priced in ${a.service.currency}, not ${currency}`);
    else eligible.push(a.candidate);
  }
  const rejectedList = (winner: Candidate | null, lost: (c: Candidate) => string) =>
    assessed
      .filter((a) => !winner || a.service !== winner.service)
      .map((a) => {
        const candidate = eligible.find((c) => c.service === a.service);
        return { service: a.service.code, reason: candidate ? lost(candidate) : (rejections.get(a.service.code) ?? 'not eligible') };
      });

  let pinNote = '';
  if (pinned !== null) {
    const hit = eligible.find((c) => c.service.code === pinned);
    if (hit) {
      const reason = `pinned by the retailer: ${summary(hit, promisedBy)}`;
      return choice(hit, reason, rejectedList(hit, () => `not pinned: the retailer pinned ${pinned}`));
    }
    const why = rejections.get(pinned);
    pinNote = why === undefined ? `pinned service '${pinned}' does not exist; ` : `pinned service ${pinned} is not eligible (${why}); `;
  }

  if (eligible.length === 0) {
    const none = pinNote ? 'no other service is eligible either' : 'no eligible service';
    return choice(null, `${pinNote}${none}: all ${services.length} rejected`, rejectedList(null, () => ''));
  }

  const onTime = eligible.filter((c) => c.meetsPromise);
  let winner: Candidate;
  let reason: string;
  if (promisedBy === null) {
    winner = [...eligible].sort(byCost)[0];
    reason = eligible.length === 1 ? 'the only eligible service' : `cheapest of ${eligible.length} eligible services`;
  } else if (onTime.length > 0) {
    winner = [...onTime].sort(byCost)[0];
    reason = onTime.length === 1 ? 'the only eligible service that delivers by the promise' : `cheapest of ${onTime.length} eligible services that deliver by the promise`;
  } else {
    winner = [...eligible].sort(byDelivery)[0];
    reason = `no eligible service delivers by the promise; earliest delivery of ${eligible.length}`;
  }
  if (pinNote) pinNote += 'chosen by the normal rules instead, ';
  return choice(winner, `${pinNote}${reason}: ${summary(winner, promisedBy)}`, rejectedList(winner, (c) => lostBecause(c, winner, promisedBy)));
}
