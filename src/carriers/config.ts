// Validation of a carrier configuration as a retailer saves it (JSON): every problem comes back
// as { path, message }, so an editor can show them all at once; nothing here throws for bad input.
// Also re-exports the demo configuration, the one place the demo's services are defined.
import countries from 'i18n-iso-countries';
import { isIsoDate, isValidTimeZone, parseCutoff } from './calendar.ts';
import { ANY_COUNTRY, type CarrierConfig, DELIVERY_MODES, ORIGIN_TOKEN, SERVICE_LEVELS } from './model.ts';

export { DEMO_CARRIER_CONFIG, DEMO_CARRIER_SERVICES, FR_PUBLIC_HOLIDAYS_2026_2027 } from './demo.ts';

export interface ConfigProblem {
  /** Where, in JSON-path style: `services[2].costTable.eu[1].upToG`. */
  path: string;
  message: string;
}

export type ConfigResult = { ok: true; config: CarrierConfig } | { ok: false; problems: ConfigProblem[] };

const CODE_RE = /^[a-z][a-z0-9_]{0,63}$/;
const SERVICE_KEYS = new Set([
  'code',
  'name',
  'carrier',
  'modes',
  'serviceLevel',
  'originCountries',
  'zones',
  'maxWeightG',
  'maxLengthMm',
  'maxSumDimensionsMm',
  'currency',
  'costTable',
  'leadTimeDays',
  'zoneLeadTimeDays',
  'cutoff',
  'timeZone',
  'pickupPoint',
  'active',
]);
const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCountry = (c: unknown): boolean => typeof c === 'string' && /^[A-Z]{2}$/.test(c) && countries.isValid(c);
const isPositiveInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isNonNegativeInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

export function validateCarrierConfig(input: unknown): ConfigResult {
  const problems: ConfigProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });

  if (!isObject(input)) return { ok: false, problems: [{ path: '', message: 'the configuration must be an object { holidays, services }' }] };
  for (const key of Object.keys(input)) if (key !== 'holidays' && key !== 'services') add(key, `unknown field '${key}'`);

  validateHolidays(input.holidays, add);

  if (!Array.isArray(input.services)) add('services', 'services must be an array');
  else if (input.services.length === 0) add('services', 'at least one carrier service is needed');
  else {
    const seen = new Map<string, number>();
    input.services.forEach((s, i) => {
      validateService(s, `services[${i}]`, add);
      if (isObject(s) && typeof s.code === 'string') {
        const first = seen.get(s.code);
        if (first !== undefined) add(`services[${i}].code`, `duplicate code '${s.code}' (also services[${first}])`);
        else seen.set(s.code, i);
      }
    });
  }

  // Unknown keys were refused above, so a clean input has exactly the CarrierConfig shape.
  return problems.length === 0 ? { ok: true, config: input as unknown as CarrierConfig } : { ok: false, problems };
}

function validateHolidays(holidays: unknown, add: (path: string, message: string) => void): void {
  if (!isObject(holidays)) {
    add('holidays', 'holidays must be an object of origin country → dates, e.g. { "FR": ["2026-12-25"] } (use {} for none)');
    return;
  }
  for (const [country, dates] of Object.entries(holidays)) {
    const path = `holidays.${country}`;
    if (!isCountry(country)) add(path, `'${country}' is not an ISO 3166-1 alpha-2 country code`);
    if (!Array.isArray(dates)) {
      add(path, 'must be a list of dates YYYY-MM-DD');
      continue;
    }
    const seen = new Set<string>();
    dates.forEach((d, j) => {
      if (typeof d !== 'string' || !isIsoDate(d)) add(`${path}[${j}]`, `${show(d)} is not a date YYYY-MM-DD`);
      else if (seen.has(d)) add(`${path}[${j}]`, `${d} is listed twice`);
      else seen.add(d);
    });
  }
}

function validateService(s: unknown, at: string, add: (path: string, message: string) => void): void {
  if (!isObject(s)) {
    add(at, 'a carrier service must be an object');
    return;
  }
  for (const key of Object.keys(s)) if (!SERVICE_KEYS.has(key)) add(`${at}.${key}`, `unknown field '${key}'`);

  if (typeof s.code !== 'string' || !CODE_RE.test(s.code)) add(`${at}.code`, `code ${show(s.code)} must be lower snake case, e.g. home_standard`);
  for (const key of ['name', 'carrier'] as const) {
    if (typeof s[key] !== 'string' || (s[key] as string).trim() === '') add(`${at}.${key}`, `${key} must be a non-empty string`);
  }

  const modes = s.modes;
  if (!Array.isArray(modes) || modes.length === 0) add(`${at}.modes`, `modes must be a non-empty list of ${DELIVERY_MODES.join(', ')}`);
  else {
    modes.forEach((m, j) => {
      if (!(DELIVERY_MODES as readonly unknown[]).includes(m)) add(`${at}.modes[${j}]`, `unknown mode ${show(m)}; expected one of ${DELIVERY_MODES.join(', ')}`);
      else if (modes.indexOf(m) !== j) add(`${at}.modes[${j}]`, `mode '${m}' is listed twice`);
    });
  }
  if (!(SERVICE_LEVELS as readonly unknown[]).includes(s.serviceLevel)) add(`${at}.serviceLevel`, `service level ${show(s.serviceLevel)} must be one of ${SERVICE_LEVELS.join(', ')}`);

  if (!Array.isArray(s.originCountries) || s.originCountries.length === 0) add(`${at}.originCountries`, `originCountries must be a non-empty list of ISO countries or '${ANY_COUNTRY}'`);
  else {
    s.originCountries.forEach((c, j) => {
      if (c !== ANY_COUNTRY && !isCountry(c)) add(`${at}.originCountries[${j}]`, `${show(c)} is not an ISO 3166-1 alpha-2 country code or '${ANY_COUNTRY}'`);
    });
  }

  const zoneNames = validateZones(s.zones, `${at}.zones`, add);

  for (const key of ['maxWeightG', 'maxLengthMm', 'maxSumDimensionsMm'] as const) {
    if (!isPositiveInt(s[key])) add(`${at}.${key}`, `${key} must be a positive whole number, got ${show(s[key])}`);
  }

  const currencyOk = typeof s.currency === 'string' && /^[A-Z]{3}$/.test(s.currency) && CURRENCIES.has(s.currency);
  if (!currencyOk) add(`${at}.currency`, `${show(s.currency)} is not an ISO 4217 currency code`);

  validateCostTable(s.costTable, `${at}.costTable`, zoneNames, isPositiveInt(s.maxWeightG) ? s.maxWeightG : null, add);

  if (!isNonNegativeInt(s.leadTimeDays)) add(`${at}.leadTimeDays`, `leadTimeDays must be a whole number of business days ≥ 0, got ${show(s.leadTimeDays)}`);
  if (s.zoneLeadTimeDays !== undefined) {
    if (!isObject(s.zoneLeadTimeDays)) add(`${at}.zoneLeadTimeDays`, 'zoneLeadTimeDays must be an object of zone → business days');
    else {
      for (const [zone, days] of Object.entries(s.zoneLeadTimeDays)) {
        if (zoneNames && !zoneNames.has(zone)) add(`${at}.zoneLeadTimeDays.${zone}`, `no zone named '${zone}'`);
        if (!isNonNegativeInt(days)) add(`${at}.zoneLeadTimeDays.${zone}`, `must be a whole number of business days ≥ 0, got ${show(days)}`);
      }
    }
  }

  if (typeof s.cutoff !== 'string' || parseCutoff(s.cutoff) === null) add(`${at}.cutoff`, `cut-off ${show(s.cutoff)} must be a 24-hour time HH:MM, e.g. 16:00`);
  if (typeof s.timeZone !== 'string' || !isValidTimeZone(s.timeZone)) add(`${at}.timeZone`, `${show(s.timeZone)} is not an IANA time zone, e.g. Europe/Paris`);

  if (typeof s.pickupPoint !== 'boolean') add(`${at}.pickupPoint`, 'pickupPoint must be true or false');
  else if (Array.isArray(s.modes) && s.pickupPoint !== s.modes.includes('pickup_point')) {
    add(`${at}.pickupPoint`, s.pickupPoint ? "pickupPoint is true but modes lack 'pickup_point'" : "modes include 'pickup_point' but pickupPoint is false");
  }
  if (typeof s.active !== 'boolean') add(`${at}.active`, 'active must be true or false');
}

/** Checks the zones and returns their names (null when the list itself is unusable). */
function validateZones(zones: unknown, at: string, add: (path: string, message: string) => void): Set<string> | null {
  if (!Array.isArray(zones) || zones.length === 0) {
    add(at, `zones must be a non-empty list of { name, countries } (countries: ISO codes, '${ORIGIN_TOKEN}' for domestic, '${ANY_COUNTRY}' for any other)`);
    return null;
  }
  const names = new Set<string>();
  zones.forEach((z, j) => {
    const zat = `${at}[${j}]`;
    if (!isObject(z)) {
      add(zat, 'a zone must be an object { name, countries }');
      return;
    }
    for (const key of Object.keys(z)) if (key !== 'name' && key !== 'countries') add(`${zat}.${key}`, `unknown field '${key}'`);
    if (typeof z.name !== 'string' || !CODE_RE.test(z.name)) add(`${zat}.name`, `zone name ${show(z.name)} must be lower snake case, e.g. eu`);
    else if (names.has(z.name)) add(`${zat}.name`, `duplicate zone '${z.name}'`);
    else names.add(z.name);
    if (!Array.isArray(z.countries) || z.countries.length === 0) add(`${zat}.countries`, 'countries must be a non-empty list');
    else {
      z.countries.forEach((c, k) => {
        if (c !== ORIGIN_TOKEN && c !== ANY_COUNTRY && !isCountry(c)) {
          add(`${zat}.countries[${k}]`, `${show(c)} is not an ISO 3166-1 alpha-2 country code, '${ORIGIN_TOKEN}' or '${ANY_COUNTRY}'`);
        }
      });
    }
  });
  return names;
}

function validateCostTable(
  table: unknown,
  at: string,
  zoneNames: Set<string> | null,
  maxWeightG: number | null,
  add: (path: string, message: string) => void,
): void {
  if (!isObject(table)) {
    add(at, 'costTable must be an object of zone → weight bands [{ upToG, cost }]');
    return;
  }
  for (const zone of zoneNames ?? []) if (!(zone in table)) add(`${at}.${zone}`, `zone '${zone}' has no prices`);
  for (const [zone, bands] of Object.entries(table)) {
    const zat = `${at}.${zone}`;
    if (zoneNames && !zoneNames.has(zone)) add(zat, `no zone named '${zone}'`);
    if (!Array.isArray(bands) || bands.length === 0) {
      add(zat, 'must be a non-empty list of weight bands [{ upToG, cost }]');
      continue;
    }
    let previous = 0;
    bands.forEach((b, j) => {
      const bat = `${zat}[${j}]`;
      if (!isObject(b)) {
        add(bat, 'a weight band must be an object { upToG, cost }');
        return;
      }
      for (const key of Object.keys(b)) if (key !== 'upToG' && key !== 'cost') add(`${bat}.${key}`, `unknown field '${key}'`);
      if (!isPositiveInt(b.upToG)) add(`${bat}.upToG`, `upToG must be a positive whole number of grams, got ${show(b.upToG)}`);
      else {
        if (b.upToG <= previous) add(`${bat}.upToG`, `bands must be in ascending weight: ${b.upToG} g comes after ${previous} g`);
        previous = Math.max(previous, b.upToG);
      }
      if (!isNonNegativeInt(b.cost)) add(`${bat}.cost`, `cost must be a whole number of minor units ≥ 0 (cents), got ${show(b.cost)}`);
    });
    if (maxWeightG !== null && previous > 0 && previous < maxWeightG) {
      add(zat, `the last band stops at ${previous} g but the service takes up to ${maxWeightG} g: heavier parcels would have no price`);
    }
  }
}
